"""The contract every speech engine fulfils, so the synthesizer can treat them alike."""

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

_LOGGER = logging.getLogger(__name__)


class Engine(ABC):
    """A speech engine: spoken-form text in, one audio file out.

    Subclasses set `name` (the registry key) and `output_format` ("wav" or "mp3"), take their
    options as keyword arguments and raise `tts.TtsError` when synthesis fails.
    """

    name: ClassVar[str]
    output_format: ClassVar[str]

    @abstractmethod
    def synthesize(self, text: str, out_path: Path) -> None:
        """Write the speech for `text` to `out_path` (the caller makes the write atomic)."""

    def cache_options(self) -> Mapping[str, object]:
        """The options that change the sound; they are part of the cache key."""
        return {}
