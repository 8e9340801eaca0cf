"""`loa voice` as an operator runs it (a real `loa` process on a data directory): a Piper voice
checked and installed, listed, chosen for a commune by its code and back to the default; a file
that is not a voice refused with what is wrong and nothing installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from piper_voice import make_voice
from support import REPO_ROOT

import tts


def loa(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "loa.cli", *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def test_a_voice_is_checked_installed_and_chosen_for_a_commune(tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    sentence = tts.normalize("Xin chào bà con, đây là giọng đọc thử của đài truyền thanh xã.")
    model = make_voice(tmp_path / "download", [sentence])
    assert "no Piper voice installed" in loa("voice", "list", "--data", data).stdout

    added = loa("voice", "add", str(model), "--name", "vais-thu", "--data", data)
    assert added.returncode == 0, added.stderr
    assert "installed voice vais-thu:" in added.stdout and "16000 Hz" in added.stdout
    assert (tmp_path / "var" / "voices" / "vais-thu.onnx").read_bytes() == model.read_bytes()
    assert loa("voice", "list", "--data", data).stdout.split() == ["vais-thu"]

    province = ("--kind", "province", "--name", "Tỉnh Thử", "--code", "99")
    commune = ("--kind", "commune", "--name", "Xã Thử", "--code", "99001", "--parent", "99")
    for zone in (province, commune):
        assert loa("zones", "add", *zone, "--data", data).returncode == 0
    chosen = loa("voice", "use", "vais-thu", "--zone", "99001", "--data", data)
    assert chosen.returncode == 0, chosen.stderr
    assert "xa-thu is read in vais-thu" in chosen.stdout
    back = loa("voice", "use", "default", "--zone", "xa-thu", "--data", data)
    assert "installation default" in back.stdout

    unknown = loa("voice", "use", "khong-co", "--zone", "xa-thu", "--data", data)
    assert unknown.returncode != 0 and "khong-co" in unknown.stderr
    nowhere = loa("voice", "use", "vais-thu", "--zone", "88888", "--data", data)
    assert nowhere.returncode != 0 and "--zone" in nowhere.stderr
    for result in (unknown, nowhere):
        assert "Traceback" not in result.stderr


def test_a_file_that_is_not_a_voice_is_refused_and_nothing_installed(tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    wrong = tmp_path / "giong.onnx"
    wrong.write_bytes(b"not a model")
    refused = loa("voice", "add", str(wrong), "--data", data)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "giong.onnx.json does not exist" in refused.stderr
    english = make_voice(tmp_path / "en", ["xin chào"])
    config = Path(f"{english}.json")
    config.write_text(config.read_text().replace('"vi"', '"en-us"'), encoding="utf-8")
    refused = loa("voice", "add", str(english), "--data", data)
    assert refused.returncode != 0 and "must be a Vietnamese one" in refused.stderr
    assert not (tmp_path / "var" / "voices").exists() or not any(
        (tmp_path / "var" / "voices").iterdir()
    )
