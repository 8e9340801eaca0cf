"""Errors raised by the audio package.

One exception type lets the broadcast core and the web layer catch every audio failure (bad input
file, ffmpeg failure, malformed hash) without knowing which module raised it.
"""

from __future__ import annotations

import logging

_LOGGER = logging.getLogger(__name__)


class AudioError(Exception):
    """An audio file could not be read, rendered, encoded or stored."""


class MediaNotFoundError(AudioError, FileNotFoundError):
    """A well-formed sha256 that the media store does not hold.

    Also a FileNotFoundError so that HTTP code can map it to 404 with the usual idiom.
    """
