"""Fixtures for the audio tests: synthetic "speech" made here, never by tts/.

The files are real WAV and MP3 files (the MP3 made by the bundled ffmpeg directly, the way gTTS
delivers speech: 24 kHz, with an ID3 tag and a Xing/Info header), so the tests exercise the real
decode and encode paths. Loudness is checked with the bundled ffmpeg's ebur128 filter, called
here directly and parsed here, independently of the code under test.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import wave
from array import array
from collections.abc import Callable
from dataclasses import dataclass
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


def speechlike_samples(seconds: float, rate: int, peak: float, seed: int = 7) -> list[float]:
    """Closer to real speech than speech_samples: syllables of a voiced sound with a moving
    pitch and falling harmonics, noisy consonants, pauses between words; its peaks stand
    ~15 dB above its loudness, as speech's do. Normalized to the given sample peak.
    """
    rng = random.Random(seed)
    out: list[float] = []
    total = round(seconds * rate)
    while len(out) < total:
        for _syllable in range(rng.randint(2, 5)):
            if rng.random() < 0.5:  # a consonant: 40-90 ms of noise
                length = round(rng.uniform(0.04, 0.09) * rate)
                level = rng.uniform(0.05, 0.2)
                out += [level * rng.uniform(-1, 1) for _ in range(length)]
            length = round(rng.uniform(0.12, 0.26) * rate)
            pitch = rng.uniform(100, 190)
            glide = rng.uniform(-0.4, 0.4)
            level = rng.uniform(0.1, 1.0) ** 2
            phase = 0.0
            for n in range(length):
                x = n / length
                phase += 2 * math.pi * pitch * (1 + glide * x) / rate
                envelope = math.sin(math.pi * x) ** 0.7
                voice = sum(math.sin(k * phase) / k for k in range(1, 12))
                out.append(level * envelope * voice)
        out += [0.0] * round(rng.uniform(0.12, 0.3) * rate)
    out = out[:total]
    scale = peak / (max(abs(v) for v in out) or 1.0)
    return [v * scale for v in out]


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


@dataclass(frozen=True)
class Measured:
    """ffmpeg ebur128 on a file: integrated loudness and true peak."""

    lufs: float
    true_peak_dbtp: float


def _measure(source: bytes | Path) -> Measured:
    """Integrated loudness and true peak of any audio (bytes or a path) by the bundled ffmpeg."""
    is_bytes = isinstance(source, bytes)
    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats",
            "-i", "pipe:0" if is_bytes else str(source),
            "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-",
        ],
        input=source if is_bytes else b"",
        capture_output=True,
        check=True,
    )  # fmt: skip
    log = result.stderr.decode()
    lufs = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", log)
    peak = re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", log)
    return Measured(lufs=float(lufs[-1]), true_peak_dbtp=float(peak[-1]))


def _decode_raw(source: bytes | Path, rate: int = 22050) -> bytes:
    """Any audio → raw s16le mono PCM at rate, by the bundled ffmpeg."""
    is_bytes = isinstance(source, bytes)
    return subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error",
            "-i", "pipe:0" if is_bytes else str(source),
            "-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1",
        ],
        input=source if is_bytes else b"",
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip


@pytest.fixture(scope="session")
def measure() -> Callable[[bytes | Path], Measured]:
    """measure(mp3_or_opus_bytes_or_path) -> Measured(lufs, true_peak_dbtp)."""
    return _measure


@pytest.fixture(scope="session")
def decoded_seconds() -> Callable[[bytes | Path], float]:
    """How long any audio plays, by decoding it (works for Opus too)."""
    return lambda source: len(_decode_raw(source)) / (2 * 22050)


@pytest.fixture(scope="session")
def write_speechlike() -> Callable[..., Path]:
    """write_speechlike(path, seconds, rate, peak_db, channels=1, seed=7) -> a 16-bit WAV."""

    def write(
        path: Path, seconds: float, rate: int, peak_db: float, channels: int = 1, seed: int = 7
    ) -> Path:
        samples = speechlike_samples(seconds, rate, 10 ** (peak_db / 20), seed=seed)
        return write_wav(path, samples, rate, channels=channels)

    return write


@pytest.fixture(scope="session")
def speechlike_wav(audio_dir: Path) -> Path:
    """4 s of speech-like sound at a low level (-30 dBFS peaks), 16-bit mono 22.05 kHz like
    espeak's output, so it takes the plain-WAV path (estimate, then one limiting run).
    """
    return write_wav(
        audio_dir / "speechlike.wav", speechlike_samples(4.0, 22050, 10 ** (-30 / 20)), 22050
    )


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
