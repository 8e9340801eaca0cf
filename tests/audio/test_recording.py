"""import_recording: real phone and browser formats in, broadcast MP3 at −16 LUFS out; anything
else refused with a message that names the file. Inputs are made by the bundled ffmpeg.
"""

from __future__ import annotations

import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audio import (
    AudioError,
    ProgrammeSpec,
    RecordingError,
    RecordingProblem,
    import_recording,
    probe_duration_s,
    render_programme,
)
from audio import recording as recording_module
from wire.mp3 import iter_frames

SOURCE_S = 3.0
NAME = "Thông báo số 3 (bản ghi).m4a"

# name → (ffmpeg output options, expected container, expected codec)
FORMATS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "phone.m4a": (("-c:a", "aac", "-b:a", "64k"), "m4a", "aac"),
    "safari.mp4": (("-c:a", "aac", "-b:a", "64k"), "mp4", "aac"),
    "voice.mp3": (("-c:a", "libmp3lame", "-b:a", "64k"), "mp3", "mp3"),
    "firefox.ogg": (("-c:a", "libopus", "-b:a", "32k"), "ogg", "opus"),
    "old.ogg": (("-c:a", "libvorbis"), "ogg", "vorbis"),
    "chrome.webm": (("-c:a", "libopus", "-f", "webm", "-live", "1"), "webm", "opus"),
    "recorder.wav": (("-c:a", "pcm_s16le",), "wav", "pcm_s16le"),
    "float.wav": (("-c:a", "pcm_f32le",), "wav", "pcm_f32le"),
    "note.flac": (("-c:a", "flac",), "flac", "flac"),
    "android.3gp": (("-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb", "-b:a", "12.2k"),
                    "3gp", "amr_nb"),
    "voice.amr": (("-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb", "-b:a", "12.2k"),
                  "amr", "amr_nb"),
    "stream.aac": (("-c:a", "aac", "-f", "adts"), "aac", "aac"),
}  # fmt: skip


def _noise(size: int, seed: int) -> bytes:
    """Fixed pseudo-random bytes: random input could, once in a while, contain what ffmpeg takes
    for an MPEG frame and turn 'not audio' into 'damaged', so every run uses the same bytes."""
    return random.Random(seed).randbytes(size)


@pytest.fixture(scope="module")
def rec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="module")
def source_wav(rec_dir: Path, write_speechlike: Callable[..., Path]) -> Path:
    """What a phone hears: 3 s of speech-like sound, stereo 44.1 kHz, at a modest level."""
    return write_speechlike(rec_dir / "source.wav", SOURCE_S, 44100, -12.0, channels=2, seed=11)


@pytest.fixture(scope="module")
def make(rec_dir: Path, source_wav: Path, run_ffmpeg: Callable[..., None]) -> Callable[..., Path]:
    """make(name, *options, inputs=(source,)) -> a file encoded by the bundled ffmpeg."""

    def build(name: str, *options: str, inputs: tuple[str, ...] | None = None) -> Path:
        path = rec_dir / name
        if not path.exists():
            sources = inputs if inputs is not None else ("-i", str(source_wav))
            run_ffmpeg(*sources, *options, str(path))
        return path

    return build


def assert_broadcast_mp3(data: bytes) -> None:
    frames = list(iter_frames(data))
    assert frames and frames[0][0] == 0
    for _offset, header in frames:
        assert (header.version, header.layer, header.bitrate_kbps) == ("2", 3, 32)
        assert (header.sample_rate, header.channel_mode) == (22050, "mono")


# --- accepted -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_accepted_formats(
    name: str, make: Callable[..., Path], measure: Callable[..., Any]
) -> None:
    options, container, codec = FORMATS[name]
    info = import_recording(make(name, *options), original_name=name)
    assert (info.source_format, info.source_codec) == (container, codec)
    assert_broadcast_mp3(info.mp3)
    assert info.duration_s == probe_duration_s(info.mp3)
    assert SOURCE_S - 0.05 <= info.duration_s <= SOURCE_S + 0.15
    measured = measure(info.mp3)
    assert measured.lufs == pytest.approx(-16.0, abs=1.5)
    assert measured.true_peak_dbtp <= -1.0
    assert info.source_loudness_lufs is not None and info.source_loudness_lufs < -20


def test_video_with_sound_gives_its_sound(make: Callable[..., Path], source_wav: Path) -> None:
    clip = make(
        "clip.mp4", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-shortest",
        inputs=("-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=3",
                "-i", str(source_wav)),
    )  # fmt: skip
    info = import_recording(clip)
    assert (info.source_format, info.source_codec) == ("mp4", "aac")
    assert info.duration_s == pytest.approx(SOURCE_S, abs=0.15)


