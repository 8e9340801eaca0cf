"""Long programmes are encoded on several cores, cut where the audio is quiet."""

from __future__ import annotations

import array
import math

from audio import probe
from audio.ffmpeg import SAMPLE_RATE, encode_pcm, split_at_quiet_points
from audio.formats import OutputFormat


def _tone_with_pause(seconds: float, pause_at: float) -> bytes:
    samples = array.array("h")
    for index in range(int(seconds * SAMPLE_RATE)):
        t = index / SAMPLE_RATE
        quiet = pause_at <= t < pause_at + 0.5
        samples.append(0 if quiet else int(8000 * math.sin(2 * math.pi * 440 * t)))
    return samples.tobytes()


def test_cut_falls_in_the_pause_and_loses_nothing() -> None:
    pcm = _tone_with_pause(90.0, pause_at=46.0)
    pieces = split_at_quiet_points(pcm, 2)
    assert len(pieces) == 2
    assert b"".join(pieces) == pcm
    cut_s = len(pieces[0]) / 2 / SAMPLE_RATE
    assert 46.0 <= cut_s <= 46.5


def test_short_audio_is_not_split() -> None:
    pcm = _tone_with_pause(20.0, pause_at=10.0)
    assert split_at_quiet_points(pcm, 2) == [pcm]


def test_joined_mp3_is_one_valid_stream_of_the_right_length() -> None:
    pcm = _tone_with_pause(90.0, pause_at=46.0)
    info = probe(encode_pcm(pcm, OutputFormat.MP3))
    assert info.bitrates_kbps == frozenset({32}) and info.sample_rate == 22050
    assert abs(info.duration_s - 90.0) < 0.3
