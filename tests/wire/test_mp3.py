"""The receiver's MP3 duration estimate, read with the one frame-header parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from wire.mp3 import estimated_duration_s

FALLBACK_BPS = 32_000


def test_duration_from_the_first_frame_after_an_id3_tag(tmp_path: Path) -> None:
    mpeg1_128k = tmp_path / "a.mp3"
    mpeg1_128k.write_bytes(
        b"ID3\x03\x00\x00\x00\x00\x00\x0a"  # a 10-byte tag body follows the header
        + b"\0" * 10
        + bytes([0xFF, 0xFB, 0x90, 0x64])  # MPEG-1 Layer III, 128 kbps, 44.1 kHz
        + b"\0" * 15996
    )
    assert estimated_duration_s(mpeg1_128k, FALLBACK_BPS) == pytest.approx(16000 * 8 / 128_000)


def test_duration_of_a_broadcast_mp3(tmp_path: Path) -> None:
    mpeg2_32k = tmp_path / "b.mp3"
    mpeg2_32k.write_bytes(bytes([0xFF, 0xF3, 0x40, 0xC4]) + b"\0" * 3996)  # 22.05 kHz, 32 kbps
    assert estimated_duration_s(mpeg2_32k, FALLBACK_BPS) == pytest.approx(1.0)


def test_other_layers_and_noise_fall_back_to_the_given_bitrate(tmp_path: Path) -> None:
    noise = tmp_path / "c.mp3"
    noise.write_bytes(b"\x01" * 4000)
    assert estimated_duration_s(noise, FALLBACK_BPS) == pytest.approx(1.0)
    layer2 = tmp_path / "d.mp2"
    layer2.write_bytes(bytes([0xFF, 0xFD, 0x90, 0x04]) + b"\0" * 3996)  # Layer II
    assert estimated_duration_s(layer2, 16_000) == pytest.approx(2.0)
