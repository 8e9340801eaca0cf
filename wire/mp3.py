"""MPEG audio frame headers: the one parser of MP3 bytes, for the server and the receiver.

Why here: the server checks and measures what it renders (`audio.mp3`), and a receiver, which
has no server extra (no `audio/`), estimates how long a file plays (`estimated_duration_s`);
both read the same 4-byte headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def estimated_duration_s(path: Path, fallback_bitrate_bps: int) -> float:
    """Playing time from the file size and the first Layer III frame's bitrate (constant bitrate
    assumed), reading only the first 64 KiB; `fallback_bitrate_bps` when no frame is found.

    Good enough for a receiver's file sink, which only needs to take about as long as a
    loudspeaker would; `audio.mp3.probe` counts every frame when the exact time matters."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    offset = _id3v2_size(head, 0)
    bitrate = _first_layer3_bitrate(head, offset) or fallback_bitrate_bps
    return max(0, size - offset) * 8 / bitrate


def _first_layer3_bitrate(data: bytes, start: int) -> int | None:
    """Bits per second of the first Layer III header at or after `start`."""
    for index in range(start, len(data) - 3):
        header = parse_frame_header(data[index : index + 4])
        if header is not None and header.layer == 3:
            return header.bitrate_kbps * 1000
    return None
