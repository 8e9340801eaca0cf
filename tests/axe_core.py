"""axe-core, the accessibility engine the browser tests run on every page (issue 17): one pinned
release from the npm registry, fetched with npm (the machine's ordinary client), its tarball
checked against the sha512 below before axe.min.js is taken out of it.

`python tests/axe_core.py` (the Makefile's `test` does it) puts the file at `AXE_JS`; the tests
fail, never skip, when it is missing.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "4.14.1"
# the registry's `dist.integrity` of axe-core@4.14.1 (`npm view axe-core@4.14.1 dist.integrity`)
INTEGRITY = (
    "sha512-"
    "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
)
AXE_JS = Path(__file__).resolve().parent.parent / ".venv" / f"axe-core-{VERSION}.min.js"


def integrity(data: bytes) -> str:
    """The npm form of a tarball's sha512: what the registry publishes for it."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def extract(tarball: bytes, target: Path) -> None:
    """axe.min.js of a checked tarball to `target`; a tarball of other content is refused."""
    found = integrity(tarball)
    if found != INTEGRITY:
        raise SystemExit(f"axe-core {VERSION}: tarball integrity {found}, expected {INTEGRITY}")
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "axe-core.tgz"
        archive.write_bytes(tarball)
        with tarfile.open(archive) as tar:
            member = tar.extractfile("package/axe.min.js")
            if member is None:
                raise SystemExit("axe-core tarball without package/axe.min.js")
            script = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(script)
    partial.replace(target)


def fetch(target: Path = AXE_JS) -> Path:
    """The pinned axe-core's script at `target`, fetched once."""
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch axe-core for the browser tests")
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [npm, "pack", "--silent", f"axe-core@{VERSION}", "--pack-destination", scratch],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tarball,) = Path(scratch).glob("axe-core-*.tgz")
        extract(tarball.read_bytes(), target)
    return target


if __name__ == "__main__":
    print(fetch(Path(sys.argv[1]) if len(sys.argv) > 1 else AXE_JS))
