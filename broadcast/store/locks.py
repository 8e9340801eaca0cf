"""Locks that several server processes share: who runs the scheduler, who publishes now.

Two kinds, chosen by the database (`process_lock`):

* `FileLock`: an exclusive `flock` on a file in the data directory. Enough when every process
  runs on one machine, which is always the case with SQLite. The kernel drops the lock of a dead
  process, even one killed with SIGKILL. `flock` locks belong to an open file description, so two
  services in one process exclude each other too (tests use that).
* `AdvisoryLock`: a PostgreSQL session-level advisory lock, held on a connection of its own.
  Web workers on several hosts share one database, so the lock lives there; PostgreSQL drops it
  when the holder's connection ends (a crashed host, a killed process), and `alive()` tells the
  holder when its connection, and so its lock, is gone.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

_LOGGER = logging.getLogger(__name__)


class ProcessLock(Protocol):
    """An exclusive lock across processes; `acquire(blocking=False)` says whether we hold it."""

    description: str

    def acquire(self, blocking: bool = False) -> bool: ...

    def release(self) -> None: ...

    def alive(self) -> bool:
        """False once a held lock may have been lost behind our back (a dropped connection)."""
        ...


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def alive(self) -> bool:
        return True


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (PostgreSQL advisory locks are keyed by bigint)."""
    return int.from_bytes(hashlib.sha256(f"loa:{name}".encode()).digest()[:8], "big", signed=True)


class AdvisoryLock:
    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self.key = advisory_key(name)
        self.description = f"PostgreSQL advisory lock {name!r} ({self.key})"
        self._connection: Connection | None = None

    def acquire(self, blocking: bool = False) -> bool:
        if self._connection is not None:
            return True
        function = "pg_advisory_lock" if blocking else "pg_try_advisory_lock"
        connection = self._engine.connect()
        try:
            got = connection.execute(text(f"SELECT {function}(:key)"), {"key": self.key}).scalar()
            connection.commit()
        except SQLAlchemyError:
            connection.invalidate()
            connection.close()
            raise
        if blocking or got:
            self._connection = connection
            return True
        connection.close()
        return False

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            connection.commit()
            connection.close()
        except SQLAlchemyError:
            # the connection is gone, and with it the lock: never hand it back to the pool
            _LOGGER.warning("%s: connection lost while releasing", self.description)
            connection.invalidate()
            connection.close()

    def alive(self) -> bool:
        connection = self._connection
        if connection is None:
            return False
        try:
            connection.execute(text("SELECT 1")).scalar()
            connection.commit()
            return True
        except SQLAlchemyError as exc:
            _LOGGER.error("%s: its connection failed (%s): the lock is lost", self.description, exc)
            self._connection = None
            connection.invalidate()
            connection.close()
            return False


def process_lock(engine: Engine, name: str, path: Path) -> ProcessLock:
    """The lock `name` for this database: advisory on PostgreSQL, otherwise a file at `path`."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name)
    return FileLock(path)
