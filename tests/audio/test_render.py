"""render_announcement end to end: real ffmpeg, real files, checked from the MP3 frames."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audio import AudioError, probe, probe_duration_s, render_announcement
from audio import chime as chimes
from audio import programme as prog
from audio.ffmpeg import AudioSegment, ffmpeg_exe
from wire.mp3 import iter_frames

SPEECH_S = 3.0
# MP3 adds encoder priming and padding (about two frames); decoding an MP3 input adds its own.
TOLERANCE_S = 0.12


def opening_s() -> float:
    """Everything before the first word when the chime is on."""
    return (prog.LEAD_IN_MS + len(chimes.opening_chime()) + prog.CHIME_TO_SPEECH_MS) / 1000


def expected_s(speech_s: float, repeat: int = 1, gap_ms: int = 1000, chime: bool = True) -> float:
    fixed = opening_s() if chime else prog.LEAD_IN_MS / 1000
    return fixed + repeat * speech_s + (repeat - 1) * gap_ms / 1000 + prog.TAIL_MS / 1000


def assert_broadcast_format(data: bytes) -> None:
    """Every frame, not just the first: MPEG-2 Layer III, 32 kbps, 22050 Hz, mono."""
    frames = list(iter_frames(data))
    assert frames, "no MPEG frames"
    assert frames[0][0] == 0, "output must start with a frame (no ID3 tag)"
    for _offset, header in frames:
        assert (header.version, header.layer) == ("2", 3)
        assert header.bitrate_kbps == 32
        assert header.sample_rate == 22050
        assert header.channel_mode == "mono"
    last_offset, last = frames[-1]
    assert last_offset + last.frame_length == len(data), "trailing bytes after the last frame"


def test_render_from_wav(speech_wav: Path) -> None:
    data = render_announcement([speech_wav])
    assert_broadcast_format(data)
    assert probe_duration_s(data) == pytest.approx(expected_s(SPEECH_S), abs=TOLERANCE_S)


def test_render_from_mp3(speech_mp3: Path) -> None:
    data = render_announcement([speech_mp3])
    assert_broadcast_format(data)
    assert probe_duration_s(data) == pytest.approx(expected_s(SPEECH_S), abs=TOLERANCE_S)


def test_render_accepts_str_paths_and_tuples(speech_wav: Path) -> None:
    assert render_announcement([str(speech_wav)]) == render_announcement((speech_wav,))


def test_unicode_and_spaces_in_file_names(speech_mp3: Path, tmp_path: Path) -> None:
    """Names reach ffmpeg as file: URLs; Vietnamese, spaces, % and a leading dash are fine."""
    odd = tmp_path / "-thông báo 100% (bão số 3).mp3"
    odd.write_bytes(speech_mp3.read_bytes())
    assert render_announcement([odd]) == render_announcement([speech_mp3])


def test_repeat_three_reads_the_speech_three_times(speech_wav: Path) -> None:
    once = probe_duration_s(render_announcement([speech_wav], repeat=1, gap_ms=500))
    thrice = probe_duration_s(render_announcement([speech_wav], repeat=3, gap_ms=500))
    assert thrice == pytest.approx(expected_s(SPEECH_S, 3, 500), abs=TOLERANCE_S)
    fixed = opening_s() + prog.TAIL_MS / 1000
    speech_once = once - fixed
    speech_thrice = thrice - fixed - 2 * 0.5
    assert speech_thrice / speech_once == pytest.approx(3.0, rel=0.03)


def test_without_chime_and_with_closing_chime(speech_wav: Path) -> None:
    plain = probe_duration_s(render_announcement([speech_wav], chime=False))
    assert plain == pytest.approx(expected_s(SPEECH_S, chime=False), abs=TOLERANCE_S)
    closing = probe_duration_s(render_announcement([speech_wav], closing_chime=True))
    extra = (prog.SPEECH_TO_CLOSING_MS + len(chimes.closing_chime())) / 1000
    assert closing == pytest.approx(expected_s(SPEECH_S) + extra, abs=TOLERANCE_S)


def test_several_speech_files_are_read_in_order_with_short_gaps(
    speech_wav: Path, make_wav: Callable[..., Path]
) -> None:
    second = make_wav("second.wav", 2.0)
    data = render_announcement([speech_wav, second], repeat=2, gap_ms=800)
    reading = SPEECH_S + prog.BETWEEN_PARTS_MS / 1000 + 2.0
    assert probe_duration_s(data) == pytest.approx(expected_s(reading, 2, 800), abs=TOLERANCE_S)


def test_loudness_is_normalized(make_wav: Callable[..., Path], measure: Callable[..., Any]) -> None:
    """A whisper and a shout come out at −16 LUFS (ebur128 on the MP3), peaks under control."""
    levels = []
    for name, peak in (("quiet.wav", 0.01), ("loud.wav", 1.0)):
        data = render_announcement([make_wav(name, SPEECH_S, peak=peak)], chime=False)
        measured = measure(data)
        assert measured.lufs == pytest.approx(prog.SPEECH_TARGET_LUFS, abs=1.5)
        assert measured.true_peak_dbtp <= -1.0
        levels.append(measured.lufs)
    assert abs(levels[0] - levels[1]) < 0.5


def test_chime_is_quieter_than_speech_but_audible(
    speech_wav: Path, measure: Callable[..., Any]
) -> None:
    raw = decode_raw(render_announcement([speech_wav]))
    start = prog.LEAD_IN_MS * 22050 // 1000
    chime_samples = len(chimes.opening_chime().raw_data) // 2
    chime_part = raw[2 * start : 2 * (start + chime_samples)]
    chime_level = measure(wav_bytes(chime_part)).lufs
    assert chime_level == pytest.approx(prog.CHIME_TARGET_LUFS, abs=1.5)


def test_leading_and_trailing_silence_is_trimmed(make_wav: Callable[..., Path]) -> None:
    padded = make_wav("padded.wav", 2.0, silence_s=1.0)  # 1 s + 2 s speech + 1 s
    duration = probe_duration_s(render_announcement([padded]))
    kept = 2 * prog.TRIM_KEEP_MS / 1000
    assert duration == pytest.approx(expected_s(2.0 + kept), abs=TOLERANCE_S)


def test_silent_speech_file_is_rendered_as_is(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    AudioSegment.silent(duration=1500, frame_rate=22050).export(silent, format="wav").close()
    data = render_announcement([silent], chime=False)
    assert probe_duration_s(data) == pytest.approx(expected_s(1.5, chime=False), abs=TOLERANCE_S)


def test_float_wav_falls_back_to_ffmpeg(
    speech_wav: Path, tmp_path: Path, run_ffmpeg: Callable[..., None]
) -> None:
    """pydub cannot read 32-bit float WAV itself; ffmpeg decodes it instead."""
    float_wav = tmp_path / "float.wav"
    run_ffmpeg("-i", str(speech_wav), "-c:a", "pcm_f32le", str(float_wav))
    data = render_announcement([float_wav])
    assert probe_duration_s(data) == pytest.approx(expected_s(SPEECH_S), abs=TOLERANCE_S)


def test_render_is_deterministic(speech_wav: Path, speech_mp3: Path) -> None:
    first = render_announcement([speech_wav, speech_mp3], repeat=2)
    assert render_announcement([speech_wav, speech_mp3], repeat=2) == first


def test_ffprobe_is_never_used(speech_mp3: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """imageio-ffmpeg ships no ffprobe; pydub's probing path must never run."""

    def no_probe(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ffprobe must not be called")

    # By name: pydub is imported through audio.ffmpeg, which silences its import warnings.
    monkeypatch.setattr("pydub.audio_segment.mediainfo_json", no_probe)
    monkeypatch.setattr("pydub.utils.mediainfo_json", no_probe)
    assert_broadcast_format(render_announcement([speech_mp3]))
    assert AudioSegment.converter == ffmpeg_exe()


def test_importing_audio_emits_no_warnings() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import audio"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_thirty_seconds_of_speech(make_wav: Callable[..., Path]) -> None:
    long_speech = make_wav("thirty.wav", 30.0)
    data = render_announcement([long_speech])
    assert probe(data).duration_s == pytest.approx(expected_s(30.0), abs=TOLERANCE_S)


# --- errors -----------------------------------------------------------------------------------


def test_missing_file_names_the_file(speech_wav: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-speech.wav"
    with pytest.raises(AudioError, match=re.escape(str(missing))):
        render_announcement([speech_wav, missing])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.mp3", "Thông báo: đây không phải âm thanh.\n".encode() * 50),
        ("random.wav", bytes(range(256)) * 64),
        ("broken-header.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)),
        ("empty.mp3", b""),
    ],
)
def test_garbage_file_names_the_file(tmp_path: Path, name: str, content: bytes) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(AudioError, match=re.escape(name)):
        render_announcement([bad])


def test_directory_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(AudioError, match=re.escape(str(folder))):
        render_announcement([folder])


def test_wav_without_samples_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "zero-frames.wav"
    AudioSegment.silent(duration=0, frame_rate=22050).export(empty, format="wav").close()
    with pytest.raises(AudioError, match=re.escape(empty.name)):
        render_announcement([empty])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeat": 0}, "repeat"),
        ({"repeat": 11}, "repeat"),
        ({"repeat": "2"}, "repeat"),
        ({"repeat": True}, "repeat"),
        ({"gap_ms": -1}, "gap_ms"),
        ({"gap_ms": 1.5}, "gap_ms"),
    ],
)
def test_bad_arguments(speech_wav: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AudioError, match=message):
        render_announcement([speech_wav], **kwargs)  # type: ignore[arg-type]


def test_bad_speech_file_lists(speech_wav: Path) -> None:
    with pytest.raises(AudioError, match="no speech files"):
        render_announcement([])
    with pytest.raises(AudioError, match="sequence of paths"):
        render_announcement(speech_wav)  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="must be a path"):
        render_announcement([b"bytes-are-not-a-path"])  # type: ignore[list-item]
    with pytest.raises(AudioError, match="sequence of paths"):
        render_announcement(42)  # type: ignore[arg-type]


def test_encoder_failure_is_an_audio_error(
    speech_wav: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'simulated encoder crash' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr("audio.ffmpeg.ffmpeg_exe", lambda: str(broken))
    with pytest.raises(AudioError, match="simulated encoder crash"):
        render_announcement([speech_wav])


def decode_raw(data: bytes) -> bytes:
    """Rendered MP3 bytes back to raw 22.05 kHz mono PCM, by the bundled ffmpeg directly."""
    return subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout


def wav_bytes(pcm: bytes) -> bytes:
    """Raw 22.05 kHz mono PCM as a WAV file in memory."""
    with tempfile.SpooledTemporaryFile() as handle:
        with wave.open(handle, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(22050)
            out.writeframes(pcm)
        handle.seek(0)
        return handle.read()
