"""Online Vietnamese speech through Google Translate's voice (the gTTS library).

It sounds far more natural than espeak-ng but needs the internet, so it always runs with a
timeout and the synthesizer falls back to espeak when it fails. The endpoint takes at most 100
characters per request; the text is cut here, at sentence ends first, so every request is a
whole sentence or a whole clause and the voice never pauses inside a phrase. Google answers
HTTP 429 when a commune sends too much too fast: that answer, and only that one, is retried
after a short, growing wait. `base_url` points the engine at another host speaking the same
batchexecute protocol (a local test server, a relay).
"""

import email.utils
import io
import logging
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import requests
from gtts import gTTS, gTTSError

from ..errors import TtsError
from .base import Engine

_LOGGER = logging.getLogger(__name__)

BATCHEXECUTE_PATH = "_/TranslateWebserverUi/data/batchexecute"
MAX_CHUNK_CHARS = 100  # what the endpoint takes in one request
HTTP_TOO_MANY_REQUESTS = 429

_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
# A pause reads naturally before these words; between two number words it splits a number.
_PHRASE_STARTERS = frozenset(
    str.split(
        "của về và với cho tại theo trong trên dưới để nhằm từ đến khi nếu nhưng hoặc các những "
        "ngày tháng năm đối thuộc gồm bao như là được đã đang sẽ"
    )
)
_NUMBER_WORDS = frozenset(
    str.split(
        "không một mốt hai ba bốn tư năm lăm sáu bảy tám chín mười mươi linh lẻ trăm nghìn ngàn "
        "triệu tỷ tỉ phẩy chấm"
    )
)
_MARKER_WORDS = 3  # "Hai.", "Mục một.", "Một chấm hai.": a list marker read before its item


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


class _RateLimited(Exception):
    """The endpoint answered 429; `retry_after` is its Retry-After in seconds, when given."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__("HTTP 429 Too Many Requests")
        self.retry_after = retry_after


def _looks_like_mp3(data: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync at the start."""
    return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _retry_after_seconds(response: requests.Response | None) -> float | None:
    """The Retry-After header (seconds or an HTTP date) as seconds from now, if present."""
    value = response.headers.get("Retry-After", "").strip() if response is not None else ""
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _pack(pieces: Iterable[str], limit: int) -> list[str]:
    """Join consecutive pieces with spaces into as few strings of at most `limit` as possible."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if not current:
            current = piece
        elif len(current) + 1 + len(piece) <= limit:
            current = f"{current} {piece}"
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _cut_cost(before: str, after: str) -> int:
    """How bad a pause between two words sounds: cheap before a linking word, dear in a number."""
    if before.lower() in _NUMBER_WORDS and after.lower() in _NUMBER_WORDS:
        return 150  # "hai nghìn không trăm hai | mươi ba" splits one number in two
    return 0 if after.lower() in _PHRASE_STARTERS else 40


def _split_words(clause: str, limit: int) -> list[str]:
    """Cut a clause too long for one request into runs of whole words, each at most `limit`.

    Fewest runs first; then runs of even length and cuts before a linking word ("của", "về",
    "trong"...) and never inside a spoken number, where a pause would break the phrase.
    """
    words = clause.split()
    for word in words:
        if len(word) > limit:
            raise TtsError(f"gTTS cannot send a word of {len(word)} characters: {word[:30]}…")
    # best[i]: (cost, start of the last run) of the best split of words[:i]
    best: list[tuple[float, int]] = [(0.0, 0)]
    for end in range(1, len(words) + 1):
        options = []
        for start in range(end - 1, -1, -1):
            length = len(" ".join(words[start:end]))
            if length > limit:
                break
            cut = _cut_cost(words[start - 1], words[start]) if start else 0
            options.append((best[start][0] + 1000 + ((limit - length) / 10) ** 2 + cut, start))
        best.append(min(options))
    runs: list[str] = []
    end = len(words)
    while end:
        start = best[end][1]
        runs.append(" ".join(words[start:end]))
        end = start
    return runs[::-1]


def split_chunks(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Cut spoken text into pieces of at most `limit` characters for the endpoint.

    Cuts fall at sentence ends (and line ends: each normalized line is one block, whose list
    marker "Hai." stays with its first sentence); a sentence longer than `limit` is cut after
    commas, semicolons and colons, and a clause still longer between words (see _split_words),
    never inside a word. Short neighbours are joined again, so a chunk holds as many whole
    sentences as fit and the number of requests stays low.
    """
    pieces: list[str] = []
    for line in text.splitlines():
        sentences = _SENTENCE_BREAK.split(line.strip())
        if len(sentences) > 1 and len(sentences[0].split()) <= _MARKER_WORDS:
            sentences[:2] = [f"{sentences[0]} {sentences[1]}"]  # the marker stays with its item
        for sentence in sentences:
            if not any(char.isalnum() for char in sentence):
                continue
            if len(sentence) <= limit:
                pieces.append(sentence)
                continue
            for clause in _CLAUSE_BREAK.split(sentence):
                if len(clause) <= limit:
                    pieces.append(clause)
                else:
                    pieces.extend(_split_words(clause, limit))
    return _pack(pieces, limit)


