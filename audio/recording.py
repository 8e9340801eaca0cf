"""Uploaded recordings as content: validated, levelled to −16 LUFS, transcoded to broadcast MP3.

Why: no speech engine speaks the ethnic-minority languages of many communes (Hmông, Dao, Thái,
Ê Đê …), so an official records the notice on a phone and uploads it. Phones and browsers produce
MP3, M4A/AAC, Ogg or WebM Opus/Vorbis, WAV, and on older Android phones AMR/3GP; a file picked by
mistake can be anything. So the real format is read from the content (ffmpeg probes a copy that
has no file name extension, since ffmpeg would otherwise take the name as a hint), the size is
checked before anything is decoded, the duration before and after decoding (decoding stops just
past the limit, so a lying header cannot make it run long), and any decoding error refuses the
file: a damaged recording should be exported again rather than broadcast to a whole commune.

Every refusal is a RecordingError (an AudioError) whose message names the file, says what is
wrong and what is accepted, in plain English; ``problem`` is a stable code for the web layer's
translation. All intermediate files live in one TemporaryDirectory, removed whatever happens.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from audio import mp3
from audio.errors import AudioError
from audio.ffmpeg import (
    CHANNELS,
    SAMPLE_RATE,
    SAMPLE_WIDTH,
    decode_args,
    encode_pcm,
    log_errors,
    run_ffmpeg,
)
from audio.formats import OutputFormat, verify_output
from audio.level import level_pcm
from audio.loudness import TARGET_LUFS, Loudness, parse_ebur128_summary

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_DURATION_S = 30 * 60.0
DEFAULT_MIN_DURATION_S = 0.5
#: A recording quieter than this holds no usable speech (a muted or covered microphone).
MIN_LOUDNESS_LUFS = -60.0
#: A header may overstate the duration a little (estimated from the bitrate); refuse on the
#: header alone only when it is this far over the limit.
HEADER_DURATION_SLACK_S = 5.0
#: Decoding stops this far past the duration limit.
DECODE_CAP_MARGIN_S = 1.0

#: What people are told is accepted.
ACCEPTED_DESCRIPTION = "MP3, M4A/AAC, OGG (Opus or Vorbis), WAV, WebM, FLAC or AMR/3GP"
#: File name endings for a file picker's ``accept`` hint; the content decides, not the name.
ACCEPTED_EXTENSIONS = (
    ".mp3",
    ".m4a",
    ".mp4",
    ".aac",
    ".ogg",
    ".oga",
    ".opus",
    ".wav",
    ".webm",
    ".flac",
    ".amr",
    ".3gp",
)

# ffmpeg demuxer names (as ``ffmpeg -i`` prints them) that are accepted containers.
_MOV = "mov,mp4,m4a,3gp,3g2,mj2"
_MATROSKA = "matroska,webm"
_CONTAINERS = frozenset({"mp3", _MOV, "ogg", _MATROSKA, "wav", "aac", "flac", "amr"})
_CODECS = frozenset({"mp3", "aac", "opus", "vorbis", "flac", "alac", "amr_nb", "amr_wb"})
_PCM_CODEC = re.compile(r"pcm_(?:[su](?:8|16|24|32)(?:le|be)?|f(?:32|64)(?:le|be)|alaw|mulaw)")

_INPUT = re.compile(r"Input #0, (?P<demuxer>.+?), from '")
_DURATION = re.compile(r"Duration: (?:(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)|N/A)")
_STREAM = re.compile(
    r"Stream #0:\d+(?:\[[^\]]*\])?(?:\([^)]*\))?: (?P<kind>Audio|Video|Subtitle|Data|Attachment)"
    r": (?P<codec>[^\s,]+)(?P<rest>.*)"
)
_BRAND = re.compile(r"major_brand\s*:\s*(?P<brand>\S+)")
#: What ffmpeg says about any file it cannot open, whatever the reason; other errors are specific.
_GENERIC_OPEN_ERROR = re.compile(r"Error opening input")

__all__ = [
    "ACCEPTED_DESCRIPTION",
    "ACCEPTED_EXTENSIONS",
    "RecordingError",
    "RecordingInfo",
    "RecordingProblem",
    "import_recording",
]


class RecordingProblem(enum.StrEnum):
    """Why a recording was refused: a stable code for translating the message."""

    MISSING = "missing"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AUDIO = "not_audio"
    NO_SOUND_TRACK = "no_sound_track"
    UNSUPPORTED = "unsupported"
    DAMAGED = "damaged"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    SILENT = "silent"


class RecordingError(AudioError):
    """An uploaded recording was refused; ``str(error)`` is the message for the person."""

    def __init__(self, problem: RecordingProblem, file_name: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.file_name = file_name


@dataclass(frozen=True)
class RecordingInfo:
    """A recording ready for the air: MP3 (32 kbps, 22.05 kHz, mono) at −16 LUFS."""

    mp3: bytes
    duration_s: float  # playing time of the MP3 (from its frames)
    source_format: str  # container found in the content: mp3, m4a, mp4, 3gp, ogg, webm, wav …
    source_codec: str = ""  # codec of the sound in it: aac, opus, vorbis, mp3, pcm_s16le …
    source_loudness_lufs: float | None = None  # as uploaded, before levelling


@dataclass(frozen=True)
class _Probe:
    """What ``ffmpeg -i`` says about a file."""

    demuxer: str
    duration_s: float | None
    audio_codecs: tuple[str, ...]
    video_streams: int  # real video, not cover art
    brand: str | None


# --- messages -----------------------------------------------------------------------------------


def _display_name(source: Path, original_name: str) -> str:
    """The name people know the file by, safe to put in a message (no control characters)."""
    name = original_name.strip() or source.name
    name = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in name)
    name = " ".join(name.split())
    return name if len(name) <= 80 else name[:77] + "…"


def _size(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 100 * 1024 else f"{n / 1024:.0f} KB"


def _limit_size(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:.3g} MB" if mb >= 1 else f"{n / 1024:.3g} KB"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _refuse(problem: RecordingProblem, name: str, what: str, advice: str = "") -> RecordingError:
    accepted = f"Accepted: sound recordings in {ACCEPTED_DESCRIPTION}."
    message = f'"{name}" {what}. {advice + " " if advice else ""}{accepted}'
    _LOGGER.info("recording refused (%s): %s", problem.value, message)
    return RecordingError(problem, name, message)


# --- probing ------------------------------------------------------------------------------------


def _parse_probe(log: str) -> _Probe | None:
    """Read the header summary of ``ffmpeg -i``; None when ffmpeg could not open the file."""
    found = _INPUT.search(log)
    if found is None:
        return None
    duration = None
    match = _DURATION.search(log)
    if match is not None and match.group("h") is not None:
        duration = int(match.group("h")) * 3600 + int(match.group("m")) * 60
        duration += float(match.group("s"))
    audio: list[str] = []
    video = 0
    for stream in _STREAM.finditer(log):
        if stream.group("kind") == "Audio":
            audio.append(stream.group("codec"))
        elif stream.group("kind") == "Video" and "(attached pic)" not in stream.group("rest"):
            video += 1
    brand = _BRAND.search(log)
    return _Probe(
        demuxer=found.group("demuxer"),
        duration_s=duration,
        audio_codecs=tuple(audio),
        video_streams=video,
        brand=brand.group("brand") if brand else None,
    )


def _container_name(probe: _Probe, head: bytes) -> str:
    """A short, familiar name for the container (m4a, 3gp, webm …) from content only."""
    if probe.demuxer == _MOV:
        brand = (probe.brand or "").lower()
        if brand.startswith("m4a"):
            return "m4a"
        if brand.startswith(("3gp", "3g2")):
            return "3gp"
        return "mov" if brand.startswith("qt") else "mp4"
    if probe.demuxer == _MATROSKA:
        return "webm" if b"webm" in head[:64] else "mkv"
    return probe.demuxer.split(",")[0]


def _clean_detail(detail: str, upload: Path, name: str) -> str:
    """ffmpeg's words, without the temporary path (people know the file by its name)."""
    for form in (f"file:{upload.resolve()}", str(upload.resolve()), str(upload)):
        detail = detail.replace(form, name)
    return detail.rstrip(".")


