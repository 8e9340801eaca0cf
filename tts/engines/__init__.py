"""Registry of speech engines, looked up by name.

The broadcast core and the settings only know engine names ("espeak", "gtts", "piper"); a new
engine is a subclass of `Engine` passed to `register_engine`, with no change to the synthesizer.
"""

import inspect
import logging

from ..errors import TtsError
from .base import Engine
from .espeak import EspeakEngine
from .gtts_engine import GttsEngine
from .piper import PiperEngine

__all__ = [
    "Engine",
    "EspeakEngine",
    "GttsEngine",
    "PiperEngine",
    "engine_names",
    "get_engine",
    "register_engine",
]

_LOGGER = logging.getLogger(__name__)

_ENGINES: dict[str, type[Engine]] = {}


def register_engine(engine_cls: type[Engine]) -> type[Engine]:
    """Make `engine_cls` available under `engine_cls.name`; usable as a class decorator."""
    name = getattr(engine_cls, "name", "")
    if not name or not isinstance(name, str):
        raise TtsError(f"engine class {engine_cls.__qualname__} has no name")
    known = _ENGINES.get(name)
    if known is not None and known is not engine_cls:
        raise TtsError(f"engine name {name!r} is already taken by {known.__qualname__}")
    _ENGINES[name] = engine_cls
    _LOGGER.debug("registered tts engine %s (%s)", name, engine_cls.__qualname__)
    return engine_cls


def engine_names() -> list[str]:
    """Names of the registered engines, sorted."""
    return sorted(_ENGINES)


def get_engine(name: str, **options: object) -> Engine:
    """Create the engine registered as `name` with its options."""
    engine_cls = _ENGINES.get(name)
    if engine_cls is None:
        raise TtsError(f"unknown tts engine {name!r}; known engines: {', '.join(engine_names())}")
    try:
        inspect.signature(engine_cls).bind(**options)
    except TypeError as exc:
        raise TtsError(f"bad options for tts engine {name!r}: {exc}") from exc
    return engine_cls(**options)


register_engine(EspeakEngine)
register_engine(GttsEngine)
register_engine(PiperEngine)
