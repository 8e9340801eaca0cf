"""What libespeak-ng would say for a text, as its phoneme names, without synthesizing audio.

espeak-ng's Vietnamese voice hands every word it does not find Vietnamese-looking ("UBND",
"hotline", "dich") to its English rules: the phoneme string then shows "(en)" before the word
and "(vi)" after it, and the loudspeaker says an English word in the middle of a notice. The
normalizer must never produce such words; this module lets the tests (and anyone checking a
new abbreviation) see what espeak makes of a text.
"""

import ctypes
import logging
import re

from .engines.espeak import locked_library
from .errors import TtsError

_LOGGER = logging.getLogger(__name__)

_CHARS_UTF8 = 1  # speak_lib.h espeakCHARS_UTF8
_PHONEMES_ASCII = 0  # espeak's ASCII phoneme names, as `espeak-ng -x` prints them
_EE_OK = 0
_SWITCH = re.compile(r"\(([a-z-]+)\)")


def phonemes(text: str, voice: str = "vi") -> str:
    """Phoneme names of `text` in `voice`, clause by clause, like `espeak-ng -v vi -x`."""
    data = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
    pointer = ctypes.c_void_p(ctypes.addressof(data))
    clauses: list[str] = []
    with locked_library() as library:
        lib = library.lib
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int,
        ]  # fmt: skip
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != _EE_OK:
            raise TtsError(f"espeak-ng has no voice {voice!r}")
        # espeak moves the pointer past each clause it translates and sets it to NULL at the end.
        while pointer.value:
            clause = lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_ASCII)
            if clause:
                clauses.append(clause.decode("utf-8", errors="replace").strip())
    return " ".join(c for c in clauses if c)


def language_switches(text: str, voice: str = "vi") -> list[str]:
    """The words of `text` that espeak reads with another language's rules ("(en)" and the like).

    Each text word is checked on its own, so the answer names the culprits, not just a clause.
    """
    found: list[str] = []
    for word in dict.fromkeys(text.split()):
        spoken = phonemes(word, voice)
        if any(lang != voice for lang in _SWITCH.findall(spoken)):
            found.append(word)
    return found
