"""render_programme: layout (chime, ident, repeats, gaps, outro), −16 LUFS, MP3 and Opus."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audio import (
    AudioError,
    OutputFormat,
    ProgrammeSpec,
    probe_duration_s,
    render_announcement,
    render_programme,
)
from audio import chime as chimes
from audio import programme as prog
from wire.mp3 import iter_frames

SPEECH_S = 3.0
IDENT_S = 1.5
TOLERANCE_S = 0.12


def opening_s() -> float:
    return (prog.LEAD_IN_MS + len(chimes.opening_chime()) + prog.CHIME_TO_SPEECH_MS) / 1000


def assert_broadcast_mp3(data: bytes) -> None:
    frames = list(iter_frames(data))
    assert frames and frames[0][0] == 0
    for _offset, header in frames:
        assert (header.version, header.layer, header.bitrate_kbps) == ("2", 3, 32)
        assert (header.sample_rate, header.channel_mode) == (22050, "mono")


@pytest.fixture(scope="module")
def ident_wav(make_wav: Callable[..., Path]) -> Path:
    return make_wav("ident.wav", IDENT_S, peak=0.2)


def test_spec_defaults_and_normalization(speech_wav: Path) -> None:
    spec = ProgrammeSpec([str(speech_wav)], ident=str(speech_wav), format="opus")  # type: ignore[arg-type]
    assert spec.speech_files == (speech_wav,)
    assert spec.ident == speech_wav
    assert spec.format is OutputFormat.OPUS
    defaults = ProgrammeSpec([speech_wav])
    assert (defaults.repeat, defaults.gap_ms, defaults.intro_chime) == (1, 1500, True)
    assert (defaults.ident, defaults.outro_chime) == (None, False)
    assert defaults.format is OutputFormat.MP3
    assert OutputFormat.MP3.mime_type == "audio/mpeg" and OutputFormat.OPUS.suffix == ".opus"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speech_files": []}, "no speech files"),
        ({"speech_files": "speech.wav"}, "sequence of paths"),
        ({"speech_files": [3]}, "must be a path"),
        ({"repeat": 0}, "repeat must be an integer from 1 to 10"),
        ({"repeat": 2.0}, "repeat"),
        ({"gap_ms": 60_001}, "gap_ms"),
        ({"gap_ms": True}, "gap_ms"),
        ({"ident": 5}, "ident must be a path"),
        ({"format": "wav"}, "format must be one of mp3, opus"),
    ],
)
def test_bad_specs_fail_when_made(speech_wav: Path, kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"speech_files": [speech_wav], **kwargs}
    with pytest.raises(AudioError, match=re.escape(message)):
        ProgrammeSpec(**arguments)


def test_render_announcement_is_render_programme(speech_wav: Path) -> None:
    """The broadcast core's call is a programme without ident, gap 1 s, in MP3."""
    spec = ProgrammeSpec([speech_wav], repeat=2, gap_ms=1000)
    assert render_announcement([speech_wav], repeat=2) == render_programme(spec)


def test_full_layout_duration(speech_wav: Path, ident_wav: Path) -> None:
    """Chime, ident, speech read three times 1.5 s apart, closing chime: every part is there."""
    spec = ProgrammeSpec([speech_wav], repeat=3, gap_ms=1500, ident=ident_wav, outro_chime=True)
    data = render_programme(spec)
    assert_broadcast_mp3(data)
    expected = (
        opening_s()
        + IDENT_S + prog.IDENT_TO_SPEECH_MS / 1000
        + 3 * SPEECH_S + 2 * 1.5
        + (prog.SPEECH_TO_CLOSING_MS + len(chimes.closing_chime())) / 1000
        + prog.TAIL_MS / 1000
    )  # fmt: skip
    assert probe_duration_s(data) == pytest.approx(expected, abs=TOLERANCE_S)


def test_ident_without_chime(speech_wav: Path, ident_wav: Path) -> None:
    data = render_programme(ProgrammeSpec([speech_wav], intro_chime=False, ident=ident_wav))
    expected = (
        prog.LEAD_IN_MS / 1000 + IDENT_S + prog.IDENT_TO_SPEECH_MS / 1000 + SPEECH_S
        + prog.TAIL_MS / 1000
    )  # fmt: skip
    assert probe_duration_s(data) == pytest.approx(expected, abs=TOLERANCE_S)


