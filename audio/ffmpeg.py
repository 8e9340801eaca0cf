"""The one place that runs ffmpeg and configures pydub.

Why: the target machines have no system ffmpeg or ffprobe; the only encoder is the static binary
shipped in the imageio-ffmpeg wheel, and it comes without ffprobe. pydub's
``AudioSegment.from_file`` calls ffprobe for any non-WAV input, so this module decodes such input
itself (ffmpeg → raw PCM on a pipe) and encodes MP3 the same way. pydub is used for what it is
good at: cutting, mixing and gain on PCM. Nothing here ever needs ffprobe.

Import pydub through this module (``from audio.ffmpeg import AudioSegment``) so that it is
configured before use and its import-time warnings about a missing PATH ffmpeg stay quiet.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import subprocess
import warnings
from pathlib import Path

import imageio_ffmpeg

from audio.errors import AudioError

with warnings.catch_warnings():
    # pydub looks for ffmpeg on PATH when imported and warns that it is missing (we point it at
    # the bundled binary right below); Python 3.11 warns that audioop, which pydub uses, is
    # deprecated.
    warnings.filterwarnings("ignore", message=r".*ffmpeg or avconv.*", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message=r".*audioop.*", category=DeprecationWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError

_LOGGER = logging.getLogger(__name__)

#: The broadcast format: every PCM segment in this package and every MP3 it writes uses it.
SAMPLE_RATE = 22050
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes, signed 16-bit little-endian
BITRATE_KBPS = 32

#: Seconds a single ffmpeg run may take before it is treated as hung.
FFMPEG_TIMEOUT_S = 300.0

__all__ = [
    "BITRATE_KBPS",
    "CHANNELS",
    "SAMPLE_RATE",
    "SAMPLE_WIDTH",
    "AudioSegment",
    "configure_pydub",
    "decode_file",
    "encode_mp3",
    "ffmpeg_exe",
    "to_broadcast_format",
]


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg (IMAGEIO_FFMPEG_EXE overrides it)."""
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise AudioError(f"no ffmpeg binary available: {exc}") from exc
    _LOGGER.debug("using ffmpeg at %s", exe)
    return exe


def configure_pydub() -> None:
    """Point pydub at the bundled ffmpeg so its own export/conversion paths work too."""
    AudioSegment.converter = ffmpeg_exe()


def _run(args: list[str], stdin: bytes | None, what: str) -> bytes:
    """Run ffmpeg with args, feed stdin, return stdout; any failure becomes an AudioError."""
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    _LOGGER.debug("ffmpeg: %s", command)
    try:
        result = subprocess.run(
            command,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"ffmpeg timed out after {FFMPEG_TIMEOUT_S:.0f} s {what}") from exc
    except OSError as exc:
        raise AudioError(f"cannot run ffmpeg {what}: {exc}") from exc
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        last = detail[-1] if detail else f"exit status {result.returncode}"
        raise AudioError(f"ffmpeg failed {what}: {last}")
    return result.stdout


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"audio input is not a regular file: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty: {path}")


def _from_pcm(pcm: bytes) -> AudioSegment:
    return AudioSegment(
        data=pcm, sample_width=SAMPLE_WIDTH, frame_rate=SAMPLE_RATE, channels=CHANNELS
    )


def to_broadcast_format(segment: AudioSegment) -> AudioSegment:
    """Convert any PCM segment to mono, 16-bit, 22.05 kHz."""
    if segment.channels != CHANNELS:
        segment = segment.set_channels(CHANNELS)
    if segment.sample_width != SAMPLE_WIDTH:
        segment = segment.set_sample_width(SAMPLE_WIDTH)
    if segment.frame_rate != SAMPLE_RATE:
        segment = segment.set_frame_rate(SAMPLE_RATE)
    return segment


def _load_wav_directly(path: Path) -> AudioSegment | None:
    """Fast path for plain PCM WAV (espeak output): pydub reads it without any subprocess.

    Returns None when pydub cannot read the file (float or compressed WAV, odd headers); the
    caller then lets ffmpeg decode it. pydub's own ``from_wav`` is not used because its fallback
    would call ffprobe.
    """
    with path.open("rb") as handle:
        head = handle.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        handle.seek(0)
        try:
            segment = AudioSegment(data=handle.read())
        except (CouldntDecodeError, ValueError, EOFError, IndexError, struct.error) as exc:
            _LOGGER.debug("pydub cannot read %s directly (%s); decoding with ffmpeg", path, exc)
            return None
    return to_broadcast_format(segment)


def decode_file(path: str | os.PathLike[str]) -> AudioSegment:
    """Load any audio file ffmpeg understands as a mono 16-bit 22.05 kHz segment.

    Raises AudioError naming the file if it is missing, empty, not audio or has no audio stream.
    """
    path = Path(path)
    _check_readable(path)
    try:
        segment = _load_wav_directly(path)
    except OSError as exc:
        raise AudioError(f"cannot read audio file {path}: {exc}") from exc
    if segment is None:
        pcm = _run(
            [
                "-i", f"file:{path.resolve()}",
                "-map", "0:a:0", "-vn", "-sn", "-dn",
                "-ac", str(CHANNELS), "-ar", str(SAMPLE_RATE),
                "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1",
            ],
            stdin=None,
            what=f"decoding {path}",
        )  # fmt: skip
        segment = _from_pcm(pcm)
    if len(segment.raw_data) == 0:
        raise AudioError(f"audio file holds no samples: {path}")
    return segment


def encode_mp3(
    segment: AudioSegment, gain_db: float = 0.0, limit_dbfs: float | None = None
) -> bytes:
    """Encode PCM to the broadcast MP3: MPEG-2 Layer III, mono, 22.05 kHz, 32 kbps CBR.

    ``gain_db`` is applied in floating point inside ffmpeg, so it cannot clip the 16-bit mix;
    with ``limit_dbfs`` a look-ahead limiter (delay-compensated) keeps peaks below that level.
    No ID3 tag and no Xing header are written: the output is bare frames, byte-for-byte the same
    for the same input (so the media store deduplicates renders) and trivially streamable.
    """
    segment = to_broadcast_format(segment)
    filters: list[str] = []
    if limit_dbfs is not None:
        level_in = 10 ** (gain_db / 20)
        limit = 10 ** (limit_dbfs / 20)
        filters = [
            "-af",
            f"alimiter=level_in={level_in:.6f}:limit={limit:.6f}"
            ":attack=5:release=50:level=false:latency=true",
        ]
    elif gain_db:
        filters = ["-af", f"volume={gain_db:.3f}dB"]
    return _run(
        [
            "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", str(CHANNELS), "-i", "pipe:0",
            *filters,
            "-c:a", "libmp3lame", "-b:a", f"{BITRATE_KBPS}k",
            "-ac", str(CHANNELS), "-ar", str(SAMPLE_RATE),
            "-map_metadata", "-1", "-id3v2_version", "0", "-write_id3v1", "0",
            "-write_xing", "0", "-bitexact",
            "-f", "mp3", "pipe:1",
        ],
        stdin=segment.raw_data,
        what="encoding MP3",
    )  # fmt: skip


try:
    configure_pydub()
except AudioError as _exc:  # the media store works without ffmpeg; rendering will report it
    _LOGGER.warning("%s", _exc)
