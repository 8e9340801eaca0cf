"""One scheduler per database, whatever runs the web app.

Several processes may serve one database: web workers (on one host or several), the dev
reloader's two processes, a CLI command. Exactly one of them must fire schedules, plan runs and
publish manifests, or a run would be recorded and announced more than once. A lock decides
(`broadcast.store.locks`: a file lock beside SQLite, a PostgreSQL advisory lock otherwise): the
process holding it leads; the others serve web and API only and retry every few seconds, so one of
them takes over when the leader exits.

A PostgreSQL lock can be lost while held (the database restarted, the network dropped the
connection). The leader checks on every tick; if its lock is gone it takes it again when it is
still free, and otherwise calls `on_lost`: another process leads now, so this one must stop
firing at once (the service ends its process and its supervisor starts it again as a standby).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from broadcast.store.locks import ProcessLock

_LOGGER = logging.getLogger(__name__)


class Leadership:
    """A thread that keeps trying the lock; once held, it calls `on_elected` once and then
    `on_tick` every `interval_s` (the leader's chance to see other processes' changes)."""

    def __init__(
        self,
        lock: ProcessLock,
        interval_s: float,
        on_elected: Callable[[], None],
        on_tick: Callable[[], None],
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.lock = lock
        self.interval_s = interval_s
        self._on_elected = on_elected
        self._on_tick = on_tick
        self._on_lost = on_lost
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
                self.lock.description,
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
        if self._elected.is_set():
            return
        try:
            if not self.lock.acquire():
                return
        except Exception:
            _LOGGER.exception("trying %s failed; trying again later", self.lock.description)
            return
        _LOGGER.info(
            "this process (pid %d) runs the scheduler (%s)", os.getpid(), self.lock.description
        )
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
            if not self._still_leading():
                return
            try:
                self._on_tick()
            except Exception:
                _LOGGER.exception("scheduler housekeeping failed")

    def _still_leading(self) -> bool:
        """Our lock is alive, or was lost and taken again before anyone else took it."""
        if self.lock.alive():
            return True
        try:
            if self.lock.acquire():
                _LOGGER.warning("%s was lost and taken again: still leading", self.lock.description)
                return True
        except Exception:
            _LOGGER.exception("taking %s again failed", self.lock.description)
        _LOGGER.critical("%s is lost: this process stops leading", self.lock.description)
        self._elected.clear()
        if self._on_lost is not None:
            self._on_lost()
        return False