def test_mp3_with_cover_art(make: Callable[..., Path], source_wav: Path) -> None:
    """A picture in the tag is not video: the sound is taken as usual."""
    song = make(
        "cover.mp3", "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png",
        "-disposition:v", "attached_pic", "-id3v2_version", "3",
        inputs=("-i", str(source_wav), "-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.1"),
    )  # fmt: skip
    info = import_recording(song)
    assert info.source_format == "mp3"
    assert info.duration_s == pytest.approx(SOURCE_S, abs=0.15)


def test_format_comes_from_content_not_name(make: Callable[..., Path], tmp_path: Path) -> None:
    """An M4A named .mp3 and a WAV named .ogg are recognised for what they are."""
    m4a = tmp_path / "thong-bao.mp3"
    m4a.write_bytes(make("phone.m4a", *FORMATS["phone.m4a"][0]).read_bytes())
    wav = tmp_path / "ghi-am.ogg"
    wav.write_bytes(make("recorder.wav", *FORMATS["recorder.wav"][0]).read_bytes())
    assert import_recording(m4a, original_name="thong-bao.mp3").source_format == "m4a"
    assert import_recording(wav).source_format == "wav"


def test_quiet_and_loud_recordings_end_at_the_same_level(
    rec_dir: Path,
    run_ffmpeg: Callable[..., None],
    measure: Callable[..., Any],
    write_speechlike: Callable[..., Path],
) -> None:
    levels = []
    for name, peak_db in (("whisper.m4a", -35.0), ("shout.m4a", -0.5)):
        wav = write_speechlike(rec_dir / f"{name}.wav", SOURCE_S, 48000, peak_db)
        path = rec_dir / name
        run_ffmpeg("-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(path))
        levels.append(measure(import_recording(path).mp3).lufs)
    assert abs(levels[0] - levels[1]) < 0.5
    assert levels[0] == pytest.approx(-16.0, abs=1.5)


def test_imported_recording_is_programme_content(
    make: Callable[..., Path], tmp_path: Path, measure: Callable[..., Any]
) -> None:
    """The result feeds render_programme (chime + the recording read twice)."""
    info = import_recording(make("phone.m4a", *FORMATS["phone.m4a"][0]))
    stored = tmp_path / "recording.mp3"
    stored.write_bytes(info.mp3)
    data = render_programme(ProgrammeSpec([stored], repeat=2))
    assert_broadcast_mp3(data)
    assert probe_duration_s(data) > 2 * SOURCE_S
    assert measure(data).lufs == pytest.approx(-16.0, abs=1.5)


# --- refused ------------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated_m4a(make: Callable[..., Path], path: Path) -> Path:
    whole = make("phone.m4a", *FORMATS["phone.m4a"][0]).read_bytes()
    return _write(path, whole[: len(whole) // 3])  # the index (moov) is at the end


def _mp3_with_garbage(make: Callable[..., Path], path: Path) -> Path:
    whole = make("voice.mp3", *FORMATS["voice.mp3"][0]).read_bytes()
    return _write(path, whole[:4000] + _noise(20_000, seed=1))


def _corrupt_ogg(make: Callable[..., Path], path: Path) -> Path:
    whole = bytearray(make("firefox.ogg", *FORMATS["firefox.ogg"][0]).read_bytes())
    middle = len(whole) // 2
    whole[middle : middle + 2000] = _noise(2000, seed=2)
    return _write(path, bytes(whole))


Builder = Callable[[Callable[..., Path], Path], Path]
PDF_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"

REFUSED: dict[str, tuple[Builder, RecordingProblem]] = {
    "empty": (lambda make, p: _write(p, b""), RecordingProblem.EMPTY),
    "pdf": (
        lambda make, p: _write(p, PDF_HEADER + _noise(30_000, seed=3)),
        RecordingProblem.NOT_AUDIO,
    ),
    "text": (
        lambda make, p: _write(p, "Thông báo: họp dân lúc 8 giờ.\n".encode() * 200),
        RecordingProblem.NOT_AUDIO,
    ),
    "random": (lambda make, p: _write(p, _noise(50_000, seed=4)), RecordingProblem.NOT_AUDIO),
    "image": (
        lambda make, p: make("picture.png", "-frames:v", "1",
                             inputs=("-f", "lavfi", "-i", "testsrc=size=64x64")),
        RecordingProblem.NOT_AUDIO,
    ),
    "video-only": (
        lambda make, p: make("silent-video.mp4", "-c:v", "libx264",
                             inputs=("-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=2")),
        RecordingProblem.NO_SOUND_TRACK,
    ),
    "truncated": (_truncated_m4a, RecordingProblem.DAMAGED),
    "garbage-after-mp3": (_mp3_with_garbage, RecordingProblem.DAMAGED),
    "corrupt-ogg": (_corrupt_ogg, RecordingProblem.DAMAGED),
    "too-short": (
        lambda make, p: make("blip.wav", inputs=("-f", "lavfi", "-i", "sine=duration=0.2")),
        RecordingProblem.TOO_SHORT,
    ),
    "silent": (
        lambda make, p: make("muted.m4a", "-c:a", "aac",
                             inputs=("-f", "lavfi", "-i", "anullsrc=duration=3")),
        RecordingProblem.SILENT,
    ),
    "ac3-in-mka": (lambda make, p: make("film.mka", "-c:a", "ac3"), RecordingProblem.UNSUPPORTED),
    "adpcm-wav": (lambda make, p: make("adpcm.wav", "-c:a", "adpcm_ms"),
                  RecordingProblem.UNSUPPORTED),
    "wma": (lambda make, p: make("voice.wma", "-c:a", "wmav2"), RecordingProblem.UNSUPPORTED),
    "missing": (lambda make, p: p.parent / "never-uploaded.mp3", RecordingProblem.MISSING),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_a_clear_message(case: str, make: Callable[..., Path], tmp_path: Path) -> None:
    build, problem = REFUSED[case]
    path = build(make, tmp_path / "upload.bin")
    with pytest.raises(RecordingError) as caught:
        import_recording(path, original_name=NAME)
    error = caught.value
    assert isinstance(error, AudioError)
    assert error.problem is problem
    assert error.file_name == NAME
    message = str(error)
    assert message.startswith(f'"{NAME}"')
    assert "Accepted: sound recordings in MP3, M4A/AAC, OGG" in message
    assert "loa-recording" not in message and str(tmp_path) not in message


def test_file_name_is_used_without_original_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "bao-cao.pdf", b"%PDF-1.7\n" + _noise(1000, seed=5))
    with pytest.raises(RecordingError, match=r'^"bao-cao\.pdf" is not a sound recording'):
        import_recording(path)


def test_control_characters_in_names_are_neutralized(tmp_path: Path) -> None:
    path = _write(tmp_path / "x", b"")
    with pytest.raises(RecordingError, match=r'^"bad name\.mp3" is empty'):
        import_recording(path, original_name="bad\n\tname.mp3")


def test_size_is_checked_before_any_decoding(
    make: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_ffmpeg(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("ffmpeg must not run for an oversized file")

    monkeypatch.setattr(recording_module, "run_ffmpeg", no_ffmpeg)
    path = make("recorder.wav", *FORMATS["recorder.wav"][0])
    with pytest.raises(RecordingError, match=r"more than the limit of 100 KB") as caught:
        import_recording(path, original_name="dai.wav", max_bytes=100 * 1024)
    assert caught.value.problem is RecordingProblem.TOO_LARGE
    assert "MB" in str(caught.value)


def test_too_long_by_header_and_by_decoding(make: Callable[..., Path]) -> None:
    """A WAV says how long it is; a live WebM (MediaRecorder) does not and is measured."""
    wav = make("recorder.wav", *FORMATS["recorder.wav"][0])
    webm = make("chrome.webm", *FORMATS["chrome.webm"][0])
    for path in (wav, webm):
        with pytest.raises(RecordingError, match=r"lasts .*2\.0 s") as caught:
            import_recording(path, max_duration_s=2.0)
        assert caught.value.problem is RecordingProblem.TOO_LONG


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordingError) as caught:
        import_recording(tmp_path, original_name="folder")
    assert caught.value.problem is RecordingProblem.MISSING


@pytest.mark.parametrize(
    "kwargs",
    [{"max_bytes": 0}, {"max_bytes": True}, {"min_duration_s": 5.0, "max_duration_s": 5.0}],
)
def test_bad_limits(source_wav: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(AudioError):
        import_recording(source_wav, **kwargs)


def test_no_temporary_files_are_left(
    make: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    import_recording(make("phone.m4a", *FORMATS["phone.m4a"][0]))
    for case in ("corrupt-ogg", "pdf", "too-short", "silent"):
        build, _problem = REFUSED[case]
        with pytest.raises(RecordingError):
            import_recording(build(make, tmp_path / f"{case}.bin"))
    assert list(scratch.iterdir()) == []


def test_messages_say_what_is_wrong(make: Callable[..., Path], tmp_path: Path) -> None:
    cases = {
        "pdf": "is not a sound recording",
        "video-only": "is a video with no sound",
        "truncated": "is damaged or incomplete",
        "garbage-after-mp3": "is damaged and cannot be decoded cleanly",
        "too-short": "lasts only 0.2 s; a recording must last at least 0.5 s",
        "silent": "holds no sound loud enough to broadcast",
        "ac3-in-mka": "not accepted (mkv, ac3)",
    }
    for case, words in cases.items():
        build, _problem = REFUSED[case]
        with pytest.raises(RecordingError, match=re.escape(words)):
            import_recording(build(make, tmp_path / f"{case}.bin"), original_name="x")
