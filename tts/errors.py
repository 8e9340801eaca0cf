"""The one exception type of the tts package.

Callers (the broadcast core) catch a single type and show its message to the operator, so every
failure inside tts (unknown engine, bad option, empty text, engine crash) is raised as TtsError.
"""

import logging

_LOGGER = logging.getLogger(__name__)


class TtsError(Exception):
    """Text could not be turned into speech; the message says why in plain words."""
