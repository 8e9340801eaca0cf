"""One scheduler per data directory, whatever runs the web app.

Several processes may serve one data directory: web workers, the dev reloader's two processes,
a CLI command. Exactly one of them must fire schedules, plan runs and publish manifests, or a
run would be recorded and announced more than once. An exclusive `flock` on
`<data>/scheduler.lock` decides: the process holding it leads; the others serve web and API
only and retry every few seconds, so one of them takes over when the leader exits (the kernel
drops the lock of a dead process, even one killed with SIGKILL).

`flock` locks belong to an open file description, so two services in one process exclude each
other too (tests use that).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

_LOGGER = logging.getLogger(__name__)


class SchedulerLock:
    """A non-blocking exclusive lock on a file; `acquire()` says whether this process leads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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


class Leadership:
    """A thread that keeps trying the lock; once held, it calls `on_elected` once and then
    `on_tick` every `interval_s` (the leader's chance to see other processes' changes)."""

    def __init__(
        self,
        lock: SchedulerLock,
        interval_s: float,
        on_elected: Callable[[], None],
        on_tick: Callable[[], None],
    ) -> None:
        self.lock = lock
        self.interval_s = interval_s
        self._on_elected = on_elected
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._elected = threading.Event()

    @property
    def leading(self) -> bool:
        return self._elected.is_set()

    def start(self) -> None:
        """Try once now (a lone server leads from its first second), then keep trying."""
        self._try_lead()
        if not self._elected.is_set():
            _LOGGER.info(
                "another process holds %s: this one serves web and API and stands by",
                self.lock.path,
            )
        self._thread = threading.Thread(target=self._run, name="loa-leadership", daemon=True)
        self._thread.start()

    def stop_watching(self) -> None:
        """No more ticks or takeover attempts (the lock stays held until `release()`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def release(self) -> None:
        """Step down: another process may take over within its retry interval."""
        if self._elected.is_set():
            _LOGGER.info("this process (pid %d) stops running the scheduler", os.getpid())
        self._elected.clear()
        self.lock.release()

    def _try_lead(self) -> None:
        if self._elected.is_set() or not self.lock.acquire():
            return
        _LOGGER.info("this process (pid %d) runs the scheduler (%s)", os.getpid(), self.lock.path)
        self._elected.set()
        try:
            self._on_elected()
        except Exception:
            _LOGGER.exception("starting the scheduler failed")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self._elected.is_set():
                self._try_lead()
                continue
            try:
                self._on_tick()
            except Exception:
                _LOGGER.exception("scheduler housekeeping failed")