def test_ident_is_played_once_and_first(
    speech_wav: Path, ident_wav: Path, decoded_seconds: Callable[..., float]
) -> None:
    """The ident comes before the speech: with an ident the speech starts later, not earlier."""
    plain = render_programme(ProgrammeSpec([speech_wav], repeat=2, intro_chime=False))
    with_ident = render_programme(
        ProgrammeSpec([speech_wav], repeat=2, intro_chime=False, ident=ident_wav)
    )
    extra = decoded_seconds(with_ident) - decoded_seconds(plain)
    assert extra == pytest.approx(IDENT_S + prog.IDENT_TO_SPEECH_MS / 1000, abs=TOLERANCE_S)


def test_loudness_of_speechlike_input(speechlike_wav: Path, measure: Callable[..., Any]) -> None:
    """Speech-like sound recorded 30 dB too low comes out at −16 LUFS ± 1.5, peaks ≤ −1 dBTP."""
    data = render_programme(ProgrammeSpec([speechlike_wav], repeat=2))
    measured = measure(data)
    assert measured.lufs == pytest.approx(-16.0, abs=1.5)
    assert measured.true_peak_dbtp <= -1.0


def test_loudness_of_speechlike_mp3_input(
    speechlike_wav: Path,
    tmp_path: Path,
    run_ffmpeg: Callable[..., None],
    measure: Callable[..., Any],
) -> None:
    """Through the decode-and-measure path (not plain WAV) the level is the same."""
    source = tmp_path / "speechlike.mp3"
    run_ffmpeg("-i", str(speechlike_wav), "-c:a", "libmp3lame", "-b:a", "64k", str(source))
    from_mp3 = measure(render_programme(ProgrammeSpec([source], intro_chime=False))).lufs
    from_wav = measure(render_programme(ProgrammeSpec([speechlike_wav], intro_chime=False))).lufs
    assert from_mp3 == pytest.approx(-16.0, abs=1.5)
    assert from_mp3 == pytest.approx(from_wav, abs=0.5)


def test_parts_at_different_levels_come_out_equal(
    make_wav: Callable[..., Path], measure: Callable[..., Any], tmp_path: Path
) -> None:
    """A quiet ident and a loud speech file are each brought to the same loudness."""
    quiet = make_wav("ident-quiet.wav", 3.0, peak=0.02)
    loud = make_wav("speech-loud.wav", 3.0, peak=0.9)
    levels = []
    for path in (quiet, loud):
        data = render_programme(ProgrammeSpec([path], intro_chime=False))
        levels.append(measure(data).lufs)
    both = render_programme(ProgrammeSpec([loud], intro_chime=False, ident=quiet))
    assert abs(levels[0] - levels[1]) < 0.5
    assert measure(both).lufs == pytest.approx(levels[1], abs=0.5)


def test_opus_output(
    speech_wav: Path, measure: Callable[..., Any], decoded_seconds: Callable[..., float]
) -> None:
    data = render_programme(ProgrammeSpec([speech_wav], format=OutputFormat.OPUS))
    assert data.startswith(b"OggS")
    head = data.index(b"OpusHead")
    assert data[head + 9] == 1  # mono
    expected = opening_s() + SPEECH_S + prog.TAIL_MS / 1000
    assert decoded_seconds(data) == pytest.approx(expected, abs=TOLERANCE_S)
    assert measure(data).lufs == pytest.approx(-16.0, abs=1.5)
    assert render_programme(ProgrammeSpec([speech_wav], format=OutputFormat.OPUS)) == data
    # 24 kbps on average: 3.3 s of Ogg Opus stays well under 32 kbps worth of bytes.
    assert len(data) < expected * 32_000 / 8


def test_opus_without_libopus_is_a_clear_error(
    speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prog, "encoders", lambda: frozenset({"libmp3lame"}))
    with pytest.raises(AudioError, match=r"libopus encoder.*render MP3 instead"):
        render_programme(ProgrammeSpec([speech_wav], format=OutputFormat.OPUS))
    assert_broadcast_mp3(render_programme(ProgrammeSpec([speech_wav])))


def test_missing_ident_names_the_file(speech_wav: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-ident.wav"
    with pytest.raises(AudioError, match=re.escape(str(missing))):
        render_programme(ProgrammeSpec([speech_wav], ident=missing))


def test_programme_is_deterministic(speech_wav: Path, speech_mp3: Path, ident_wav: Path) -> None:
    spec = ProgrammeSpec([speech_wav, speech_mp3], repeat=2, ident=ident_wav, outro_chime=True)
    assert render_programme(spec) == render_programme(spec)
