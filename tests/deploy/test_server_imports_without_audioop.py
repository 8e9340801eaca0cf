"""The server starts on Python 3.13, whose standard library no longer has `audioop` (issue 11).

pydub, which the audio package uses for cutting, joining and gain on PCM, imports `audioop`
(or its fallback `pyaudioop`) when it is imported. On Python 3.13+ `pip install 'loa[server]'`
brings `audioop-lts`; without it, every server module must still import, and what needs pydub
must fail with an error that says what to install instead of stopping the server at start.

The child process blocks both module names before anything is imported, which on 3.11 and 3.12
(where `audioop` is in the standard library) and on 3.13 with `audioop-lts` alike is what a 3.13
install without `audioop-lts` looks like.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("audio", "broadcast", "devices", "loa", "tts", "web", "wire")
# Importing it IS starting the server (a WSGI worker builds its service at import); everything
# it imports is among the modules imported here.
NOT_IMPORTED = {"web.wsgi"}

CHILD = """
import importlib, importlib.abc, json, pkgutil, sys

class NoAudioop(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("audioop", "pyaudioop"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoAudioop())
report = {"blocked": False, "imported": [], "failed": {}, "use_error": None}
try:
    import audioop
except ModuleNotFoundError:
    report["blocked"] = True

def load(name):
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        report["failed"][name] = f"{type(exc).__name__}: {exc}"
        return None
    report["imported"].append(name)
    return module

packages, skipped = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
for package in packages:
    module = load(package)
    if module is None:
        continue
    for info in pkgutil.walk_packages(module.__path__, package + ".", onerror=lambda name: None):
        if info.name not in skipped and info.name not in report["imported"]:
            load(info.name)

if "audio.chime" in report["imported"]:
    from audio import chime
    from audio.errors import AudioError
    try:
        chime.opening_chime()
    except AudioError as exc:
        report["use_error"] = str(exc)
print(json.dumps(report))
"""


def test_every_server_module_imports_without_audioop_and_pydub_says_what_is_missing() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            json.dumps(SERVER_PACKAGES),
            json.dumps(sorted(NOT_IMPORTED)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["blocked"], "the child could still import audioop: the test proves nothing"
    assert report["failed"] == {}
    assert {"audio.ffmpeg", "audio.programme", "broadcast.service", "web.admin"} <= set(
        report["imported"]
    )
    assert len(report["imported"]) > 100  # every module of the five packages, not a few
    assert report["use_error"] is not None and "audioop-lts" in report["use_error"]
