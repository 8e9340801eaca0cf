"""The generated chime: deterministic, the right length, audible, click-free."""

from __future__ import annotations

from audio import chime
from audio.ffmpeg import SAMPLE_RATE
from audio.loudness import estimate_lufs


def test_opening_chime_is_deterministic() -> None:
    first = chime.opening_chime()
    assert chime.opening_chime() is first  # cached
    rebuilt = chime._synthesize(chime.OPENING_NOTES, chime.OPENING_LENGTH_S)
    assert rebuilt.raw_data == first.raw_data


def test_opening_chime_format_and_duration() -> None:
    segment = chime.opening_chime()
    assert segment.frame_rate == SAMPLE_RATE
    assert segment.channels == 1
    assert segment.sample_width == 2
    assert 1500 <= len(segment) <= 2000


def test_opening_chime_is_audible_and_ends_quietly() -> None:
    segment = chime.opening_chime()
    level = estimate_lufs(segment)
    assert level is not None and level > -25
    assert -4.0 < segment.max_dBFS < -2.0
    assert segment[-20:].dBFS < segment.dBFS - 25  # fades out: no click at the end
    assert segment[:1].max < segment.max // 4  # soft attack: no click at the start


def test_closing_chime_is_shorter_and_deterministic() -> None:
    closing = chime.closing_chime()
    rebuilt = chime._synthesize(chime.CLOSING_NOTES, chime.CLOSING_LENGTH_S)
    assert rebuilt.raw_data == closing.raw_data
    assert 1000 <= len(closing) < len(chime.opening_chime())
    assert estimate_lufs(closing) is not None
    assert closing.raw_data != chime.opening_chime().raw_data[: len(closing.raw_data)]
