"""A real MP3 for tests that serve or measure media (the replay page, the podcast)."""

from __future__ import annotations

import functools
import subprocess

import imageio_ffmpeg


@functools.cache
def silent_mp3(seconds: float = 2.0) -> bytes:
    """Silence as receivers' media are made (22.05 kHz mono, 32 kbps), so the media store can
    measure its duration; made once per process."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f",
               "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", str(seconds), "-b:a", "32k",
               "-f", "mp3", "-"]  # fmt: skip
    return subprocess.run(command, check=True, capture_output=True).stdout
