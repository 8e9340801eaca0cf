"""Text to Vietnamese speech: normalize the text, synthesize it, cache the result.

The broadcast core uses only this surface::

    text = normalize(raw)
    synth = Synthesizer(cache_dir, engine="espeak", **engine_options)
    result = synth.synthesize(raw)  # SpeechResult(path, format, engine, cached, normalized_text)
"""

import logging

from .errors import TtsError
from .normalize import normalize
from .synth import SpeechResult, Synthesizer

__all__ = ["SpeechResult", "Synthesizer", "TtsError", "normalize"]

_LOGGER = logging.getLogger(__name__)
