"""The MPEG frame-header parser, on hand-made headers and on real ffmpeg output."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from audio import AudioError, first_frame, probe, probe_duration_s
from wire.mp3 import iter_frames, parse_frame_header

# MPEG-2 Layer III, no CRC, 32 kbps, 22050 Hz, no padding, mono.
BROADCAST_HEADER = bytes([0xFF, 0xF3, 0x40, 0xC0])
BROADCAST_FRAME_LENGTH = 104  # 72 * 32000 / 22050, rounded down


def frame(header: bytes = BROADCAST_HEADER, length: int = BROADCAST_FRAME_LENGTH) -> bytes:
    return header + bytes(length - len(header))


def test_parse_broadcast_header() -> None:
    header = parse_frame_header(BROADCAST_HEADER)
    assert header is not None
    assert (header.version, header.layer) == ("2", 3)
    assert header.bitrate_kbps == 32
    assert header.sample_rate == 22050
    assert header.channel_mode == "mono" and header.channels == 1
    assert header.frame_length == BROADCAST_FRAME_LENGTH
    assert header.samples == 576
    assert not header.protected and not header.padding


def test_parse_mpeg1_stereo_header_with_padding() -> None:
    header = parse_frame_header(bytes([0xFF, 0xFB, 0x92, 0x00]))  # 128 kbps 44.1 kHz, padded
    assert header is not None
    assert (header.version, header.layer, header.bitrate_kbps) == ("1", 3, 128)
    assert header.sample_rate == 44100 and header.channel_mode == "stereo"
    assert header.frame_length == 418 and header.samples == 1152


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xeb\x40\xc0",  # reserved version
        b"\xff\xf1\x40\xc0",  # reserved layer
        b"\xff\xf3\xf0\xc0",  # bitrate index 15
        b"\xff\xf3\x00\xc0",  # free format
        b"\xff\xf3\x4c\xc0",  # reserved sample rate
        b"\xff\xf3\x40\xc2",  # reserved emphasis
        b"\xfe\xf3\x40\xc0",  # no sync
        b"\xff\xf3\x40",  # too short
    ],
)
def test_invalid_headers_are_rejected(raw: bytes) -> None:
    assert parse_frame_header(raw) is None


def test_frames_after_id3_and_junk_until_id3v1() -> None:
    id3 = b"ID3\x03\x00\x00" + bytes([0, 0, 0, 20]) + bytes(20)
    junk = b"\x00\xff\x12garbage\xff\xe0"
    data = id3 + junk + frame() * 5 + b"TAG" + bytes(125)
    offsets = [offset for offset, _ in iter_frames(data)]
    assert len(offsets) == 5
    assert offsets[0] == len(id3) + len(junk)
    assert probe_duration_s(data) == pytest.approx(5 * 576 / 22050)


def test_truncated_last_frame_is_not_counted() -> None:
    data = frame() * 4 + frame()[:50]
    assert probe(data).frames == 4


def test_info_header_frame_is_not_counted() -> None:
    info = bytearray(frame())
    info[4 + 9 : 4 + 13] = b"Info"  # after the MPEG-2 mono side information
    info_data = bytes(info) + frame() * 3
    assert probe(info_data).frames == 3


def test_probe_from_path_and_bytes_agree(tmp_path: Path) -> None:
    path = tmp_path / "x.mp3"
    path.write_bytes(frame() * 10)
    assert probe(path) == probe(path.read_bytes())
    assert probe(str(path)).frames == 10
    info = probe(path)
    assert info.constant_bitrate and info.bitrate_kbps == 32


def test_no_frames_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no MPEG audio frame"):
        probe(b"just some text, not audio" * 40)
    with pytest.raises(AudioError):
        first_frame(b"")
    missing = tmp_path / "nothing-here.mp3"
    with pytest.raises(AudioError, match=re.escape(missing.name)):
        probe_duration_s(missing)


def test_real_ffmpeg_mp3_with_id3_and_xing(
    speech_wav: Path, tmp_path: Path, run_ffmpeg: Callable[..., None]
) -> None:
    """An independent encoder's file: ID3v2 tag, LAME Info frame, MPEG-1 stereo 128 kbps."""
    path = tmp_path / "stereo.mp3"
    run_ffmpeg(
        "-i", str(speech_wav), "-ac", "2", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "128k",
        "-metadata", "title=x", str(path),
    )  # fmt: skip
    data = path.read_bytes()
    assert data.startswith(b"ID3")
    info = probe(data)
    assert (info.version, info.layer, info.sample_rate, info.channels) == ("1", 3, 44100, 2)
    assert info.bitrate_kbps == 128
    assert info.first_frame_offset > 10
    # 3 s of audio plus the encoder's priming and padding (< 2 frames of 26 ms).
    assert 3.0 <= info.duration_s <= 3.08
