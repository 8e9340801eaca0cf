"""gTTS against a local batchexecute server: success, and fallback to espeak on failure."""

import logging
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tts import Synthesizer, TtsError
from tts.engines import GttsEngine

if TYPE_CHECKING:  # the fixture's type; conftest is never imported by hand at run time
    from .conftest import FakeBatchExecute


def test_gtts_synthesizes_through_local_endpoint(
    tmp_path: Path, batchexecute: "FakeBatchExecute"
) -> None:
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, timeout=5)
    result = synth.synthesize("UBND xã thông báo lịch tiêm chủng.")
    assert (result.engine, result.format, result.cached) == ("gtts", "mp3", False)
    assert result.path.suffix == ".mp3"
    assert result.path.read_bytes() == batchexecute.audio
    assert batchexecute.langs == ["vi"]
    assert batchexecute.texts == ["Ủy ban nhân dân xã thông báo lịch tiêm chủng."]

    again = synth.synthesize("UBND xã thông báo lịch tiêm chủng.")
    assert again.cached is True and again.engine == "gtts"
    assert len(batchexecute.texts) == 1  # the server was not asked again


def test_gtts_long_text_is_sent_in_parts(tmp_path: Path, batchexecute: "FakeBatchExecute") -> None:
    text = " ".join(["Đề nghị bà con chủ động phòng chống dịch bệnh cho đàn gia súc."] * 5)
    out = tmp_path / "long.mp3"
    GttsEngine(base_url=batchexecute.url, timeout=5).synthesize(text, out)
    parts = len(batchexecute.texts)
    assert parts >= 3
    assert all(len(t) <= 100 for t in batchexecute.texts)
    assert out.read_bytes() == batchexecute.audio * parts


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("error", "500"), ("garbage", "not MP3 audio")],
)
def test_gtts_bad_answer_falls_back_to_espeak(
    tmp_path: Path,
    batchexecute: "FakeBatchExecute",
    caplog: pytest.LogCaptureFixture,
    mode: str,
    expected: str,
) -> None:
    batchexecute.mode = mode
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, timeout=5)
    with caplog.at_level(logging.WARNING, logger="tts"):
        result = synth.synthesize("Xin chào bà con.")
    assert (result.engine, result.format) == ("espeak", "wav")
    assert result.path.is_file()
    assert len(batchexecute.texts) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "falling back to espeak" in warnings[0].getMessage()
    assert expected in warnings[0].getMessage()


def test_gtts_timeout_falls_back_to_espeak(
    tmp_path: Path, batchexecute: "FakeBatchExecute", caplog: pytest.LogCaptureFixture
) -> None:
    batchexecute.mode = "slow"
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, timeout=0.3)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tts"):
        result = synth.synthesize("Xin chào bà con.")
    assert time.monotonic() - started < batchexecute.slow_seconds
    assert result.engine == "espeak"
    assert "ReadTimeout" in caplog.text and "falling back to espeak" in caplog.text


def test_gtts_connection_refused_falls_back_to_espeak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    synth = Synthesizer(tmp_path, engine="gtts", base_url=f"http://127.0.0.1:{port}", timeout=2)
    with caplog.at_level(logging.WARNING, logger="tts"):
        result = synth.synthesize("Xin chào bà con.")
    assert result.engine == "espeak"
    assert "ConnectionError" in caplog.text


def test_fallback_result_is_cached_and_gtts_retried(
    tmp_path: Path, batchexecute: "FakeBatchExecute"
) -> None:
    batchexecute.mode = "error"
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, timeout=5)
    first = synth.synthesize("Xin chào bà con.")
    second = synth.synthesize("Xin chào bà con.")
    assert (first.engine, first.cached) == ("espeak", False)
    assert (second.engine, second.cached) == ("espeak", True)
    assert len(batchexecute.texts) == 2  # gTTS is tried again: the network may be back
    batchexecute.mode = "ok"
    third = synth.synthesize("Xin chào bà con.")
    assert (third.engine, third.cached) == ("gtts", False)


def test_gtts_engine_error_is_tts_error(tmp_path: Path, batchexecute: "FakeBatchExecute") -> None:
    batchexecute.mode = "error"
    with pytest.raises(TtsError, match="gTTS failed"):
        GttsEngine(base_url=batchexecute.url, timeout=5).synthesize("xin chào", tmp_path / "x.mp3")
