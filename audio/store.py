"""Content-addressed media store: every MP3 lives under its own sha256.

Why: a play command carries ``media_sha256`` and receivers verify the download against it, so the
hash is the name; identical renders are stored once; a file can never be half-written because it
is written to a temporary file, fsynced and renamed into place (readers see nothing or all of it).
Layout: ``<root>/<sha[:2]>/<sha>.mp3`` (two-character fan-out keeps directories small).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import BinaryIO

from audio.errors import AudioError, MediaNotFoundError
from audio.mp3 import probe_duration_s
from wire.files import atomic_output, write_atomic

_LOGGER = logging.getLogger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
SUFFIX = ".mp3"
TMP_PREFIX = ".incoming-"
TMP_SUFFIX = ".tmp"
FILE_MODE = 0o644  # the web server (or a reverse proxy) must be able to read media
_CHUNK = 1 << 20
MAX_REMEMBERED_DURATIONS = 50_000  # a province's year of bulletins, about 1 MB


class MediaStore:
    """Media files named by the sha256 of their bytes, under one root directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._durations: dict[str, float] = {}
        self._durations_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MediaStore({str(self.root)!r})"

    @staticmethod
    def is_valid_sha(sha: object) -> bool:
        """True for exactly 64 lowercase hex characters (what put_* return)."""
        return isinstance(sha, str) and _SHA256_HEX.fullmatch(sha) is not None

    def path(self, sha: str) -> Path:
        """Where the media with this sha256 is (or would be) stored.

        Raises AudioError for anything but 64 lowercase hex characters, so that a name taken
        from a URL can never point outside the store. A store that is the cache of another
        (`broadcast.store.media`) fetches the file here first.
        """
        return self._file(sha)

    def _file(self, sha: str) -> Path:
        """The file's place in this directory, whatever it holds (`path` without fetching)."""
        if not self.is_valid_sha(sha):
            raise AudioError(f"not a sha256 hex digest: {sha!r}")
        return self.root / sha[:2] / f"{sha}{SUFFIX}"

    def duration_s(self, sha: str) -> float | None:
        """The stored media's playing time, or None while it is absent (AudioError for a
        malformed sha or a file that is not MP3). Measured once per sha256: the file never
        changes, and the calendar and reports ask for it per broadcast on every page (reading
        every frame header of each costs milliseconds)."""
        with self._durations_lock:
            known = self._durations.get(sha)
        if known is not None:
            return known
        path = self.path(sha)
        if not path.is_file():
            return None  # may arrive later: not remembered
        seconds = probe_duration_s(path)
        with self._durations_lock:
            if len(self._durations) >= MAX_REMEMBERED_DURATIONS:
                self._durations.clear()
            self._durations[sha] = seconds
        return seconds

    def exists(self, sha: str) -> bool:
        """True if the store holds this media (AudioError for a malformed sha)."""
        return self._file(sha).is_file()

    def open(self, sha: str) -> BinaryIO:
        """Open stored media for reading; MediaNotFoundError (also FileNotFoundError) if absent."""
        path = self.path(sha)
        try:
            return path.open("rb")
        except FileNotFoundError as exc:
            raise MediaNotFoundError(f"no media {sha} in {self.root}") from exc

    def put_bytes(self, data: bytes | bytearray | memoryview) -> str:
        """Store data atomically under its sha256 and return the hash; storing twice is a no-op."""
        data = bytes(data)
        if not data:
            raise AudioError("refusing to store empty media")
        sha = hashlib.sha256(data).hexdigest()
        dest = self._file(sha)
        if self._holds(dest, len(data)):
            _LOGGER.debug("media %s already stored", sha)
            return sha
        try:
            write_atomic(
                dest,
                data,
                mode=FILE_MODE,
                fsync=True,
                fsync_directory=True,
                prefix=TMP_PREFIX,
                suffix=TMP_SUFFIX,
            )
        except OSError as exc:
            raise AudioError(f"cannot store media {sha} in {self.root}: {exc}") from exc
        _LOGGER.info("stored media %s (%d bytes)", sha, len(data))
        return sha

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Copy a file into the store, hashing while copying (one read, constant memory)."""
        source = Path(path)
        digest = hashlib.sha256()
        size = 0
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with (
                source.open("rb") as reader,
                atomic_output(
                    None,
                    directory=self.root,
                    mode=FILE_MODE,
                    fsync=True,
                    fsync_directory=True,
                    prefix=TMP_PREFIX,
                    suffix=TMP_SUFFIX,
                ) as output,
            ):
                with output.path.open("wb") as writer:
                    while chunk := reader.read(_CHUNK):
                        digest.update(chunk)
                        writer.write(chunk)
                        size += len(chunk)
                if size == 0:
                    raise AudioError(f"refusing to store empty media file {source}")
                sha = digest.hexdigest()
                if self._holds(self._file(sha), size):
                    output.discard()
                    _LOGGER.debug("media %s already stored", sha)
                    return sha
                output.commit(self._file(sha))
        except FileNotFoundError as exc:
            raise AudioError(f"media file not found: {source}") from exc
        except OSError as exc:
            raise AudioError(f"cannot store media file {source} in {self.root}: {exc}") from exc
        _LOGGER.info("stored media %s (%d bytes) from %s", sha, size, source)
        return sha

    @staticmethod
    def _holds(dest: Path, size: int) -> bool:
        """An existing file of the right size is the same content (its name is its hash)."""
        try:
            return dest.stat().st_size == size
        except FileNotFoundError:
            return False
