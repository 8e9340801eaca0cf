"""Fixtures for the audio tests: synthetic "speech" made here, never by tts/.

The files are real WAV and MP3 files (the MP3 made by the bundled ffmpeg directly, the way gTTS
delivers speech: 24 kHz, with an ID3 tag and a Xing/Info header), so the tests exercise the real
decode and encode paths.
"""

from __future__ import annotations

import math
import subprocess
import wave
from array import array
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg
import pytest

SPEECH_S = 3.0


def speech_samples(
    seconds: float, rate: int, peak: float, *, silence_s: float = 0.0
) -> list[float]:
    """A voiced, syllable-modulated tone (never silent) with optional silence at both ends."""
    samples = []
    for n in range(round(seconds * rate)):
        t = n / rate
        envelope = 0.35 + 0.65 * abs(math.sin(math.pi * 4 * t))
        voice = (
            math.sin(2 * math.pi * 180 * t)
            + 0.5 * math.sin(2 * math.pi * 360 * t)
            + 0.25 * math.sin(2 * math.pi * 720 * t + 0.3)
        ) / 1.75
        samples.append(peak * envelope * voice)
    pad = [0.0] * round(silence_s * rate)
    return pad + samples + pad


def write_wav(path: Path, samples: list[float], rate: int, channels: int = 1) -> Path:
    """16-bit PCM WAV via the stdlib; stereo duplicates the channel."""
    ints = array("h", (round(max(-1.0, min(1.0, v)) * 32767) for v in samples))
    if channels == 2:
        ints = array("h", (v for v in ints for _ in range(2)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(ints.tobytes())
    return path


def _run_ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg for fixture making (not through the code under test)."""
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def run_ffmpeg() -> Callable[..., None]:
    """The bundled ffmpeg, called directly: run_ffmpeg("-i", src, ..., dst)."""
    return _run_ffmpeg


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio-inputs")


@pytest.fixture(scope="session")
def speech_wav(audio_dir: Path) -> Path:
    """3 s of espeak-like speech: 16-bit WAV, but stereo 16 kHz to exercise conversion."""
    return write_wav(
        audio_dir / "speech.wav", speech_samples(SPEECH_S, 16000, 0.5), 16000, channels=2
    )


@pytest.fixture(scope="session")
def speech_mp3(speech_wav: Path, audio_dir: Path) -> Path:
    """The same speech as a gTTS-like MP3: 24 kHz mono 32 kbps, ID3v2 tag and Xing header."""
    path = audio_dir / "speech.mp3"
    _run_ffmpeg(
        "-i", str(speech_wav), "-ac", "1", "-ar", "24000", "-c:a", "libmp3lame", "-b:a", "32k",
        "-metadata", "title=thong bao", "-id3v2_version", "3", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def make_wav(audio_dir: Path) -> Callable[..., Path]:
    """Factory: make_wav(name, seconds, peak=0.5, rate=22050, silence_s=0.0) -> Path."""

    def make(
        name: str, seconds: float, peak: float = 0.5, rate: int = 22050, silence_s: float = 0.0
    ) -> Path:
        path = audio_dir / name
        if not path.exists():
            write_wav(path, speech_samples(seconds, rate, peak, silence_s=silence_s), rate)
        return path

    return make
