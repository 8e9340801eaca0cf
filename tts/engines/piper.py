"""Offline neural Vietnamese speech with Piper, for communes that want a better voice than espeak
without depending on the internet.

Piper is optional: Loa does not install it. The operator installs it (`pip install piper-tts`,
or a `piper` binary on PATH) and downloads a voice, a `.onnx` model with its `.onnx.json` config
beside it, from the rhasspy/piper-voices repository on Hugging Face (`vi_VN-vais1000-medium`,
`vi_VN-25hours_single-low`). The Python package is preferred: the voice is loaded once and reused
for every paragraph; the binary is started once per text.
"""

import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..errors import TtsError
from .base import Engine

_LOGGER = logging.getLogger(__name__)

MODEL_ENV = "LOA_PIPER_MODEL"  # the voice used when no model option is given
VOICES_URL = "https://huggingface.co/rhasspy/piper-voices/tree/main/vi/vi_VN"
INSTALL_HINT = (
    "install Piper with `pip install piper-tts` (or put a `piper` binary on PATH) and download a "
    f"Vietnamese voice (.onnx and .onnx.json) from {VOICES_URL}"
)
_STDERR_TAIL = 400

_voices: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_voices_guard = threading.Lock()


def _piper_package() -> Any | None:
    """The `piper` module of piper-tts, or None when it is not installed."""
    try:
        module = importlib.import_module("piper")
    except ImportError:
        return None
    return module if hasattr(module, "PiperVoice") else None


def _load_voice(package: Any, model: Path, config: Path) -> tuple[Any, threading.Lock]:
    """The loaded voice for `model`, shared by every engine of the process; loading takes a
    second or more. Its lock serialises synthesis: piper's phonemizer is one global espeak."""
    stat = model.stat()
    key = (str(model.resolve()), stat.st_size, stat.st_mtime_ns)
    with _voices_guard:
        if key not in _voices:
            try:
                voice = package.PiperVoice.load(model, config_path=config)
            except Exception as exc:  # onnxruntime raises its own types for a bad model
                raise TtsError(f"cannot load piper voice {model}: {exc}") from exc
            _voices[key] = (voice, threading.Lock())
            _LOGGER.info("loaded piper voice %s", model)
        return _voices[key]


# what `check_voice` reads aloud: every kind of sound a notice has, short enough to be quick
TEST_SENTENCE = "Xin chào bà con, đây là giọng đọc thử của đài truyền thanh xã."
VIETNAMESE = ("vi", "vi-vn", "vi_vn")  # what a Vietnamese voice's config names as its language
_TEST_SECONDS = (0.5, 60.0)  # a voice that reads the sentence outside this is broken


@dataclass(frozen=True)
class VoiceCheck:
    """What `check_voice` found: enough for the operator to know the voice will speak."""

    model: Path
    config: Path
    language: str
    sample_rate: int
    speakers: int
    quality: str
    size: int
    sha256: str
    test_seconds: float  # how long the test sentence sounded


def check_voice(model: str | os.PathLike[str], sentence: str = TEST_SENTENCE) -> VoiceCheck:
    """A Piper voice file checked before it is offered: a .onnx with its .onnx.json beside it,
    a config naming Vietnamese and a sample rate, and a test sentence that really sounds.
    TtsError names the file and what is wrong."""
    path = Path(model).expanduser()
    if path.suffix != ".onnx":
        raise TtsError(f"{path}: a Piper voice is a .onnx file, with its .onnx.json beside it")
    engine = PiperEngine(model=path)  # both files exist, the JSON reads, piper is installed
    config = json.loads(engine.config.read_bytes())
    if not isinstance(config, dict):
        raise TtsError(f"{engine.config}: not a Piper voice config (a JSON object)")
    audio_config = config.get("audio") if isinstance(config.get("audio"), dict) else {}
    rate = audio_config.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 8000 <= rate <= 48000:
        raise TtsError(f"{engine.config}: audio.sample_rate must be 8000 to 48000 Hz, got {rate!r}")
    espeak = config.get("espeak") if isinstance(config.get("espeak"), dict) else {}
    language = str(espeak.get("voice", ""))
    if language.lower() not in VIETNAMESE:
        raise TtsError(
            f"{engine.config}: espeak.voice is {language!r}: Loa reads Vietnamese, so the voice "
            f"must be a Vietnamese one (vi)"
        )
    if not isinstance(config.get("phoneme_id_map"), dict) or not config["phoneme_id_map"]:
        raise TtsError(f"{engine.config}: it has no phoneme_id_map: not a Piper voice config")
    with tempfile.TemporaryDirectory(prefix="loa-voice-") as folder:
        heard = Path(folder) / "test.wav"
        engine.synthesize(sentence, heard)
        seconds, loudness = _wav_seconds_and_rms(heard)
    low, high = _TEST_SECONDS
    if not low <= seconds <= high or loudness < 50:
        raise TtsError(
            f"{path}: the test sentence gave {seconds:.1f} s of sound at RMS {loudness:.0f}: "
            "the voice does not speak it"
        )
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return VoiceCheck(
        model=path,
        config=engine.config,
        language=language,
        sample_rate=rate,
        speakers=int(config.get("num_speakers") or 1),
        quality=str(audio_config.get("quality", "")),
        size=path.stat().st_size,
        sha256=digest.hexdigest(),
        test_seconds=round(seconds, 2),
    )


