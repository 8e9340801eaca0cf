"""A small MPEG audio frame parser.

Why: the contract says every rendered announcement is MP3 mono 32 kbps 22.05 kHz, and that is
checked here from the bytes themselves (the frame headers), not from what ffmpeg was asked to do.
Counting frames also gives an exact duration without ffprobe (which is not shipped with
imageio-ffmpeg), so the server can tell how long a play lasts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from audio.errors import AudioError

_LOGGER = logging.getLogger(__name__)

Source = bytes | bytearray | memoryview | str | os.PathLike[str]

# Indexed by the 2-bit version field; None = reserved.
_VERSIONS: tuple[str | None, ...] = ("2.5", None, "2", "1")
# Indexed by the 2-bit layer field; 0 = reserved.
_LAYERS: tuple[int, ...] = (0, 3, 2, 1)
_CHANNEL_MODES: tuple[str, ...] = ("stereo", "joint_stereo", "dual_channel", "mono")
_SAMPLE_RATES: dict[str, tuple[int, int, int]] = {
    "1": (44100, 48000, 32000),
    "2": (22050, 24000, 16000),
    "2.5": (11025, 12000, 8000),
}
# kbps, indexed by the 4-bit bitrate field; index 0 ("free format") and 15 are not accepted.
_BITRATES: dict[tuple[str, int], tuple[int, ...]] = {
    ("1", 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    ("1", 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    ("1", 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    ("2", 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    ("2", 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    ("2", 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_TRAILING_TAGS = (b"TAG", b"APETAGEX", b"LYRICSBEGIN", b"ID3")


@dataclass(frozen=True)
class FrameHeader:
    """The decoded 4-byte header of one MPEG audio frame."""

    version: str  # "1", "2" or "2.5"
    layer: int  # 1, 2 or 3
    bitrate_kbps: int
    sample_rate: int
    channel_mode: str  # stereo, joint_stereo, dual_channel, mono
    padding: bool
    protected: bool  # a 16-bit CRC follows the header
    frame_length: int  # bytes, header included
    samples: int  # PCM samples per channel in this frame

    @property
    def channels(self) -> int:
        """1 for mono, otherwise 2."""
        return 1 if self.channel_mode == "mono" else 2

    @property
    def duration_s(self) -> float:
        """Playing time of this one frame."""
        return self.samples / self.sample_rate


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


def parse_frame_header(header: bytes | bytearray | memoryview) -> FrameHeader | None:
    """Decode a 4-byte frame header; None if it is not a valid (non free-format) header."""
    if len(header) < 4:
        return None
    b0, b1, b2, b3 = header[0], header[1], header[2], header[3]
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version = _VERSIONS[(b1 >> 3) & 0x03]
    layer = _LAYERS[(b1 >> 1) & 0x03]
    bitrate_index = (b2 >> 4) & 0x0F
    rate_index = (b2 >> 2) & 0x03
    if version is None or layer == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    if (b3 & 0x03) == 0x02:  # reserved emphasis
        return None
    table_version = "1" if version == "1" else "2"
    bitrate_kbps = _BITRATES[(table_version, layer)][bitrate_index]
    sample_rate = _SAMPLE_RATES[version][rate_index]
    padding = bool(b2 & 0x02)
    bits_per_s = bitrate_kbps * 1000
    if layer == 1:
        frame_length = (12 * bits_per_s // sample_rate + padding) * 4
        samples = 384
    elif layer == 2 or version == "1":  # Layer II, or MPEG-1 Layer III
        frame_length = 144 * bits_per_s // sample_rate + padding
        samples = 1152
    else:
        frame_length = 72 * bits_per_s // sample_rate + padding
        samples = 576
    return FrameHeader(
        version=version,
        layer=layer,
        bitrate_kbps=bitrate_kbps,
        sample_rate=sample_rate,
        channel_mode=_CHANNEL_MODES[(b3 >> 6) & 0x03],
        padding=padding,
        protected=not (b1 & 0x01),
        frame_length=frame_length,
        samples=samples,
    )


def _id3v2_size(data: bytes, pos: int) -> int:
    """Length of an ID3v2 tag starting at pos, or 0 if there is none."""
    if data[pos : pos + 3] != b"ID3" or len(data) < pos + 10:
        return 0
    size_bytes = data[pos + 6 : pos + 10]
    if any(b & 0x80 for b in size_bytes):
        return 0
    size = 0
    for b in size_bytes:
        size = (size << 7) | b
    footer = 10 if data[pos + 5] & 0x10 else 0
    return 10 + size + footer


def _same_stream(a: FrameHeader, b: FrameHeader) -> bool:
    return a.version == b.version and a.layer == b.layer and a.sample_rate == b.sample_rate


def _confirmed(data: bytes, pos: int, header: FrameHeader) -> bool:
    """A candidate frame counts only if what follows it is another frame, a tag or the end.

    Why: a lone 0xFFEx byte pair inside a tag or garbage is not a frame.
    """
    end = pos + header.frame_length
    if end > len(data):
        return False
    if end == len(data) or data.startswith(_TRAILING_TAGS, end):
        return True
    following = parse_frame_header(data[end : end + 4])
    return following is not None and _same_stream(header, following)


def iter_frames(data: bytes) -> Iterator[tuple[int, FrameHeader]]:
    """Yield (offset, header) of every complete frame, skipping tags and junk between frames."""
    pos = _id3v2_size(data, 0)
    locked: FrameHeader | None = None
    size = len(data)
    while pos + 4 <= size:
        header = parse_frame_header(data[pos : pos + 4])
        if header is not None and locked is not None and _same_stream(header, locked):
            if pos + header.frame_length > size:
                return  # truncated last frame
            yield pos, header
            pos += header.frame_length
            continue
        if header is not None and _confirmed(data, pos, header):
            locked = header
            continue
        locked = None
        tag = _id3v2_size(data, pos)
        if tag:
            pos += tag
            continue
        pos = data.find(b"\xff", pos + 1)
        if pos < 0:
            return


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
