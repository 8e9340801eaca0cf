"""What an MP3 stream holds, from its frame headers (parsed by `wire.mp3`).

Why: the contract says every rendered announcement is MP3 mono 32 kbps 22.05 kHz, and that is
checked here from the bytes themselves (the frame headers), not from what ffmpeg was asked to do.
Counting frames also gives an exact duration without ffprobe (which is not shipped with
imageio-ffmpeg), so the server can tell how long a play lasts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from audio.errors import AudioError
from wire.mp3 import FrameHeader, iter_frames

_LOGGER = logging.getLogger(__name__)

Source = bytes | bytearray | memoryview | str | os.PathLike[str]


@dataclass(frozen=True)
class Mp3Info:
    """What a whole MP3 stream holds, from its frame headers."""

    version: str
    layer: int
    sample_rate: int
    channel_mode: str
    channels: int
    bitrates_kbps: frozenset[int]  # every bitrate seen; one element for constant bitrate
    frames: int  # audio frames, without a Xing/Info/VBRI header frame
    samples: int
    duration_s: float
    first_frame_offset: int

    @property
    def constant_bitrate(self) -> bool:
        """True when every audio frame has the same bitrate (CBR)."""
        return len(self.bitrates_kbps) == 1

    @property
    def bitrate_kbps(self) -> int | None:
        """The bitrate of a CBR stream; None for variable bitrate."""
        return next(iter(self.bitrates_kbps)) if self.constant_bitrate else None


def _is_header_frame(data: bytes, pos: int, header: FrameHeader) -> bool:
    """True for a Xing/Info (LAME) or VBRI frame: metadata that decoders do not play."""
    if header.layer != 3:
        return False
    if header.version == "1":
        side_info = 17 if header.channel_mode == "mono" else 32
    else:
        side_info = 9 if header.channel_mode == "mono" else 17
    start = pos + 4 + (2 if header.protected else 0) + side_info
    return data[start : start + 4] in (b"Xing", b"Info") or data[pos + 36 : pos + 40] == b"VBRI"


def _read(source: Source) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "<bytes>"
    path = Path(source)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise AudioError(f"cannot read MP3 file {path}: {exc}") from exc


def first_frame(source: Source) -> FrameHeader:
    """The header of the first audio frame; AudioError if the input holds no MPEG audio."""
    data, name = _read(source)
    for _offset, header in iter_frames(data):
        return header
    raise AudioError(f"no MPEG audio frame found in {name}")


def probe(source: Source) -> Mp3Info:
    """Read every frame header of an MP3 (bytes or a path) and summarize the stream."""
    data, name = _read(source)
    first: tuple[int, FrameHeader] | None = None
    frames = samples = 0
    bitrates: set[int] = set()
    for offset, header in iter_frames(data):
        if first is None:
            first = (offset, header)
            if _is_header_frame(data, offset, header):
                continue
        frames += 1
        samples += header.samples
        bitrates.add(header.bitrate_kbps)
    if first is None or frames == 0:
        raise AudioError(f"no MPEG audio frame found in {name}")
    offset, header = first
    info = Mp3Info(
        version=header.version,
        layer=header.layer,
        sample_rate=header.sample_rate,
        channel_mode=header.channel_mode,
        channels=header.channels,
        bitrates_kbps=frozenset(bitrates),
        frames=frames,
        samples=samples,
        duration_s=samples / header.sample_rate,
        first_frame_offset=offset,
    )
    _LOGGER.debug("probed %s: %s", name, info)
    return info


def probe_duration_s(source: Source) -> float:
    """Playing time in seconds of an MP3 given as bytes or a path, from its frame count."""
    return probe(source).duration_s