def _wav_seconds_and_rms(path: Path) -> tuple[float, float]:
    with wave.open(str(path), "rb") as wav:
        frames, rate, width = wav.getnframes(), wav.getframerate(), wav.getsampwidth()
        data = wav.readframes(frames)
    if width != 2 or not frames:
        return frames / max(rate, 1), 0.0
    samples = array("h", data[: len(data) - len(data) % 2])
    rms = (sum(sample * sample for sample in samples) / len(samples)) ** 0.5
    return frames / rate, rms


class PiperEngine(Engine):
    """Piper with the voice model `model` (a .onnx file, its .onnx.json next to it); writes WAV.

    `model` defaults to the LOA_PIPER_MODEL environment variable. `command` names a piper
    executable to use instead of the Python package. `speaker` picks a voice of a multi-speaker
    model; `length_scale` above 1 reads slower (clearer through horn loudspeakers).
    """

    name: ClassVar[str] = "piper"
    output_format: ClassVar[str] = "wav"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        speaker: int | None = None,
        length_scale: float | None = None,
        command: str | None = None,
        timeout: float = 600.0,
    ) -> None:
        model = model or os.environ.get(MODEL_ENV) or None
        if model is None:
            raise TtsError(
                f"piper needs a voice model: give its path (--model PATH.onnx) or set {MODEL_ENV}; "
                f"{INSTALL_HINT}"
            )
        self.model = Path(model).expanduser()
        self.config = Path(f"{self.model}.json")
        if not self.model.is_file():
            raise TtsError(f"piper voice model {self.model} does not exist; {INSTALL_HINT}")
        if not self.config.is_file():
            raise TtsError(
                f"piper voice config {self.config} does not exist: download it with the model"
            )
        try:
            config_bytes = self.config.read_bytes()
            json.loads(config_bytes)
        except (OSError, ValueError) as exc:
            raise TtsError(f"piper voice config {self.config} is not readable JSON: {exc}") from exc
        if speaker is not None and (not isinstance(speaker, int) or speaker < 0):
            raise TtsError(f"piper speaker must be a speaker number >= 0, got {speaker!r}")
        if length_scale is not None and (
            not isinstance(length_scale, int | float) or not 0.25 <= length_scale <= 4
        ):
            raise TtsError(f"piper length_scale must be from 0.25 to 4, got {length_scale!r}")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise TtsError(f"piper timeout must be a positive number of seconds, got {timeout!r}")
        self.speaker = speaker
        self.length_scale = length_scale
        self.timeout = float(timeout)
        self._config_sha256 = hashlib.sha256(config_bytes).hexdigest()
        self._package = None if command else _piper_package()
        self._command: str | None = None
        if self._package is None:
            self._command = shutil.which(command or "piper")
            if self._command is None:
                missing = f"piper command {command!r} not found" if command else "piper is missing"
                raise TtsError(f"{missing}: {INSTALL_HINT}")
        _LOGGER.debug("piper voice %s via %s", self.model, self._command or "the piper-tts package")

    def cache_options(self) -> Mapping[str, object]:
        # The voice decides the sound, wherever its file lies; the backend does not.
        return {
            "model": self.model.name,
            "model_size": self.model.stat().st_size,
            "config_sha256": self._config_sha256,
            "speaker": self.speaker,
            "length_scale": self.length_scale,
        }

    def synthesize(self, text: str, out_path: Path) -> None:
        if self._command is not None:
            self._run_command(self._command, text, out_path)
        else:
            self._run_package(text, out_path)
        try:
            with wave.open(str(out_path), "rb") as wav:
                frames, rate = wav.getnframes(), wav.getframerate()
        except (OSError, EOFError, wave.Error) as exc:
            raise TtsError(f"piper wrote no readable WAV: {exc}") from exc
        if frames == 0:
            raise TtsError("piper produced no audio")
        _LOGGER.debug("piper wrote %.1f s to %s", frames / rate, out_path)

    def _run_package(self, text: str, out_path: Path) -> None:
        voice, lock = _load_voice(self._package, self.model, self.config)
        syn_config = self._package.SynthesisConfig(
            speaker_id=self.speaker, length_scale=self.length_scale
        )
        try:
            with lock, wave.open(str(out_path), "wb") as wav:
                voice.synthesize_wav(text, wav, syn_config=syn_config)
        except (OSError, ValueError, RuntimeError, KeyError, wave.Error) as exc:
            raise TtsError(f"piper failed: {type(exc).__name__}: {exc}") from exc

    def _run_command(self, command: str, text: str, out_path: Path) -> None:
        argv = [command, "--model", str(self.model), "--config", str(self.config)]
        argv += ["--output_file", str(out_path)]
        if self.speaker is not None:
            argv += ["--speaker", str(self.speaker)]
        if self.length_scale is not None:
            argv += ["--length_scale", str(self.length_scale)]
        try:
            completed = subprocess.run(
                argv, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise TtsError(f"piper took longer than {self.timeout:.0f} s") from exc
        except OSError as exc:
            raise TtsError(f"cannot run {command}: {exc}") from exc
        if completed.returncode != 0:
            detail = completed.stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
            raise TtsError(f"piper exited with status {completed.returncode}: {detail}")
