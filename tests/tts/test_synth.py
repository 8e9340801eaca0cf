"""Synthesizer: normalization, content-hash cache, atomic files, fallback to espeak."""

import logging
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import pytest

from tts import SpeechResult, Synthesizer, TtsError, normalize
from tts.engines import Engine, EspeakEngine, register_engine


class CountingEngine(EspeakEngine):
    """Real espeak that records every synthesis it is asked for."""

    name: ClassVar[str] = "test-counting"
    calls: ClassVar[list[str]] = []
    guard: ClassVar[threading.Lock] = threading.Lock()

    def synthesize(self, text: str, out_path: Path) -> None:
        with self.guard:
            self.calls.append(text)
        super().synthesize(text, out_path)


class BrokenEngine(Engine):
    """Writes half a file, then fails: the cache must never keep such a file."""

    name: ClassVar[str] = "test-broken"
    output_format: ClassVar[str] = "mp3"

    def __init__(self, error: str = "tts") -> None:
        self.error = error

    def synthesize(self, text: str, out_path: Path) -> None:
        out_path.write_bytes(b"ID3 half an mp3")
        if self.error == "tts":
            raise TtsError("the broken engine broke")
        raise RuntimeError("a bug in an engine")


register_engine(CountingEngine)
register_engine(BrokenEngine)


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    CountingEngine.calls.clear()


def test_second_synthesis_comes_from_cache(tmp_path: Path) -> None:
    synth = Synthesizer(tmp_path, engine="test-counting")
    first = synth.synthesize("Thông báo của UBND xã ngày 21/3/2023.")
    assert isinstance(first, SpeechResult)
    assert (first.cached, first.engine, first.format) == (False, "test-counting", "wav")
    assert first.path.parent == tmp_path and first.path.suffix == ".wav"
    assert first.normalized_text == normalize("Thông báo của UBND xã ngày 21/3/2023.")
    assert CountingEngine.calls == [first.normalized_text]

    second = synth.synthesize("Thông báo của UBND xã ngày 21/3/2023.")
    assert second.cached is True
    assert second.path == first.path
    assert len(CountingEngine.calls) == 1


def test_cache_is_by_spoken_form_and_survives_restart(tmp_path: Path) -> None:
    Synthesizer(tmp_path, engine="test-counting").synthesize("Họp thôn lúc 19h.")
    # Another process (a new Synthesizer) with the same text, wrapped differently.
    again = Synthesizer(tmp_path, engine="test-counting").synthesize("Họp thôn\n\nlúc  19h")
    assert again.cached is True
    assert len(CountingEngine.calls) == 1


def test_options_that_change_the_sound_change_the_key(tmp_path: Path) -> None:
    normal = Synthesizer(tmp_path, engine="test-counting").synthesize("Xin chào bà con.")
    slow = Synthesizer(tmp_path, engine="test-counting", rate=120).synthesize("Xin chào bà con.")
    assert normal.path != slow.path
    assert not slow.cached
    assert len(CountingEngine.calls) == 2


def test_extra_abbreviations_are_applied(tmp_path: Path) -> None:
    synth = Synthesizer(tmp_path, engine="test-counting", extra_abbreviations={"HH": "Hoằng Hợp"})
    assert synth.synthesize("UBND xã HH").normalized_text == "Ủy ban nhân dân xã Hoằng Hợp."


@pytest.mark.parametrize("text", ["", "   ", "\n \n\t", "./."])
def test_empty_text_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(TtsError, match="text is empty"):
        Synthesizer(tmp_path, engine="test-counting").synthesize(text)
    assert CountingEngine.calls == []


def test_failed_engine_leaves_no_file_and_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tts"):
        result = Synthesizer(tmp_path, engine="test-broken").synthesize("Xin chào.")
    assert (result.engine, result.format, result.cached) == ("espeak", "wav", False)
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]
    assert "the broken engine broke" in caplog.text


def test_engine_bug_propagates_without_leftovers(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="a bug in an engine"):
        Synthesizer(tmp_path, engine="test-broken", error="bug").synthesize("Xin chào.")
    assert list(tmp_path.iterdir()) == []


def test_unknown_engine(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="unknown tts engine 'nope'"):
        Synthesizer(tmp_path, engine="nope")


def test_concurrent_requests_for_one_text_synthesize_once(tmp_path: Path) -> None:
    synth = Synthesizer(tmp_path / "cache", engine="test-counting")
    texts = ["Loa phát thanh xã.", "Thông báo mất điện.", "Loa phát thanh xã."] * 3
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        results = list(pool.map(synth.synthesize, texts, timeout=60))
    assert sorted(CountingEngine.calls) == ["Loa phát thanh xã.", "Thông báo mất điện."]
    assert sum(not r.cached for r in results) == 2
    assert len({r.path for r in results}) == 2
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".wav", ".wav"]


def test_whole_sample_is_spoken(tmp_path: Path, sample_text: str) -> None:
    """The real commune plan, end to end with the default engine: minutes of clean speech."""
    result = Synthesizer(tmp_path).synthesize(sample_text)
    assert (result.engine, result.format, result.cached) == ("espeak", "wav", False)
    with wave.open(str(result.path), "rb") as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert 120 < seconds < 900
    assert result.normalized_text == normalize(sample_text)
