"""The live feed's encoder: a feed handed over in pieces comes out as the broadcast's MP3 on
both outputs (here two files: the stream server is tested in tests/e2e/test_live.py), and a
write after ffmpeg has given up is one AudioError, not a broken pipe."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

import audio
from audio.live import LiveEncoder


def _tone_webm(seconds: float) -> bytes:
    """What a browser's MediaRecorder sends: Opus in WebM."""
    return subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"sine=frequency=500:duration={seconds}", "-c:a", "libopus", "-b:a", "32k",
         "-f", "webm", "pipe:1"],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip


def test_a_feed_in_pieces_is_encoded_to_both_outputs(tmp_path: Path) -> None:
    feed = _tone_webm(2.0)
    stream, recording = tmp_path / "stream.mp3", tmp_path / "recording.mp3"
    encoder = LiveEncoder(str(stream), recording)
    encoder.start()
    for offset in range(0, len(feed), 700):
        encoder.write(feed[offset : offset + 700])
    assert encoder.close() == 0, encoder.problem()
    for output in (stream, recording):
        assert abs(audio.probe_duration_s(output) - 2.0) < 0.3, output
        assert audio.probe(output).sample_rate == 22050


def test_a_write_after_ffmpeg_gave_up_is_one_audio_error(tmp_path: Path) -> None:
    encoder = LiveEncoder("icecast://source:x@127.0.0.1:1/nowhere.mp3", tmp_path / "r.mp3")
    encoder.start()
    deadline = time.monotonic() + 10
    with pytest.raises(audio.AudioError, match="the live encoder stopped"):
        while time.monotonic() < deadline:  # until ffmpeg finds nobody listening on port 1
            encoder.write(_tone_webm(0.1))
            time.sleep(0.05)
    assert encoder.close() not in (0, None)
