"""Synthesizer.synthesize_parts: long documents paragraph by paragraph, cached and reported."""

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest

from tts import Synthesizer, TtsError, make_script, normalize
from tts.engines import EspeakEngine, register_engine

if TYPE_CHECKING:  # the fixture's type; conftest is never imported by hand at run time
    from .conftest import FakeBatchExecute


class PartsCountingEngine(EspeakEngine):
    """Real espeak that records every text it is asked to speak."""

    name: ClassVar[str] = "test-parts-counting"
    calls: ClassVar[list[str]] = []
    guard: ClassVar[threading.Lock] = threading.Lock()

    def synthesize(self, text: str, out_path: Path) -> None:
        with self.guard:
            self.calls.append(text)
        super().synthesize(text, out_path)


register_engine(PartsCountingEngine)

TEXT = (
    "THÔNG BÁO\nLịch tiêm phòng dại cho chó, mèo\n\n"
    "a) Thôn Đông: 7h30 ngày 20/4/2024.\n\nb) Thôn Nam: 13h30 ngày 20/4/2024.\n\n"
    "Đề nghị bà con đưa vật nuôi đến đúng giờ."
)


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    PartsCountingEngine.calls.clear()


def test_one_cached_file_per_paragraph_with_progress(tmp_path: Path) -> None:
    synth = Synthesizer(tmp_path, engine="test-parts-counting")
    seen: list[tuple[int, int]] = []
    parts = synth.synthesize_parts(TEXT, lambda done, total: seen.append((done, total)))
    spoken = normalize(TEXT).splitlines()
    assert len(spoken) >= 4
    assert [p.normalized_text for p in parts] == spoken  # reads as the whole text would
    assert PartsCountingEngine.calls == spoken
    assert seen == [(i, len(spoken)) for i in range(1, len(spoken) + 1)]
    assert len({p.path for p in parts}) == len(spoken)
    assert all(p.path.is_file() and not p.cached for p in parts)

    edited = TEXT.replace("13h30", "14h00")
    again = Synthesizer(tmp_path, engine="test-parts-counting").synthesize_parts(edited)
    assert [p.cached for p in again].count(False) == 1  # only the edited paragraph is new
    assert len(PartsCountingEngine.calls) == len(spoken) + 1


def test_parts_of_the_sample_script(tmp_path: Path, sample_text: str) -> None:
    script = make_script(sample_text, commune="Hoằng Hợp")
    parts = Synthesizer(tmp_path).synthesize_parts(script.text)
    assert "\n".join(p.normalized_text for p in parts) == normalize(script.text)
    assert parts[0].normalized_text.startswith("Đài truyền thanh xã Hoằng Hợp xin thông báo")
    assert {p.engine for p in parts} == {"espeak"}


@pytest.mark.parametrize("text", ["", "  \n ", "./."])
def test_empty_text_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(TtsError, match="text is empty"):
        Synthesizer(tmp_path, engine="test-parts-counting").synthesize_parts(text)


def test_engine_failing_part_way_gives_one_voice(
    tmp_path: Path, batchexecute: "FakeBatchExecute", caplog: pytest.LogCaptureFixture
) -> None:
    """gTTS speaks the first paragraph, fails on the second: espeak reads them all, and gTTS
    is not asked again for the rest (each would wait for its own timeout)."""
    batchexecute.statuses = [None, 500]
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, timeout=5)
    with caplog.at_level(logging.WARNING, logger="tts"):
        parts = synth.synthesize_parts(TEXT)
    assert len(batchexecute.texts) == 2
    assert {p.engine for p in parts} == {"espeak"}
    assert [p.normalized_text for p in parts] == normalize(TEXT).splitlines()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "falling back to espeak" in warnings[0] and "500" in warnings[0]
    assert "1 part(s) it had spoken are read by espeak too" in warnings[1]
    assert len(list(tmp_path.glob("*.mp3"))) == 1  # the gTTS part stays cached for next time


def test_all_parts_with_the_chosen_engine(tmp_path: Path, batchexecute: "FakeBatchExecute"):
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, timeout=5)
    parts = synth.synthesize_parts(TEXT)
    assert {(p.engine, p.format) for p in parts} == {("gtts", "mp3")}
    assert batchexecute.texts == normalize(TEXT).splitlines()  # each paragraph fits one request
