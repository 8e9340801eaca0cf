"""The receiver's media cache: downloaded announcements, verified by sha256, bounded in size.

A receiver on a 3G link must never play a half-downloaded or tampered file, and an SD card must
not fill up. So a download goes into a temporary file in the cache folder, its sha256 is checked
BEFORE the atomic rename, and the least recently used files are evicted when the folder grows
beyond its limit. A cached file is re-hashed before every use: SD cards do corrupt data.
Files the receiver still has to play (its manifest, its queue) are pinned: eviction never takes
them, so the limit only bounds what is merely kept for later.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from devices.http_get import HttpError, iter_body, open_url
from wire.files import atomic_output
from wire.protocol import SHA256_PATTERN

_LOGGER = logging.getLogger(__name__)

_CHUNK = 16 * 1024  # written as it arrives: a cut download leaves its part behind
_SUFFIX = ".mp3"
_TMP_PREFIX = ".part-"


class CacheError(Exception):
    """A fetch that failed; `detail` is short enough for a DeviceEvent.

    `permanent`: retrying the same URL cannot help (wrong bytes, missing file, too large);
    otherwise (refused, timed out, HTTP 5xx) a retry later may succeed.
    """

    def __init__(self, detail: str, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


class FetchCancelledError(CacheError):
    """The download was abandoned because the agent is stopping or the broadcast was stopped."""

    def __init__(self) -> None:
        super().__init__("stopped")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MediaCache:
    """Files named `<sha256>.mp3` under `root`, at most `limit_bytes` in total (LRU eviction).

    Recency is the file's mtime, touched on every use: atime is unreliable on `noatime` mounts.
    """

    def __init__(self, root: Path, limit_bytes: int) -> None:
        self.root = Path(root)
        self.limit_bytes = max(0, int(limit_bytes))
        self._lock = threading.Lock()
        self._pinned: frozenset[str] = frozenset()
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f"{_TMP_PREFIX}*"):
            stale.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path:
        if not SHA256_PATTERN.match(sha256):
            raise CacheError("bad sha256", permanent=True)
        return self.root / f"{sha256}{_SUFFIX}"

    def pin(self, shas: Iterable[str]) -> None:
        """Replace the set of files eviction must keep (what is still to be played)."""
        self._pinned = frozenset(shas)

    def get(self, sha256: str) -> Path | None:
        """The cached file if present and intact (a corrupt copy is deleted), else None."""
        path = self.path(sha256)
        with self._lock:
            if not path.is_file():
                return None
            if file_sha256(path) != sha256:
                _LOGGER.warning("cached %s is corrupt; deleting it", path.name)
                path.unlink(missing_ok=True)
                return None
            os.utime(path)
        return path

    def put_chunks(
        self, sha256: str, chunks: Iterable[bytes], cancel: threading.Event | None = None
    ) -> Path:
        """Write `chunks` to the cache if and only if they hash to `sha256`; return the path."""
        target = self.path(sha256)
        digest = hashlib.sha256()
        size = 0
        with atomic_output(target, fsync=True, prefix=_TMP_PREFIX) as output:
            with output.path.open("wb") as handle:
                for chunk in chunks:
                    if cancel is not None and cancel.is_set():
                        raise FetchCancelledError()
                    size += len(chunk)
                    if self.limit_bytes and size > self.limit_bytes:
                        raise CacheError(
                            f"media exceeds the cache limit of {self.limit_bytes} B",
                            permanent=True,
                        )
                    digest.update(chunk)
                    handle.write(chunk)
            if digest.hexdigest() != sha256:
                raise CacheError("sha256 mismatch", permanent=True)
            output.sync()  # outside the lock: get() and evict() need not wait for the card
            with self._lock:
                output.commit()
        self.evict(keep={sha256})
        return target

    def fetch(
        self, url: str, sha256: str, timeout_s: float, cancel: threading.Event | None = None
    ) -> tuple[Path, bool]:
        """Return (path, downloaded): the cached copy, or a fresh verified download of `url`.

        A 4xx answer is permanent (the file is not there); refused, timed out, 5xx or a cut
        download may succeed later."""
        cached = self.get(sha256)
        if cached is not None:
            return cached, False
        try:
            response = open_url(url, timeout_s)
            with response:
                path = self.put_chunks(sha256, iter_body(response, url, _CHUNK), cancel)
        except HttpError as exc:
            if exc.status is None:
                raise CacheError(f"download failed: {exc}"[:200]) from exc
            raise CacheError(
                f"download failed: HTTP {exc.status} from {exc.host}"[:200],
                permanent=400 <= exc.status < 500,
            ) from exc
        return path, True

    def evict(self, keep: Iterable[str] = ()) -> list[Path]:
        """Delete least recently used files until the total fits the limit; return them.

        Pinned files and `keep` are never deleted, even if they alone exceed the limit."""
        keep_names = {f"{sha}{_SUFFIX}" for sha in (*keep, *self._pinned)}
        removed: list[Path] = []
        with self._lock:
            entries = []
            for path in self.root.glob(f"*{_SUFFIX}"):
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                entries.append((stat.st_mtime_ns, stat.st_size, path))
            total = sum(size for _, size, _ in entries)
            for _, size, path in sorted(entries, key=lambda entry: entry[0]):
                if total <= self.limit_bytes:
                    break
                if path.name in keep_names:
                    continue
                path.unlink(missing_ok=True)
                total -= size
                removed.append(path)
        for path in removed:
            _LOGGER.info("evicted %s from the media cache", path.name)
        return removed

    def total_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.root.glob(f"*{_SUFFIX}"))
