"""`loa script` and `loa say`, run as the operator runs them: a real process, real files.

Every mistake gets one clear `loa: …` line naming what to fix, exit status 2, no traceback and
no half-written MP3.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import LOOPBACK, REPO_ROOT

import audio
from loa.cli import _ProgressBar

SAMPLE = REPO_ROOT / "tests" / "tts" / "data" / "ke-hoach-truyen-thong-chinh-sach-hoang-hop.txt"


def loa(*args: str, stdin: str = "", timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(name, None)  # gTTS ignores no_proxy; the test endpoints are on loopback
    return subprocess.run(
        [sys.executable, "-m", "loa.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


def _one_clear_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("loa: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _mp3(path: Path) -> audio.Mp3Info:
    info = audio.probe(path)
    assert (info.layer, info.channels, info.sample_rate) == (3, 1, 22050)
    return info


@pytest.fixture
def not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "cong-van.txt"
    path.write_bytes("Thông báo họp thôn".encode("utf-16"))  # Notepad's "Unicode"
    return path


# loa script


def test_script_prints_what_is_read() -> None:
    result = loa("script", "-f", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    text = result.stdout
    assert text.startswith("Kế hoạch triển khai thực hiện Chỉ thị số 07/CT-TTg")
    assert "Thực hiện Kế hoạch số 182/KH-UBND" in text
    for cut in ("Nơi nhận", "Lê Văn Phượng", "CỘNG HÒA", "./."):
        assert cut not in text


def test_script_with_commune_and_dropped_lines() -> None:
    result = loa("script", "-f", str(SAMPLE), "--commune", "Xã Hoằng Hợp", "--dropped")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "Đài truyền thanh xã Hoằng Hợp xin thông báo: Kế hoạch triển khai thực hiện Chỉ thị"
    )
    cut = result.stderr.splitlines()
    assert cut[0] == "cut from the document (13 lines):"
    assert "  Nơi nhận:" in cut and "  Lê Văn Phượng" in cut and "  ỦY BAN NHÂN DÂN" in cut


def test_script_from_stdin_with_own_opening() -> None:
    document = "THÔNG BÁO\nLịch tiêm phòng dại cho chó, mèo\n\nTiêm từ 7h30 ngày 20/4/2024."
    result = loa("script", "--opening", "Kính thưa bà con, sau đây là {title}.", stdin=document)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Kính thưa bà con, sau đây là Thông báo lịch tiêm phòng dại cho chó, mèo.\n\n"
        "Tiêm từ 7h30 ngày 20/4/2024.\n"
    )


def test_script_opening_needs_commune() -> None:
    result = loa("script", "-f", str(SAMPLE), "--opening", "Đài xã {commune} xin thông báo:")
    _one_clear_line(result, "{commune}", "--commune")


def test_script_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    _one_clear_line(loa("script", "-f", str(missing)), str(missing), "no such file")


def test_script_not_utf8(not_utf8: Path) -> None:
    _one_clear_line(loa("script", "-f", str(not_utf8)), str(not_utf8), "UTF-8")


def test_script_nothing_to_read() -> None:
    header_only = "ỦY BAN NHÂN DÂN\nSố: 12/TB-UBND\n./.\nNơi nhận:\n- Lưu: VT.\n"
    _one_clear_line(loa("script", stdin=header_only), "nothing to read")


# loa say


def test_say_text(tmp_path: Path) -> None:
    out = tmp_path / "out.mp3"
    text = "UBND xã thông báo: họp thôn lúc 19h30."
    result = loa("say", text, "-o", str(out), "--data", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no log chatter and no progress bar when stderr is not a terminal
    assert _mp3(out).duration_s > 3
    assert result.stdout.startswith(f"{out}: 0:")
    assert "1 part (0 from cache), voice espeak" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp3", "tts-cache"]


def test_say_document_as_script_paragraph_by_paragraph(tmp_path: Path) -> None:
    out = tmp_path / "ke-hoach.mp3"
    args = ["say", "-f", str(SAMPLE), "--script", "--commune", "Hoằng Hợp", "-o", str(out)]
    result = loa(*args, "--data", str(tmp_path))
    assert result.returncode == 0, result.stderr
    info = _mp3(out)
    assert 120 < info.duration_s < 900
    parts = int(result.stdout.split(" parts ")[0].rsplit(" ", 1)[1])
    assert parts > 10
    assert len(list((tmp_path / "tts-cache").glob("*.wav"))) == parts  # one file per paragraph

    again = loa(*args, "--data", str(tmp_path), "--repeat", "2", "--no-chime")
    assert again.returncode == 0, again.stderr
    assert f"{parts} parts ({parts} from cache)" in again.stdout
    assert _mp3(out).duration_s > 1.8 * info.duration_s


def test_say_repeat_and_chime(tmp_path: Path) -> None:
    text = "Mời bà con đến nhà văn hóa thôn họp lúc 19h."
    durations = {}
    for name, extra in {
        "plain": [],
        "no-chime": ["--no-chime"],
        "twice": ["--repeat", "2"],
    }.items():
        out = tmp_path / f"{name}.mp3"
        result = loa("say", text, "-o", str(out), "--data", str(tmp_path), *extra)
        assert result.returncode == 0, result.stderr
        durations[name] = _mp3(out).duration_s
    assert durations["no-chime"] < durations["plain"] - 1
    assert durations["twice"] > durations["plain"] + 2


def test_say_gtts_unreachable_falls_back_to_espeak(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    out = tmp_path / "out.mp3"
    result = loa(
        "say", "Xin chào bà con.", "-o", str(out), "--data", str(tmp_path), "--tts", "gtts",
        "--gtts-url", f"http://{LOOPBACK}:{port}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "voice espeak" in result.stdout
    assert "falling back to espeak" in result.stderr and "Traceback" not in result.stderr
    _mp3(out)


@pytest.mark.parametrize("text", ["   ", "./."])
def test_say_empty_text(tmp_path: Path, text: str) -> None:
    out = tmp_path / "out.mp3"
    _one_clear_line(loa("say", text, "-o", str(out), "--data", str(tmp_path)), "nothing to say")
    assert not out.exists()


def test_say_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    out = tmp_path / "out.mp3"
    result = loa("say", "-f", str(missing), "-o", str(out), "--data", str(tmp_path))
    _one_clear_line(result, str(missing))
    assert not out.exists()


def test_say_not_utf8(tmp_path: Path, not_utf8: Path) -> None:
    out = tmp_path / "out.mp3"
    result = loa("say", "-f", str(not_utf8), "-o", str(out), "--data", str(tmp_path))
    _one_clear_line(result, str(not_utf8), "UTF-8")


def test_say_unwritable_output(tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "out.mp3"
    result = loa("say", "Xin chào.", "-o", str(out), "--data", str(tmp_path))
    _one_clear_line(result, str(out), "does not exist")
    result = loa("say", "Xin chào.", "-o", str(tmp_path), "--data", str(tmp_path))
    _one_clear_line(result, "is a directory")
    assert not (tmp_path / "tts-cache").exists()  # refused before any synthesis


def test_say_unknown_engine(tmp_path: Path) -> None:
    result = loa("say", "Xin chào.", "-o", str(tmp_path / "o.mp3"), "--tts", "festival")
    _one_clear_line(result, "unknown tts engine 'festival'", "espeak", "gtts", "piper")


def test_say_piper_model_missing(tmp_path: Path) -> None:
    model = tmp_path / "vi_VN-vais1000-medium.onnx"
    result = loa(
        "say", "Xin chào.", "-o", str(tmp_path / "o.mp3"), "--data", str(tmp_path),
        "--tts", "piper", "--model", str(model),
    )  # fmt: skip
    _one_clear_line(result, str(model), "does not exist")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--repeat", "0"], "repeat"),
        (["--model", "voice.onnx"], "--tts piper"),
        (["--gtts-url", "http://127.0.0.1:9"], "--tts gtts"),
        (["-f", str(SAMPLE)], "not both"),
    ],
)
def test_say_bad_options(tmp_path: Path, extra: list[str], needle: str) -> None:
    out = tmp_path / "o.mp3"
    result = loa("say", "Xin chào.", "-o", str(out), "--data", str(tmp_path), *extra)
    _one_clear_line(result, needle)
    assert not out.exists()


def test_progress_bar_draws_in_place() -> None:
    stream = io.StringIO()
    bar = _ProgressBar(stream, width=10)
    for done in range(1, 5):
        bar(done, 4)
    assert stream.getvalue() == (
        "\r[##........] 1/4\r[#####.....] 2/4\r[#######...] 3/4\r[##########] 4/4\n"
    )