def _codec_accepted(codec: str) -> bool:
    return codec in _CODECS or _PCM_CODEC.fullmatch(codec) is not None


# --- the import ---------------------------------------------------------------------------------


def _copy_limited(source: Path, dest: Path, max_bytes: int) -> int:
    """Copy at most max_bytes + 1 bytes (enough to tell that a file grew past the limit)."""
    copied = 0
    with source.open("rb") as reader, dest.open("wb") as writer:
        while chunk := reader.read(min(1 << 20, max_bytes + 1 - copied)):
            writer.write(chunk)
            copied += len(chunk)
            if copied > max_bytes:
                break
    return copied


def _check_arguments(max_bytes: int, max_duration_s: float, min_duration_s: float) -> None:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise AudioError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    if not 0 <= min_duration_s < max_duration_s:
        raise AudioError(
            f"need 0 <= min_duration_s < max_duration_s, got {min_duration_s!r}, {max_duration_s!r}"
        )


def _check_source(path: Path, name: str, max_bytes: int) -> int:
    """Refuse a missing, empty or oversized file before reading a byte of it; its size."""
    try:
        size = path.stat().st_size
        regular = path.is_file()
    except OSError:
        size, regular = 0, False
    if not regular:
        raise _refuse(
            RecordingProblem.MISSING,
            name,
            "could not be found or is not a file",
            "Please upload it again.",
        )
    if size == 0:
        raise _refuse(
            RecordingProblem.EMPTY,
            name,
            "is empty (0 bytes)",
            "Please record again, or pick the recording itself.",
        )
    if size > max_bytes:
        raise _refuse(
            RecordingProblem.TOO_LARGE,
            name,
            f"is {_size(size)}, more than the limit of {_limit_size(max_bytes)}",
            "Please upload a shorter recording, or a compressed one (M4A, MP3, OGG).",
        )
    return size


