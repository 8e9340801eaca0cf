"""How long an MP3 sounds, from its first frame header: enough for the file sink's realtime mode.

The receiver has no server dependencies, so this does not use `audio.mp3`'s full parser.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_BITRATE_BPS = 32_000  # what audio.render_announcement produces

# Bitrates in kbps for Layer III: MPEG-1, and MPEG-2/2.5 (index 0 = free, 15 = bad).
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)


def mp3_duration_s(path: Path) -> float:
    """Duration from the first frame's bitrate (constant bitrate assumed); 32 kbps fallback.

    Good enough for a file sink that only needs to take about as long as the loudspeaker would.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    offset = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        tag_size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        offset = 10 + tag_size
    bitrate = _first_frame_bitrate(head, offset) or DEFAULT_BITRATE_BPS
    return max(0, size - offset) * 8 / bitrate


def _first_frame_bitrate(data: bytes, start: int) -> int | None:
    for index in range(start, len(data) - 2):
        if data[index] != 0xFF or (data[index + 1] & 0xE0) != 0xE0:
            continue
        version = (data[index + 1] >> 3) & 0x03  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
        layer = (data[index + 1] >> 1) & 0x03  # 1 = Layer III
        bitrate_index = data[index + 2] >> 4
        if version == 1 or layer != 1 or bitrate_index in (0, 15):
            continue
        table = _BITRATES_V1 if version == 3 else _BITRATES_V2
        return table[bitrate_index] * 1000
    return None
