"""gTTS requests: sentence-aligned chunks of at most 100 characters, and retries on HTTP 429."""

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tts import Synthesizer, TtsError, normalize
from tts.engines import GttsEngine
from tts.engines.gtts_engine import MAX_CHUNK_CHARS, split_chunks

if TYPE_CHECKING:  # the fixture's type; conftest is never imported by hand at run time
    from .conftest import FakeBatchExecute

FAST = {"backoff": 0.05, "timeout": 5}


def _words(text: str) -> list[str]:
    return text.split()


def test_short_sentences_are_packed_whole() -> None:
    text = "Xin chào bà con. Hôm nay trời nắng.\nMục một. Mục đích, yêu cầu."
    assert split_chunks(text) == [
        "Xin chào bà con. Hôm nay trời nắng. Mục một. Mục đích, yêu cầu.",
    ]


def test_sentences_are_never_cut_when_they_fit() -> None:
    first = "Ủy ban nhân dân xã đề nghị các hộ gia đình chủ động phòng chống bão số ba."
    second = "Không ra khơi khi có lệnh cấm biển, gia cố nhà cửa và chặt tỉa cây xanh."
    assert split_chunks(f"{first} {second}") == [first, second]


def test_long_sentence_is_cut_after_commas() -> None:
    clauses = [
        "Thực hiện Kế hoạch số một trăm tám mươi hai của Ủy ban nhân dân huyện Hoằng Hóa,",
        "Ủy ban nhân dân xã Hoằng Hợp ban hành kế hoạch triển khai thực hiện,",
        "trên địa bàn xã như sau.",
    ]
    assert split_chunks(" ".join(clauses)) == [clauses[0], f"{clauses[1]} {clauses[2]}"]


def test_long_clause_is_cut_between_words_in_even_runs() -> None:
    endless = " ".join(["truyền thông chính sách có tác động lớn đến xã hội"] * 6) + "."
    chunks = split_chunks(endless)
    assert len(chunks) == 4  # the fewest runs that fit
    assert all(60 <= len(c) <= MAX_CHUNK_CHARS for c in chunks)  # even, no orphan word
    assert [w for c in chunks for w in _words(c)] == _words(endless)  # no word was cut


def test_a_spoken_number_is_not_cut_and_cuts_prefer_linking_words() -> None:
    dates = (
        "Ngày hai mươi mốt tháng ba năm hai nghìn không trăm hai mươi ba và ngày mười lăm "
        "tháng tư năm hai nghìn không trăm hai mươi tư"
    )
    assert split_chunks(dates) == [
        "Ngày hai mươi mốt tháng ba năm hai nghìn không trăm hai mươi ba",
        "và ngày mười lăm tháng tư năm hai nghìn không trăm hai mươi tư",
    ]


def test_list_marker_stays_with_its_item() -> None:
    text = (
        "Đổi mới phương thức truyền thông và hình thức cung cấp thông tin cho báo chí.\n"
        "Ba. Bố trí cán bộ phụ trách công tác truyền thông chính sách tại xã."
    )
    assert split_chunks(text) == text.splitlines()


def _clause_around(text: str, position: int) -> str:
    """The clause of `text` (between punctuation marks) that contains `position`."""
    start = max(text.rfind(p, 0, position) for p in ".!?…,;:\n") + 1
    ends = [i for i in (text.find(p, position) for p in ".!?…,;:\n") if i >= 0]
    return text[start : min(ends, default=len(text)) + 1].strip()


def _assert_aligned(spoken: str, chunks: list[str]) -> None:
    """Every chunk fits one request, no word is lost or cut, and a chunk ends between words
    only inside a clause too long for one request (a list marker "Hai." counts with it)."""
    assert all(0 < len(c) <= MAX_CHUNK_CHARS for c in chunks)
    assert [w for c in chunks for w in _words(c)] == _words(spoken)
    flat = " ".join(spoken.split())
    position = 0
    for chunk in chunks[:-1]:
        position = flat.index(chunk, position) + len(chunk)
        if chunk[-1] not in ".!?…,;:":
            clause = _clause_around(flat, position)
            marker = re.match(r"(?:\w+ ){0,2}\w+\. ", chunk)
            assert len(clause) + (len(marker.group(0)) if marker else 0) > MAX_CHUNK_CHARS, chunk