class GttsEngine(Engine):
    """gTTS (lang "vi" by default), writes MP3: one request per chunk, the answers concatenated.

    `retries` extra attempts are made for a chunk answered with HTTP 429, waiting `backoff`,
    then twice as long each time (0.5 s, 1 s, 2 s by default) or as long as Retry-After asks,
    while the waits of one synthesis stay under `retry_budget` seconds. Any other failure is
    raised at once as TtsError, so the synthesizer falls back to espeak.
    """

    name: ClassVar[str] = "gtts"
    output_format: ClassVar[str] = "mp3"

    def __init__(
        self,
        lang: str = "vi",
        timeout: float = 10.0,
        base_url: str | None = None,
        tld: str = "com",
        slow: bool = False,
        retries: int = 3,
        backoff: float = 0.5,
        retry_budget: float = 10.0,
    ) -> None:
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise TtsError(f"gtts timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
            raise TtsError(f"gtts retries must be an integer from 0 to 10, got {retries!r}")
        for label, value in (("backoff", backoff), ("retry_budget", retry_budget)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise TtsError(f"gtts {label} must be a number of seconds >= 0, got {value!r}")
        self.lang = lang
        self.timeout = float(timeout)
        self.base_url = base_url
        self.tld = tld
        self.slow = slow
        self.retries = retries
        self.backoff = float(backoff)
        self.retry_budget = float(retry_budget)

    def cache_options(self) -> Mapping[str, object]:
        # The host (tld, base_url), the timeout and the retry policy do not change the voice.
        return {"lang": self.lang, "slow": self.slow}

    def synthesize(self, text: str, out_path: Path) -> None:
        chunks = split_chunks(text)
        if not chunks:
            raise TtsError("gTTS got no text to speak")
        deadline = time.monotonic() + self.retry_budget
        audio = [self._chunk_with_retries(chunk, deadline) for chunk in chunks]
        data = b"".join(audio)
        out_path.write_bytes(data)
        _LOGGER.debug("gtts wrote %d bytes (%d chunks) to %s", len(data), len(chunks), out_path)

    def _chunk_with_retries(self, chunk: str, deadline: float) -> bytes:
        """One chunk's MP3; 429 answers are retried with exponential backoff, within bounds."""
        for attempt in range(self.retries + 1):
            try:
                return self._chunk(chunk)
            except _RateLimited as limited:
                if attempt == self.retries:
                    break
                delay = self.backoff * 2**attempt
                if limited.retry_after is not None:
                    delay = max(delay, limited.retry_after)
                if time.monotonic() + delay > deadline:
                    raise TtsError(
                        f"gTTS failed: rate-limited (HTTP 429); a retry in {delay:.1f} s would "
                        f"exceed the {self.retry_budget:.1f} s retry budget"
                    ) from limited
                _LOGGER.info(
                    "gTTS rate-limited (HTTP 429), retry %d of %d in %.1f s", attempt + 1,
                    self.retries, delay,
                )  # fmt: skip
                time.sleep(delay)
        raise TtsError(
            f"gTTS failed: rate-limited (HTTP 429), still after {self.retries + 1} attempts"
        )

    def _chunk(self, chunk: str) -> bytes:
        """Send one chunk of at most 100 characters; its MP3 bytes."""
        buffer = io.BytesIO()
        try:
            speech = _GTTS(
                chunk, self.base_url, tld=self.tld, lang=self.lang, slow=self.slow,
                timeout=self.timeout, pre_processor_funcs=[],
            )  # fmt: skip
            speech.write_to_fp(buffer)
        except gTTSError as exc:
            response = exc.rsp
            if response is not None and response.status_code == HTTP_TOO_MANY_REQUESTS:
                raise _RateLimited(_retry_after_seconds(response)) from exc
            # gTTS hides the requests error (timeout, refused) behind "Failed to connect".
            cause = exc.__context__
            detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            raise TtsError(f"gTTS failed: {exc}{detail}") from exc
        except (AssertionError, ValueError, requests.RequestException) as exc:
            raise TtsError(f"gTTS failed: {type(exc).__name__}: {exc}") from exc
        data = buffer.getvalue()
        if not _looks_like_mp3(data):
            raise TtsError(f"gTTS returned {len(data)} bytes that are not MP3 audio")
        return data
