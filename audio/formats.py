"""The output formats a programme can be encoded to, and what each means for ffmpeg.

Why two: MP3 (MPEG-2 Layer III, mono, 22.05 kHz, 32 kbps CBR) plays on every cheap receiver and
is what the broadcast path stores and serves. Ogg Opus at 24 kbps sounds better per bit and suits
web previews and newer receivers. Opus cannot run at 22.05 kHz (libopus accepts 8, 12, 16, 24 or
48 kHz), so the 22.05 kHz mono programme is resampled to 24 kHz for it; the band is still limited
to what the 22.05 kHz mix holds.
"""

from __future__ import annotations

import enum
import logging

from audio import mp3
from audio.errors import AudioError
from audio.ffmpeg import BITRATE_KBPS, CHANNELS, SAMPLE_RATE

_LOGGER = logging.getLogger(__name__)

OPUS_BITRATE_KBPS = 24
OPUS_SAMPLE_RATE = 24000

__all__ = ["OPUS_BITRATE_KBPS", "OPUS_SAMPLE_RATE", "OutputFormat", "verify_output"]


class OutputFormat(enum.StrEnum):
    """How a rendered programme is encoded; the value is the short name ("mp3", "opus")."""

    MP3 = "mp3"
    OPUS = "opus"

    @property
    def mime_type(self) -> str:
        """What an HTTP server should send as Content-Type."""
        return "audio/mpeg" if self is OutputFormat.MP3 else "audio/ogg"

    @property
    def suffix(self) -> str:
        """The usual file name ending."""
        return ".mp3" if self is OutputFormat.MP3 else ".opus"

    @property
    def bitrate_kbps(self) -> int:
        """Nominal bitrate (MP3: constant; Opus: the VBR average)."""
        return BITRATE_KBPS if self is OutputFormat.MP3 else OPUS_BITRATE_KBPS

    @property
    def encoder(self) -> str:
        """The ffmpeg encoder this format needs (checked against ``ffmpeg -encoders``)."""
        return "libmp3lame" if self is OutputFormat.MP3 else "libopus"

    def ffmpeg_output_args(self) -> list[str]:
        """ffmpeg output options (after the filters) for a byte-reproducible file on stdout."""
        if self is OutputFormat.MP3:
            return [
                "-c:a", "libmp3lame", "-b:a", f"{BITRATE_KBPS}k",
                "-ac", str(CHANNELS), "-ar", str(SAMPLE_RATE),
                "-map_metadata", "-1", "-id3v2_version", "0", "-write_id3v1", "0",
                "-write_xing", "0", "-bitexact",
                "-f", "mp3", "pipe:1",
            ]  # fmt: skip
        return [
            "-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k", "-application", "voip",
            "-ac", str(CHANNELS), "-ar", str(OPUS_SAMPLE_RATE),
            "-map_metadata", "-1", "-bitexact",
            "-f", "ogg", "pipe:1",
        ]  # fmt: skip


def verify_output(data: bytes, fmt: OutputFormat) -> float | None:
    """Check encoded bytes from their own headers; the MP3 playing time (None for Opus).

    Why: the broadcast contract (mono, 22.05 kHz, 32 kbps CBR MP3) is checked on what was
    produced, not on what ffmpeg was asked for.
    """
    if fmt is OutputFormat.MP3:
        info = mp3.probe(data)
        if (
            info.layer != 3
            or info.sample_rate != SAMPLE_RATE
            or info.channels != CHANNELS
            or info.bitrates_kbps != frozenset({BITRATE_KBPS})
        ):
            raise AudioError(f"encoder produced an unexpected stream: {info}")
        return info.duration_s
    head = data.find(b"OpusHead")
    if not data.startswith(b"OggS") or head < 0 or data[head + 9 : head + 10] != bytes([CHANNELS]):
        raise AudioError("encoder produced no mono Ogg Opus stream")
    return None