def test_whole_sample_chunks(sample_text: str) -> None:
    spoken = normalize(sample_text)
    chunks = split_chunks(spoken)
    _assert_aligned(spoken, chunks)
    punctuated = [c for c in chunks if c[-1] in ".!?…,;:"]
    assert len(punctuated) > len(chunks) * 2 / 3  # most cuts fall at a sentence or clause end


def test_word_longer_than_a_request_is_refused() -> None:
    with pytest.raises(TtsError, match="word of 120 characters"):
        split_chunks("Xin chào " + "a" * 120)


def test_nothing_to_say() -> None:
    assert split_chunks(" . \n , ") == []


def test_requests_are_sentence_aligned(tmp_path: Path, batchexecute: "FakeBatchExecute") -> None:
    sentences = [
        "Đề nghị bà con chủ động phòng chống dịch bệnh cho đàn gia súc, gia cầm.",
        "Tiêm phòng đầy đủ.",
        "Vệ sinh chuồng trại sạch sẽ, định kỳ phun thuốc khử trùng theo hướng dẫn.",
        "Khi phát hiện gia súc ốm, chết, báo ngay cho thú y xã.",
    ]
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, timeout=5)
    result = synth.synthesize("\n".join(sentences))
    assert result.engine == "gtts"
    received = batchexecute.texts
    assert received == [sentences[0] + " " + sentences[1], sentences[2], sentences[3]]
    assert all(len(t) <= MAX_CHUNK_CHARS for t in received)
    assert result.path.read_bytes() == batchexecute.audio * len(received)


def test_long_paragraph_requests(tmp_path: Path, batchexecute: "FakeBatchExecute") -> None:
    """A long normalized paragraph: every request a whole sentence or clause, none over 100."""
    paragraph = (
        "Thực hiện và chỉ đạo thực hiện tốt việc công khai thông tin theo quy định của Luật "
        "Tiếp cận thông tin; Luật Báo chí; Nghị định số 09/2017/NĐ-CP ngày 09/02/2017 của Chính "
        "phủ quy định chi tiết việc phát ngôn và cung cấp thông tin cho báo chí của các cơ quan "
        "hành chính nhà nước. Bố trí cán bộ phụ trách công tác truyền thông chính sách tại xã."
    )
    GttsEngine(base_url=batchexecute.url, timeout=5).synthesize(
        normalize(paragraph), tmp_path / "p.mp3"
    )
    received = batchexecute.texts
    assert len(received) >= 3
    _assert_aligned(normalize(paragraph), received)
    assert " ".join(received) == normalize(paragraph)
    assert received[-1] == "Bố trí cán bộ phụ trách công tác truyền thông chính sách tại xã."


def test_429_twice_then_ok_succeeds_after_backoff(
    tmp_path: Path, batchexecute: "FakeBatchExecute", caplog: pytest.LogCaptureFixture
) -> None:
    batchexecute.statuses = [429, 429]
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, **FAST)
    with caplog.at_level(logging.INFO, logger="tts"):
        result = synth.synthesize("Xin chào bà con.")
    assert (result.engine, result.format) == ("gtts", "mp3")
    assert result.path.read_bytes() == batchexecute.audio
    assert batchexecute.texts == ["Xin chào bà con."] * 3
    waits = [b - a for a, b in zip(batchexecute.times, batchexecute.times[1:], strict=False)]
    assert waits[0] >= 0.05 and waits[1] >= 0.1  # exponential: backoff, then twice as long
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert caplog.text.count("rate-limited (HTTP 429), retry") == 2


