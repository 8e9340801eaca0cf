"""Write constraints.txt from a venv: `pip freeze` plus the packages only other Pythons install.

`make constraints` installs the newest versions pyproject.toml allows into a fresh venv, then
calls this. A requirement with an environment marker that does not hold on this Python (today
only `audioop-lts; python_version >= '3.13'`) is not in the freeze, so its newest wheel for the
marker's Python is looked up with `pip download` and written with the same marker, so Python
3.11, 3.12 and 3.13 all install tested versions.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

REPO = Path(__file__).resolve().parent.parent
EXTRAS = ("server", "test", "lint", "browser", "speech")
# The Python a marker-only requirement is looked up for: the newest the README supports.
MARKER_PYTHON = "3.13"

HEADER = """\
# Versions the test suite passed with, for Python 3.11, 3.12 and 3.13: every `pip install` of
# the server and its tests uses `-c constraints.txt` (the Makefile, hence CI and the README).
# Generated: `make constraints` (a fresh venv with the newest versions pyproject.toml allows,
# then deploy/write_constraints.py); run `make test` before committing a new one.
"""


def frozen(venv: Path) -> list[str]:
    output = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in output.splitlines() if line and not line.startswith("#")]


def marker_only(pinned: set[str]) -> list[Requirement]:
    """Requirements of the extras whose marker keeps them out of this venv."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    requirements = [Requirement(line) for line in lines]
    return [
        r for r in requirements if r.marker is not None and canonicalize_name(r.name) not in pinned
    ]


def newest_wheel_version(venv: Path, requirement: Requirement) -> str:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                MARKER_PYTHON,
                "--dest",
                folder,
                f"{requirement.name}{requirement.specifier}",
            ],
            check=True,
        )
        wheels = list(Path(folder).glob("*.whl"))
        if len(wheels) != 1:
            sys.exit(f"expected one wheel of {requirement.name} in {folder}, found {wheels}")
        return str(parse_wheel_filename(wheels[0].name)[1])


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: write_constraints.py VENV OUTPUT")
    venv, output = Path(sys.argv[1]), Path(sys.argv[2])
    lines = frozen(venv)
    pinned = {canonicalize_name(line.split("==")[0]) for line in lines}
    for requirement in marker_only(pinned):
        marker: Marker = requirement.marker  # type: ignore[assignment]
        version = newest_wheel_version(venv, requirement)
        lines.append(f"{requirement.name}=={version}; {marker}")
    lines.sort(key=str.lower)
    output.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
