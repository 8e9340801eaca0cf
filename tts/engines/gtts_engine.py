"""Online Vietnamese speech through Google Translate's voice (the gTTS library).

It sounds far more natural than espeak-ng but needs the internet, so it always runs with a
timeout and the synthesizer falls back to espeak when it fails. `base_url` points it at another
host speaking the same batchexecute protocol (a local test server, a relay).
"""

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import requests
from gtts import gTTS, gTTSError

from ..errors import TtsError
from .base import Engine

_LOGGER = logging.getLogger(__name__)

BATCHEXECUTE_PATH = "_/TranslateWebserverUi/data/batchexecute"


class _GTTS(gTTS):
    """gTTS whose requests go to `base_url` instead of https://translate.google.<tld>."""

    def __init__(self, text: str, base_url: str | None, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self._base_url = base_url

    def _prepare_requests(self) -> list[requests.PreparedRequest]:
        prepared: list[requests.PreparedRequest] = super()._prepare_requests()
        if self._base_url:
            url = f"{self._base_url.rstrip('/')}/{BATCHEXECUTE_PATH}"
            for request in prepared:
                request.prepare_url(url, {})
        return prepared


def _looks_like_mp3(data: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync at the start."""
    return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


class GttsEngine(Engine):
    """gTTS (lang "vi" by default), writes MP3; gTTS itself splits text into short requests."""

    name: ClassVar[str] = "gtts"
    output_format: ClassVar[str] = "mp3"

    def __init__(
        self,
        lang: str = "vi",
        timeout: float = 10.0,
        base_url: str | None = None,
        tld: str = "com",
        slow: bool = False,
    ) -> None:
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise TtsError(f"gtts timeout must be a positive number of seconds, got {timeout!r}")
        self.lang = lang
        self.timeout = float(timeout)
        self.base_url = base_url
        self.tld = tld
        self.slow = slow

    def cache_options(self) -> Mapping[str, object]:
        # The host (tld, base_url) and the timeout do not change the voice.
        return {"lang": self.lang, "slow": self.slow}

    def synthesize(self, text: str, out_path: Path) -> None:
        buffer = io.BytesIO()
        try:
            speech = _GTTS(
                text, self.base_url, tld=self.tld, lang=self.lang, slow=self.slow,
                timeout=self.timeout,
            )  # fmt: skip
            speech.write_to_fp(buffer)
        except gTTSError as exc:
            # gTTS hides the requests error (timeout, refused) behind "Failed to connect".
            cause = exc.__context__
            detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            raise TtsError(f"gTTS failed: {exc}{detail}") from exc
        except (AssertionError, ValueError, requests.RequestException) as exc:
            raise TtsError(f"gTTS failed: {type(exc).__name__}: {exc}") from exc
        data = buffer.getvalue()
        if not _looks_like_mp3(data):
            raise TtsError(f"gTTS returned {len(data)} bytes that are not MP3 audio")
        out_path.write_bytes(data)
        _LOGGER.debug("gtts wrote %d bytes to %s", len(data), out_path)
