"""Prefetching: the receiver downloads what it will play long before it plays it.

Over a 3G link a download can take minutes and the link can be gone exactly when an item is due,
so media is fetched as soon as an item is known (a play command, every item of the manifest),
soonest first, in a thread of its own so neither MQTT keepalives nor playback wait for it.
Every file goes through `MediaCache.fetch` (sha256 verified before an atomic rename), so a
download cut by a power failure leaves only a `.part-` file that the next start deletes and a
half file is never played. A failed download is retried with backoff (1 s doubling to 30 s); the
scheduler decides what a failure means for an item (a permanent one fails it once it is due).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from devices.cache import CacheError, FetchCancelledError, MediaCache

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

RETRY_MAX_S = 30.0
IDLE_WAIT_S = 30.0
_JOIN_TIMEOUT_S = 5.0


class Prefetcher:
    """Downloads `wanted()` ((sha256, url) pairs, soonest first) into the cache, one at a time."""

    def __init__(
        self,
        device_id: str,
        cache: MediaCache,
        http_timeout_s: float,
        *,
        wanted: Callable[[], list[tuple[str, str]]],
        kept: Callable[[], set[str]],
        on_ready: Callable[[str, bool], None],
        on_failed: Callable[[str, CacheError], None],
        on_busy: Callable[[], None],
    ) -> None:
        """The callbacks run in the prefetch thread; `kept()` is what eviction must spare."""
        self.device_id = device_id
        self._cache = cache
        self._http_timeout_s = http_timeout_s
        self._wanted = wanted
        self._kept = kept
        self._on_ready = on_ready
        self._on_failed = on_failed
        self._on_busy = on_busy
        self._wake = threading.Event()
        self._cancel = threading.Event()
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self.busy = False  # downloading, with more to come: the receiver's `fetching` state

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"loa-prefetch-{self.device_id}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """Something new may be wanted: look again now."""
        self._wake.set()

    def close(self) -> None:
        self._cancel.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT_S)

    def _loop(self) -> None:
        while not self._cancel.is_set():
            try:
                timeout = self._pass()
            except Exception:
                _LOGGER.exception("%s: prefetch pass failed unexpectedly", self.device_id)
                timeout = RETRY_MAX_S
            if timeout is None:
                continue  # fetched one: look at the (changed) list again at once
            self._wake.wait(timeout)
            self._wake.clear()

    def _pass(self) -> float | None:
        """Fetch the first wanted file not in backoff; else how long to sleep."""
        self._wake.clear()
        now = time.monotonic()
        wanted = self._wanted()
        known = {sha for sha, _ in wanted}
        for stale in [sha for sha in self._retry_at if sha not in known]:
            self._retry_at.pop(stale, None)
            self._failures.pop(stale, None)
        for sha, url in wanted:
            if self._retry_at.get(sha, 0.0) <= now:
                self._fetch(sha, url)
                return None
        self._set_busy(False)
        waits = [at - now for at in self._retry_at.values()]
        return max(0.05, min(waits)) if waits else IDLE_WAIT_S

    def _fetch(self, sha: str, url: str) -> None:
        try:
            if self._cache.get(sha) is not None:  # verified: SD cards do corrupt data
                self._ready(sha, downloaded=False)
                return
            self._set_busy(True)
            self._cache.pin(self._kept())
            _path, downloaded = self._cache.fetch(url, sha, self._http_timeout_s, self._cancel)
        except FetchCancelledError:
            return
        except CacheError as exc:
            self._failed(sha, url, exc)
        except OSError as exc:
            self._failed(sha, url, CacheError(f"cache: {exc.strerror or exc}"))
        else:
            if downloaded:
                # which server: with several serving one database, any of them may answer
                where = urlsplit(url).netloc
                _LOGGER.info("%s: fetched %s… from %s", self.device_id, sha[:12], where)
            self._ready(sha, downloaded)

    def _ready(self, sha: str, downloaded: bool) -> None:
        self._retry_at.pop(sha, None)
        self._failures.pop(sha, None)
        self._on_ready(sha, downloaded)

    def _set_busy(self, busy: bool) -> None:
        if busy != self.busy:
            self.busy = busy
            self._on_busy()

    def _failed(self, sha: str, url: str, exc: CacheError) -> None:
        failures = self._failures.get(sha, 0)
        self._failures[sha] = failures + 1
        delay = min(RETRY_MAX_S, 2.0**failures)
        self._retry_at[sha] = time.monotonic() + delay
        _LOGGER.warning(
            "%s: fetching %s… from %s failed: %s; retrying in %.0f s",
            self.device_id,
            sha[:12],
            url,
            exc.detail,
            delay,
        )
        self._on_failed(sha, exc)