def import_recording(
    source: str | os.PathLike[str],
    *,
    original_name: str = "",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> RecordingInfo:
    """Validate an uploaded recording and return it as programme-ready MP3 at −16 LUFS.

    ``original_name`` is the name the uploader's device gave (used in messages only; the format
    is read from the content). Raises RecordingError (an AudioError) for anything refused.
    """
    started = time.perf_counter()
    _check_arguments(max_bytes, max_duration_s, min_duration_s)
    path = Path(source)
    name = _display_name(path, original_name)
    size = _check_source(path, name, max_bytes)

    with tempfile.TemporaryDirectory(prefix="loa-recording-") as tmp:
        work = Path(tmp)
        upload = work / "upload"  # no extension: ffmpeg must judge by content alone
        try:
            copied = _copy_limited(path, upload, max_bytes)
        except OSError as exc:
            raise _refuse(
                RecordingProblem.MISSING,
                name,
                f"could not be read ({exc.strerror or exc})",
                "Please upload it again.",
            ) from exc
        if copied > max_bytes:
            raise _refuse(
                RecordingProblem.TOO_LARGE,
                name,
                f"is more than the limit of {_limit_size(max_bytes)}",
                "Please upload a shorter recording.",
            )
        with upload.open("rb") as handle:
            head = handle.read(64)
        codec, container = _probe_upload(upload, head, name, max_duration_s)

        pcm = work / "decoded.raw"
        loudness = _decode(upload, pcm, name, max_duration_s)
        duration_s = pcm.stat().st_size / (SAMPLE_WIDTH * CHANNELS * SAMPLE_RATE)
        if duration_s < min_duration_s:
            raise _refuse(
                RecordingProblem.TOO_SHORT,
                name,
                f"lasts only {_duration(duration_s)}; a recording must last at least "
                f"{_duration(min_duration_s)}",
            )
        if duration_s > max_duration_s:
            raise _refuse(
                RecordingProblem.TOO_LONG,
                name,
                f"lasts more than {_duration(max_duration_s)}, the limit",
                "Please split it into shorter recordings.",
            )
        if loudness.silent or loudness.integrated_lufs < MIN_LOUDNESS_LUFS:
            raise _refuse(
                RecordingProblem.SILENT,
                name,
                "holds no sound loud enough to broadcast (only silence or faint noise)",
                "Please check the microphone and record again.",
            )

        levelled = level_pcm(
            pcm,
            loudness_lufs=loudness.integrated_lufs,
            peak_dbfs=loudness.sample_peak_dbfs if loudness.sample_peak_dbfs is not None else 0.0,
            estimated=False,
            name=f"recording {name!r}",
            dest=work / "levelled.raw",
            target_lufs=TARGET_LUFS,
        )
        data = encode_pcm(
            work / "levelled.raw",
            OutputFormat.MP3,
            gain_db=levelled.trim_db,
            what=f"encoding recording {name!r}",
        )
    verify_output(data, OutputFormat.MP3)
    info = RecordingInfo(
        mp3=data,
        duration_s=mp3.probe(data).duration_s,
        source_format=container,
        source_codec=codec,
        source_loudness_lufs=loudness.integrated_lufs,
    )
    _LOGGER.info(
        "imported recording %r (%s/%s, %s, %.1f LUFS): %.1f s, %d bytes in %.2f s",
        name,
        container,
        codec,
        _size(size),
        loudness.integrated_lufs,
        info.duration_s,
        len(data),
        time.perf_counter() - started,
    )
    return info


def _probe_upload(upload: Path, head: bytes, name: str, max_duration_s: float) -> tuple[str, str]:
    """Open the copy with ffmpeg and check what it holds; returns (codec, container)."""
    result = run_ffmpeg(
        ["-i", f"file:{upload.resolve()}"], what=f"probing {name!r}", loglevel="info", check=False
    )
    probe = _parse_probe(result.log)
    if probe is None:
        specific = [line for line in log_errors(result.log) if not _GENERIC_OPEN_ERROR.match(line)]
        if specific:  # e.g. "moov atom not found": a known format, cut short or corrupted
            raise _refuse(
                RecordingProblem.DAMAGED,
                name,
                f"is damaged or incomplete and cannot be opened "
                f"({_clean_detail(specific[0], upload, name)})",
                "Please export or record it again.",
            )
        raise _refuse(
            RecordingProblem.NOT_AUDIO,
            name,
            "is not a sound recording: its content is not any audio format, whatever its name says",
        )
    if not probe.audio_codecs:
        if probe.demuxer in _CONTAINERS and probe.video_streams:
            raise _refuse(RecordingProblem.NO_SOUND_TRACK, name, "is a video with no sound")
        if probe.demuxer in _CONTAINERS:
            raise _refuse(RecordingProblem.NO_SOUND_TRACK, name, "holds no sound")
        what = "a picture or a video" if probe.video_streams else f"a {probe.demuxer} file"
        raise _refuse(
            RecordingProblem.NOT_AUDIO, name, f"is not a sound recording (its content is {what})"
        )
    codec = probe.audio_codecs[0]
    container = _container_name(probe, head)
    if probe.demuxer not in _CONTAINERS or not _codec_accepted(codec):
        raise _refuse(
            RecordingProblem.UNSUPPORTED,
            name,
            f"holds sound in a format that is not accepted ({container}, {codec})",
            "Please convert or export it to M4A or MP3.",
        )
    if probe.duration_s is not None and probe.duration_s > max_duration_s + HEADER_DURATION_SLACK_S:
        raise _refuse(
            RecordingProblem.TOO_LONG,
            name,
            f"lasts {_duration(probe.duration_s)}, more than the limit of "
            f"{_duration(max_duration_s)}",
            "Please split it into shorter recordings.",
        )
    return codec, container


def _decode(upload: Path, pcm: Path, name: str, max_duration_s: float) -> Loudness:
    """Decode the first audio stream to broadcast PCM in pcm, measuring it; refuse on errors."""
    cap = f"{max_duration_s + DECODE_CAP_MARGIN_S:.3f}"
    result = run_ffmpeg(
        [
            *decode_args(upload),
            "-t",
            cap,
            "-c:a",
            "pcm_s16le",
            "-f",
            "s16le",
            "-y",
            f"file:{pcm.resolve()}",
        ],
        what=f"decoding {name!r}",
        loglevel="info",
        check=False,
    )
    errors = log_errors(result.log)
    if result.returncode != 0 or errors:
        detail = errors[0] if errors else f"ffmpeg exit status {result.returncode}"
        detail = _clean_detail(detail, upload, name)
        raise _refuse(
            RecordingProblem.DAMAGED,
            name,
            f"is damaged and cannot be decoded cleanly ({detail})",
            "Please export or record it again.",
        )
    loudness = parse_ebur128_summary(result.log)
    if loudness is None or not pcm.exists():
        raise _refuse(
            RecordingProblem.DAMAGED,
            name,
            "could not be decoded",
            "Please export or record it again.",
        )
    return loudness
