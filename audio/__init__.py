"""Loa audio: programmes (chime, ident, speech × N) → MP3 or Opus at −16 LUFS; recordings; store.

This package knows sound files, nothing about text. The broadcast core calls
``render_announcement`` (or ``render_programme`` with a ``ProgrammeSpec``) on the speech files made
by ``tts`` and keeps the result in a ``MediaStore`` under its sha256; the web layer serves
``MediaStore.path(sha)`` over HTTP, and turns uploaded phone recordings into programme-ready MP3
with ``import_recording`` (refusals are ``RecordingError`` with a plain-English message).
"""

import logging

from audio.errors import AudioError, MediaNotFoundError
from audio.formats import OutputFormat
from audio.mp3 import FrameHeader, Mp3Info, first_frame, probe, probe_duration_s
from audio.programme import (
    CHIME_S,
    ProgrammeSpec,
    render_announcement,
    render_chime,
    render_programme,
)
from audio.recording import RecordingError, RecordingInfo, RecordingProblem, import_recording
from audio.store import MediaStore

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "CHIME_S",
    "AudioError",
    "FrameHeader",
    "MediaNotFoundError",
    "MediaStore",
    "Mp3Info",
    "OutputFormat",
    "ProgrammeSpec",
    "RecordingError",
    "RecordingInfo",
    "RecordingProblem",
    "first_frame",
    "import_recording",
    "probe",
    "probe_duration_s",
    "render_announcement",
    "render_chime",
    "render_programme",
]
