"""Text to Vietnamese speech: normalize the text, synthesize it, cache the result.

The broadcast core uses only this surface::

    text = normalize(raw)
    has_speech(raw)  # False for only symbols or control characters: refuse it before storing
    synth = Synthesizer(cache_dir, engine="espeak", **engine_options)
    result = synth.synthesize(raw)  # SpeechResult(path, format, engine, cached, normalized_text)
    parts = synth.synthesize_parts(raw, progress)  # one SpeechResult per paragraph
    script = make_script(document, commune="Hoằng Hợp")  # BroadcastScript(title, body, text, …)
    check_piper_voice(path)  # VoiceCheck of a Piper voice file, or TtsError naming the problem
"""

import logging

from .engines.piper import VoiceCheck
from .engines.piper import check_voice as check_piper_voice
from .errors import TtsError
from .lexicon import fingerprint as normalizer_fingerprint
from .normalize import has_speech, normalize
from .script import DEFAULT_OPENING, BroadcastScript, make_script, render_opening
from .synth import SpeechResult, Synthesizer

__all__ = [
    "DEFAULT_OPENING",
    "BroadcastScript",
    "SpeechResult",
    "Synthesizer",
    "TtsError",
    "VoiceCheck",
    "check_piper_voice",
    "has_speech",
    "make_script",
    "normalize",
    "normalizer_fingerprint",
    "render_opening",
]

_LOGGER = logging.getLogger(__name__)