def test_default_backoff_is_half_a_second_then_doubling(
    tmp_path: Path, batchexecute: "FakeBatchExecute"
) -> None:
    batchexecute.statuses = [429, 429]
    started = time.monotonic()
    GttsEngine(base_url=batchexecute.url, timeout=5).synthesize("Xin chào.", tmp_path / "x.mp3")
    waits = [b - a for a, b in zip(batchexecute.times, batchexecute.times[1:], strict=False)]
    assert waits[0] == pytest.approx(0.5, abs=0.25)
    assert waits[1] == pytest.approx(1.0, abs=0.25)
    assert time.monotonic() - started < 3


def test_persistent_429_falls_back_to_espeak(
    tmp_path: Path, batchexecute: "FakeBatchExecute", caplog: pytest.LogCaptureFixture
) -> None:
    batchexecute.statuses = [429] * 10
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, **FAST)
    with caplog.at_level(logging.WARNING, logger="tts"):
        result = synth.synthesize("Xin chào bà con.")
    assert (result.engine, result.format) == ("espeak", "wav")
    assert len(batchexecute.texts) == 4  # the first attempt and 3 retries
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "falling back to espeak" in warnings[0] and "429" in warnings[0]


def test_retry_after_beyond_budget_gives_up_at_once(
    tmp_path: Path, batchexecute: "FakeBatchExecute"
) -> None:
    batchexecute.statuses = [429]
    batchexecute.retry_after = "120"
    started = time.monotonic()
    with pytest.raises(TtsError, match="retry budget"):
        GttsEngine(base_url=batchexecute.url, **FAST).synthesize("Xin chào.", tmp_path / "x.mp3")
    assert time.monotonic() - started < 2
    assert len(batchexecute.texts) == 1


def test_retry_after_is_honoured(tmp_path: Path, batchexecute: "FakeBatchExecute") -> None:
    batchexecute.statuses = [429]
    batchexecute.retry_after = "1"
    GttsEngine(base_url=batchexecute.url, **FAST).synthesize("Xin chào.", tmp_path / "x.mp3")
    assert batchexecute.times[1] - batchexecute.times[0] >= 0.95


@pytest.mark.parametrize("status", [403, 500, 503])
def test_other_http_errors_are_not_retried(
    tmp_path: Path, batchexecute: "FakeBatchExecute", status: int
) -> None:
    batchexecute.statuses = [status]
    with pytest.raises(TtsError, match=str(status)):
        GttsEngine(base_url=batchexecute.url, **FAST).synthesize("Xin chào.", tmp_path / "x.mp3")
    assert len(batchexecute.texts) == 1


def test_a_failing_later_chunk_fails_the_whole_text(
    tmp_path: Path, batchexecute: "FakeBatchExecute", caplog: pytest.LogCaptureFixture
) -> None:
    """The second of two requests fails: no half-spoken gTTS file, espeak reads it all."""
    text = (
        "Đề nghị bà con chủ động phòng chống dịch bệnh cho đàn gia súc, gia cầm của gia đình. "
        "Tiêm phòng đầy đủ cho đàn vật nuôi theo lịch của trạm thú y xã Hoằng Hợp."
    )
    assert len(split_chunks(text)) == 2
    batchexecute.statuses = [None, 500]
    synth = Synthesizer(tmp_path, engine="gtts", base_url=batchexecute.url, **FAST)
    with caplog.at_level(logging.WARNING, logger="tts"):
        result = synth.synthesize(text)
    assert result.engine == "espeak"
    assert len(batchexecute.texts) == 2
    assert [p.suffix for p in tmp_path.iterdir()] == [".wav"]
    assert "500" in caplog.text


@pytest.mark.parametrize(
    ("option", "value"),
    [("retries", -1), ("retries", 1.5), ("backoff", -1), ("retry_budget", "soon")],
)
def test_bad_retry_options(option: str, value: object) -> None:
    with pytest.raises(TtsError, match=option):
        GttsEngine(**{option: value})
