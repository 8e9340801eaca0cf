"""Loudness measurement parsing and levelling: limit, measure, trim down to exactly −16 LUFS."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audio import AudioError
from audio import level as level_module
from audio.ffmpeg import AudioSegment, decode_measured, from_pcm, measure_segment
from audio.level import first_gain_db, level_pcm, level_speech_file
from audio.loudness import (
    LIMITER_CEILING_DBFS,
    TARGET_LUFS,
    Loudness,
    estimate_lufs,
    parse_ebur128_summary,
)

SUMMARY = """[Parsed_ebur128_0 @ 0x1] [info] Summary:

  Integrated loudness:
    I:         {i} LUFS
    Threshold: -33.2 LUFS

  Loudness range:
    LRA:         1.5 LU
    Threshold: -43.3 LUFS
    LRA low:   -24.0 LUFS
    LRA high:  -22.5 LUFS

  Sample peak:
    Peak:       {peak} dBFS
"""


def test_parse_summary_takes_the_last_one() -> None:
    first = SUMMARY.format(i="-30.0", peak="-9.0")
    log = first + "noise\n" + SUMMARY.format(i="-23.1", peak="-0.4")
    assert parse_ebur128_summary(log) == Loudness(-23.1, 1.5, -0.4)
    assert parse_ebur128_summary("no summary here") is None


def test_silence_is_silent() -> None:
    silent = parse_ebur128_summary(SUMMARY.format(i="-70.0", peak="-inf"))
    assert silent is not None and silent.silent
    assert silent.sample_peak_dbfs == -math.inf
    assert not Loudness(-45.0).silent
    assert estimate_lufs(AudioSegment.silent(duration=500, frame_rate=22050)) is None


def test_measure_agrees_with_an_independent_measurement(
    speechlike_wav: Path, measure: Callable[..., Any]
) -> None:
    segment, loudness = decode_measured(speechlike_wav)
    reference = measure(speechlike_wav)
    assert loudness.integrated_lufs == pytest.approx(reference.lufs, abs=0.3)
    assert measure_segment(segment).integrated_lufs == pytest.approx(reference.lufs, abs=0.3)


def test_estimate_is_close_to_bs1770_for_speech(speechlike_wav: Path) -> None:
    segment, loudness = decode_measured(speechlike_wav)
    estimate = estimate_lufs(segment)
    assert estimate is not None
    assert estimate == pytest.approx(loudness.integrated_lufs, abs=3.0)


@pytest.mark.parametrize("name", ["speechlike", "tone"])
def test_level_speech_file_lands_on_target(
    name: str, speechlike_wav: Path, make_wav: Callable[..., Path]
) -> None:
    """Speech with 15 dB peaks (limited) and a steady tone (not limited) both end at −16."""
    path = speechlike_wav if name == "speechlike" else make_wav("steady.wav", 3.0, peak=0.05)
    segment = level_speech_file(path)
    measured = measure_segment(segment)
    assert measured.integrated_lufs == pytest.approx(TARGET_LUFS, abs=0.25)
    assert measured.sample_peak_dbfs is not None
    assert measured.sample_peak_dbfs <= LIMITER_CEILING_DBFS + 0.1


def test_first_gain_overshoots_more_when_more_is_limited() -> None:
    gentle = first_gain_db(-30.0, -20.0, estimated=False)  # peaks stay under the ceiling
    peaky = first_gain_db(-30.0, -10.0, estimated=False)  # 6 dB of peaks to limit
    assert gentle == pytest.approx(14.0 + level_module.BASE_OVERSHOOT_DB)
    assert peaky > gentle
    assert first_gain_db(-30.0, -20.0, estimated=True) > gentle


def test_a_short_first_pass_is_repeated(
    speechlike_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the first gain leaves the limited result under target, another pass fixes it."""
    segment, loudness = decode_measured(speechlike_wav)
    monkeypatch.setattr(level_module, "first_gain_db", lambda *_args, **_kwargs: 0.0)
    levelled = level_pcm(
        segment.raw_data,
        loudness_lufs=loudness.integrated_lufs,
        peak_dbfs=loudness.sample_peak_dbfs or 0.0,
        estimated=False,
        name="test",
    )
    assert levelled.passes >= 2
    result = from_pcm(levelled.pcm).apply_gain(levelled.trim_db)
    assert measure_segment(result).integrated_lufs == pytest.approx(TARGET_LUFS, abs=0.3)


def test_silent_file_is_returned_as_is(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    AudioSegment.silent(duration=800, frame_rate=22050).export(silent, format="wav").close()
    segment = level_speech_file(silent)
    assert len(segment) == 800 and segment.max == 0


def test_level_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "not-sound.wav"
    bad.write_bytes(b"plain text, not a sound file\n" * 20)
    with pytest.raises(AudioError, match=r"not-sound\.wav"):
        level_speech_file(bad)


def test_a_filter_chain_runs_before_the_gain_and_still_lands_on_target(
    speechlike_wav: Path,
) -> None:
    """The programme's speech processing (audio.programme.SPEECH_FILTERS) goes through the
    same levelling: same length, −16 LUFS, peaks under the ceiling, even when the chain takes
    loudness away (here a high-pass that removes most of it, and a compressor)."""
    plain = level_speech_file(speechlike_wav)
    chain = "highpass=f=3000:poles=2,acompressor=threshold=-30dB:ratio=3"
    filtered = level_speech_file(speechlike_wav, filters=chain)
    assert len(filtered.raw_data) == len(plain.raw_data)
    measured = measure_segment(filtered)
    assert measured.integrated_lufs == pytest.approx(TARGET_LUFS, abs=0.25)
    assert measured.sample_peak_dbfs is not None
    assert measured.sample_peak_dbfs <= LIMITER_CEILING_DBFS + 0.1
    assert filtered.raw_data != plain.raw_data
