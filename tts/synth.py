"""From text to a cached speech file.

Announcements are repeated (every morning, every village), so speech is cached by the hash of
what decides the sound: engine, its sound options and the normalized text. The same text is
synthesized once per engine and voice; later calls return the file from the cache.
"""

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from wire.files import atomic_output

from .engines import Engine, get_engine
from .errors import TtsError
from .normalize import normalize

_LOGGER = logging.getLogger(__name__)

FALLBACK_ENGINE = "espeak"
_KEY_VERSION = 1  # bump to invalidate every cached file after a change in how engines sound
_LOCK_STRIPES = 64


@dataclass(frozen=True)
class SpeechResult:
    """One synthesized text: where the audio is and how it was made."""

    path: Path  # the file in the cache directory
    format: str  # "wav" or "mp3"
    engine: str  # the engine that actually spoke (the fallback, when the chosen one failed)
    cached: bool  # True when the file came from the cache and no engine ran
    normalized_text: str  # what was read aloud


class Synthesizer:
    """Normalizes text, synthesizes it with the chosen engine and caches the audio.

    If the chosen engine is not espeak and fails (no network, timeout, HTTP error), the text is
    spoken by espeak instead and a WARNING says why; the announcement still goes out.
    """

    def __init__(
        self,
        cache_dir: Path,
        engine: str = "espeak",
        *,
        extra_abbreviations: Mapping[str, str] | None = None,
        **engine_options: object,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.engine = get_engine(engine, **engine_options)
        self.extra_abbreviations = dict(extra_abbreviations or {})
        self._fallback: Engine | None = None
        self._fallback_guard = threading.Lock()
        # Two threads asking for the same text wait for one synthesis instead of doing two.
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def synthesize(self, text: str) -> SpeechResult:
        """Return the speech for `text`, from the cache when it was synthesized before."""
        return self._synthesize_spoken(self._spoken(text))

    def synthesize_parts(
        self, text: str, progress: Callable[[int, int], None] | None = None
    ) -> list[SpeechResult]:
        """Speech for a long text as one file per block (paragraph, heading, list item).

        A document of thirty paragraphs takes minutes with an online engine; in parts, each one
        is cached on its own (editing one paragraph re-synthesizes only that one) and
        `progress(done, total)` is called after each. The text is normalized as a whole first,
        so it reads exactly as `synthesize(text)` would. Once the chosen engine fails, the rest
        goes straight to espeak and the parts it had already spoken are redone by espeak too, so
        the voice does not change in the middle of an announcement.
        """
        parts = self._spoken(text).splitlines()
        results: list[SpeechResult] = []
        fallback: Engine | None = None
        for done, part in enumerate(parts, start=1):
            if fallback is not None:
                results.append(self._synthesize_with(fallback, part))
            else:
                results.append(self._synthesize_spoken(part))
                if results[-1].engine != self.engine.name:
                    fallback = self._fallback_engine()
            if progress is not None:
                progress(done, len(parts))
        if fallback is not None:
            redo = sum(result.engine != fallback.name for result in results)
            if redo:
                _LOGGER.warning(
                    "tts engine %s failed part-way; %d part(s) it had spoken are read by %s too, "
                    "so the whole text has one voice", self.engine.name, redo, fallback.name,
                )  # fmt: skip
            results = [
                result if result.engine == fallback.name else self._synthesize_with(fallback, part)
                for result, part in zip(results, parts, strict=True)
            ]
        return results

    def _spoken(self, text: str) -> str:
        """The normalized text, refused when there is nothing to say."""
        if not text or not text.strip():
            raise TtsError("text is empty")
        spoken = normalize(text, self.extra_abbreviations)
        if not spoken.strip():
            raise TtsError("text is empty")
        return spoken

    def _synthesize_spoken(self, spoken: str) -> SpeechResult:
        """Synthesize normalized text with the chosen engine, or with espeak if it fails."""
        if self.engine.name == FALLBACK_ENGINE:
            return self._synthesize_with(self.engine, spoken)
        try:
            return self._synthesize_with(self.engine, spoken)
        except TtsError as exc:
            _LOGGER.warning(
                "tts engine %s failed, falling back to %s: %s", self.engine.name,
                FALLBACK_ENGINE, exc,
            )  # fmt: skip
            return self._synthesize_with(self._fallback_engine(), spoken)

    def cache_key(self, engine: Engine, spoken: str) -> str:
        """sha256 over what decides the sound; also the cached file's name."""
        material = {
            "v": _KEY_VERSION,
            "engine": engine.name,
            "options": dict(engine.cache_options()),
            "text": spoken,
        }
        encoded = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    def _fallback_engine(self) -> Engine:
        with self._fallback_guard:
            if self._fallback is None:
                self._fallback = get_engine(FALLBACK_ENGINE)
            return self._fallback

    def _synthesize_with(self, engine: Engine, spoken: str) -> SpeechResult:
        key = self.cache_key(engine, spoken)
        path = self.cache_dir / f"{key}.{engine.output_format}"

        def result(cached: bool) -> SpeechResult:
            return SpeechResult(path, engine.output_format, engine.name, cached, spoken)

        with self._stripes[int(key[:8], 16) % _LOCK_STRIPES]:
            if path.is_file() and path.stat().st_size > 0:
                _LOGGER.debug("tts cache hit %s", path.name)
                return result(cached=True)
            started = time.monotonic()
            self._write_atomically(engine, spoken, path)
            _LOGGER.info(
                "synthesized %d characters with %s in %.2f s -> %s", len(spoken), engine.name,
                time.monotonic() - started, path.name,
            )  # fmt: skip
            return result(cached=False)

    def _write_atomically(self, engine: Engine, spoken: str, path: Path) -> None:
        """Let the engine write a temporary file next to `path`, then rename it into place, so
        the cache never holds a half-written file (a crash leaves only a .tmp file)."""
        try:
            with atomic_output(path, prefix=f".{path.stem[:16]}-", suffix=".tmp") as output:
                engine.synthesize(spoken, output.path)
                if output.path.stat().st_size == 0:
                    raise TtsError(f"tts engine {engine.name} wrote an empty file")
        except OSError as exc:
            raise TtsError(f"cannot write speech to {path}: {exc}") from exc
