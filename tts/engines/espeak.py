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
import re
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
_PARAMETER_PITCH = 3
_PARAMETER_RANGE = 4
_EE_OK = 0
_EE_NOT_FOUND = 2
_MIN_RATE, _MAX_RATE = 80, 450
_MAX_PAUSE_MS = 5000
_ESPEAK_PAUSE_MS = 400  # about what espeak itself leaves after a sentence at 150 words/min
# A sentence ends at . ! ? (or …) followed by space; the normalizer writes one paragraph a line.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")

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

    def synthesize(
        self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, end_pause: bool
    ) -> bytes:
        """Return 16-bit mono PCM at `sample_rate` for `text` (with espeak's own pause at the
        end when `end_pause`)."""
        status = self._lib.espeak_SetVoiceByName(voice.encode("utf-8"))
        if status == _EE_NOT_FOUND:
            raise TtsError(f"espeak-ng has no voice {voice!r}")
        if status != _EE_OK:
            raise TtsError(f"espeak-ng could not select voice {voice!r} (error {status})")
        # The library keeps parameters between calls: set every one each time.
        self._lib.espeak_SetParameter(_PARAMETER_RATE, rate, 0)
        self._lib.espeak_SetParameter(_PARAMETER_PITCH, pitch, 0)
        self._lib.espeak_SetParameter(_PARAMETER_RANGE, pitch_range, 0)
        data = text.encode("utf-8")
        flags = _CHARS_UTF8 | (_ENDPAUSE if end_pause else 0)
        self._chunks = []
        try:
            status = self._lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None
            )
            pcm = b"".join(self._chunks)
        finally:
            self._chunks = []
        if status != _EE_OK:
            raise TtsError(f"espeak-ng synthesis failed (error {status})")
        return pcm


_LOCK = threading.Lock()
_library: _Library | None = None


def _synthesize_pcm(
    text: str, voice: str, rate: int, pitch: int = 50, pitch_range: int = 50, end_pause: bool = True
) -> tuple[bytes, int]:
    """Serialise every use of the global library; initialise it on first use."""
    with locked_library() as library:
        pcm = library.synthesize(text, voice, rate, pitch, pitch_range, end_pause)
        return pcm, library.sample_rate


@contextlib.contextmanager
def locked_library() -> Iterator[_Library]:
    """The initialised library under the process-wide lock, for other users (tts.phonemes)."""
    global _library
    with _LOCK:
        if _library is None:
            _library = _Library()
        yield _library


def _bounded(value: object, name: str, low: int, high: int, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TtsError(f"espeak {name} must be {low}..{high}{unit}, got {value!r}")
    return value


def _optional_pause(value: object, name: str) -> int | None:
    return None if value is None else _bounded(value, name, 0, _MAX_PAUSE_MS, " ms")


class EspeakEngine(Engine):
    """espeak-ng through ctypes; writes a mono 16-bit WAV at the library's sample rate.

    `pitch` and `pitch_range` are espeak's 0..100 (50 is the voice's own). With
    `sentence_pause_ms` or `paragraph_pause_ms` set, each sentence is spoken on its own and
    followed by exactly that much silence (the paragraph's at the end of a line, where the
    normalizer ends a paragraph) instead of espeak's own pause of ~0.4 s at both.
    """

    name: ClassVar[str] = "espeak"
    output_format: ClassVar[str] = "wav"

    def __init__(
        self,
        voice: str = "vi",
        rate: int = 150,
        pitch: int = 50,
        pitch_range: int = 50,
        sentence_pause_ms: int | None = None,
        paragraph_pause_ms: int | None = None,
    ) -> None:
        # 150 words/min: espeak's default 175 is hard to follow through horn loudspeakers.
        if not isinstance(voice, str) or not voice:
            raise TtsError("espeak voice must be a non-empty name such as 'vi'")
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int)
            or not _MIN_RATE <= rate <= _MAX_RATE
        ):
            raise TtsError(f"espeak rate must be {_MIN_RATE}..{_MAX_RATE} words/min, got {rate!r}")
        self.voice = voice
        self.rate = rate
        self.pitch = _bounded(pitch, "pitch", 0, 100, "")
        self.pitch_range = _bounded(pitch_range, "pitch_range", 0, 100, "")
        self.sentence_pause_ms = _optional_pause(sentence_pause_ms, "sentence_pause_ms")
        self.paragraph_pause_ms = _optional_pause(paragraph_pause_ms, "paragraph_pause_ms")

    def cache_options(self) -> Mapping[str, object]:
        return {
            "voice": self.voice,
            "rate": self.rate,
            "pitch": self.pitch,
            "pitch_range": self.pitch_range,
            "sentence_pause_ms": self.sentence_pause_ms,
            "paragraph_pause_ms": self.paragraph_pause_ms,
        }

    def _pcm(self, text: str) -> tuple[bytes, int]:
        """The speech as PCM: one call, or sentence by sentence with the set pauses."""
        if self.sentence_pause_ms is None and self.paragraph_pause_ms is None:
            return _synthesize_pcm(text, self.voice, self.rate, self.pitch, self.pitch_range)
        pieces: list[bytes] = []
        sample_rate = 0
        paragraphs = [line.strip() for line in text.splitlines() if line.strip()]
        for p_index, paragraph in enumerate(paragraphs):
            sentences = [s for s in _SENTENCE_END.split(paragraph) if s.strip()]
            for s_index, sentence in enumerate(sentences):
                pcm, sample_rate = _synthesize_pcm(
                    sentence, self.voice, self.rate, self.pitch, self.pitch_range, end_pause=False
                )
                pieces.append(pcm)
                last = s_index == len(sentences) - 1
                pause = self.paragraph_pause_ms if last else self.sentence_pause_ms
                if pause is None:
                    pause = _ESPEAK_PAUSE_MS
                if not (last and p_index == len(paragraphs) - 1):
                    pieces.append(bytes(2 * (sample_rate * pause // 1000)))
        return b"".join(pieces), sample_rate

    def synthesize(self, text: str, out_path: Path) -> None:
        pcm, sample_rate = self._pcm(text)
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
