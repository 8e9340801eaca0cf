"""Create the project's virtual environment, even where Debian ships python3 without ensurepip.

Debian's python3 lacks `ensurepip` unless python3-venv is installed. In that case the venv is made
without pip, and pip is bootstrapped from its wheel on PyPI (a wheel is importable as a zip file).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

PYPI_JSON = "https://pypi.org/pypi/pip/json"


def has_ensurepip() -> bool:
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        return False
    return True


def bootstrap_pip(python: Path) -> None:
    with urllib.request.urlopen(PYPI_JSON, timeout=60) as response:
        release = json.load(response)
    wheel = next(u for u in release["urls"] if u["filename"].endswith("-py3-none-any.whl"))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=120) as response:
            target.write_bytes(response.read())
        subprocess.run(
            [str(python), f"{target}/pip", "install", "--quiet", str(target)], check=True
        )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: make_venv.py DIR", file=sys.stderr)
        return 2
    target = Path(argv[1])
    python = target / "bin" / "python"
    if python.exists():
        return 0
    if has_ensurepip():
        venv.create(target, with_pip=True)
    else:
        print("ensurepip is missing (Debian without python3-venv): bootstrapping pip from PyPI")
        venv.create(target, with_pip=False)
        bootstrap_pip(python)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
