"""Loa audio: chime + speech → broadcast MP3 (mono, 32 kbps, 22.05 kHz), and the media store.

This package knows sound files, nothing about text. The broadcast core calls
``render_announcement`` on the speech files made by ``tts`` and keeps the result in a
``MediaStore`` under its sha256; the web layer serves ``MediaStore.path(sha)`` over HTTP.
"""

import logging

from audio.errors import AudioError, MediaNotFoundError
from audio.mp3 import FrameHeader, Mp3Info, first_frame, probe, probe_duration_s
from audio.programme import render_announcement
from audio.store import MediaStore

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "AudioError",
    "FrameHeader",
    "MediaNotFoundError",
    "MediaStore",
    "Mp3Info",
    "first_frame",
    "probe",
    "probe_duration_s",
    "render_announcement",
]
