"""Offline Vietnamese speech with libespeak-ng, loaded from the espeakng-loader wheel.

The default engine: it needs no network (many communes have none they can rely on) and no
system package, because the wheel ships the library and its voice data. libespeak-ng keeps
global state (one voice, one callback, one output buffer), so every call goes through one
process-wide lock.
"""

import contextlib
import ctypes
import logging
import os
import sys
import threading
import wave
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import espeakng_loader

from ..errors import TtsError
from .base import Engine

_LOGGER = logging.getLogger(__name__)

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a broken data path instead of calling exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_PARAMETER_RATE = 1
_EE_OK = 0
_EE_NOT_FOUND = 2
_MIN_RATE, _MAX_RATE = 80, 450

# int callback(short *wav, int numsamples, espeak_EVENT *events); the events are not read.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Library:
    """The loaded and initialised libespeak-ng; use only while holding `_LOCK`."""

    def __init__(self) -> None:
        library_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise TtsError(f"cannot load libespeak-ng from {library_path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data_path), _INITIALIZE_DONT_EXIT
        )
        if sample_rate <= 0:
            raise TtsError(f"libespeak-ng failed to initialise with data from {data_path}")
        self._lib = lib
        self.lib = lib  # the raw CDLL, for calls beyond synthesis (tts.phonemes)
        self.sample_rate = sample_rate
        self._chunks: list[bytes] = []
        # Kept on the instance: ctypes does not hold a reference, and a collected callback
        # would crash the process on the next synthesis.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        _LOGGER.info("libespeak-ng initialised (%d Hz, data %s)", sample_rate, data_path)

    def _on_audio(self, wav: Any, count: int, _events: int | None) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = continue

    def synthesize(self, text: str, voice: str, rate: int) -> bytes:
        """Return 16-bit mono PCM at `sample_rate` for `text`."""
        status = self._lib.espeak_SetVoiceByName(voice.encode("utf-8"))
        if status == _EE_NOT_FOUND:
            raise TtsError(f"espeak-ng has no voice {voice!r}")
        if status != _EE_OK:
            raise TtsError(f"espeak-ng could not select voice {voice!r} (error {status})")
        self._lib.espeak_SetParameter(_PARAMETER_RATE, rate, 0)
        data = text.encode("utf-8")
        self._chunks = []
        try:
            status = self._lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
            )
            pcm = b"".join(self._chunks)
        finally:
            self._chunks = []
        if status != _EE_OK:
            raise TtsError(f"espeak-ng synthesis failed (error {status})")
        return pcm


_LOCK = threading.Lock()
_library: _Library | None = None


def _synthesize_pcm(text: str, voice: str, rate: int) -> tuple[bytes, int]:
    """Serialise every use of the global library; initialise it on first use."""
    with locked_library() as library:
        return library.synthesize(text, voice, rate), library.sample_rate


@contextlib.contextmanager
def locked_library() -> Iterator[_Library]:
    """The initialised library under the process-wide lock, for other users (tts.phonemes)."""
    global _library
    with _LOCK:
        if _library is None:
            _library = _Library()
        yield _library


class EspeakEngine(Engine):
    """espeak-ng through ctypes; writes a mono 16-bit WAV at the library's sample rate."""

    name: ClassVar[str] = "espeak"
    output_format: ClassVar[str] = "wav"

    def __init__(self, voice: str = "vi", rate: int = 150) -> None:
        # 150 words/min: espeak's default 175 is hard to follow through horn loudspeakers.
        if not isinstance(voice, str) or not voice:
            raise TtsError("espeak voice must be a non-empty name such as 'vi'")
        if not isinstance(rate, int) or not _MIN_RATE <= rate <= _MAX_RATE:
            raise TtsError(f"espeak rate must be {_MIN_RATE}..{_MAX_RATE} words/min, got {rate!r}")
        self.voice = voice
        self.rate = rate

    def cache_options(self) -> Mapping[str, object]:
        return {"voice": self.voice, "rate": self.rate}

    def synthesize(self, text: str, out_path: Path) -> None:
        pcm, sample_rate = _synthesize_pcm(text, self.voice, self.rate)
        if not pcm:
            raise TtsError("espeak-ng produced no audio")
        if sys.byteorder == "big":  # espeak hands out native shorts; WAV is little-endian
            samples = array("h", pcm)
            samples.byteswap()
            pcm = samples.tobytes()
        with wave.open(str(out_path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            wav.writeframes(pcm)
        _LOGGER.debug("espeak wrote %.1f s to %s", len(pcm) / 2 / sample_rate, out_path)
