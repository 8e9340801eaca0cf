"""One scheduler per database, whatever runs the web app.

Several processes may serve one database: web workers (on one host or several), the dev
reloader's two processes, a CLI command. Exactly one of them must fire schedules, plan runs and
publish manifests, or a run would be recorded and announced more than once. A lock decides
(`broadcast.store.locks`: a file lock beside SQLite, a PostgreSQL advisory lock otherwise): the
process holding it leads; the others serve web and API only and retry every few seconds, so one of
them takes over when the leader exits.

A PostgreSQL lock can be lost while held (the database restarted, the network dropped the
connection, the primary died and a standby is being promoted). The leader checks on every tick;
if its lock is gone it takes it again when it is still free, and otherwise calls `on_lost`:
another process leads now, so this one must stop firing at once (the service ends its process
and its supervisor starts it again as a standby). While the database cannot be reached at all,
nobody can say who holds the lock: the leader pauses (`on_paused`: nothing fires) and keeps
trying; once it reaches a database again (the restarted or promoted server) it either takes the
lock and resumes (`on_resumed`) or finds it held and calls `on_lost`.
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
        on_paused: Callable[[], None] | None = None,
        on_resumed: Callable[[], None] | None = None,
    ) -> None:
        self.lock = lock
        self.interval_s = interval_s
        self._on_elected = on_elected
        self._on_tick = on_tick
        self._on_lost = on_lost
        self._on_paused = on_paused
        self._on_resumed = on_resumed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._elected = threading.Event()
        self._paused = False  # we led, lost the lock with the database, and may take it again

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
            if self._paused:
                if not self._resume():
                    return
                continue
            if not self._elected.is_set():
                self._try_lead()
                continue
            if not self._still_leading():
                return
            if self._paused:
                continue
            try:
                self._on_tick()
            except Exception:
                _LOGGER.exception("scheduler housekeeping failed")

    def _still_leading(self) -> bool:
        """Our lock is alive, or was lost and taken again before anyone else took it, or the
        database cannot be reached (then we pause until it can)."""
        if self.lock.alive():
            return True
        try:
            if self.lock.acquire():
                _LOGGER.warning("%s was lost and taken again: still leading", self.lock.description)
                return True
        except Exception as exc:
            _LOGGER.error(
                "%s is lost and the database cannot be reached (%s): the scheduler pauses"
                " until it can",
                self.lock.description,
                type(exc).__name__,
            )
            self._pause()
            return True
        self._lose()
        return False

    def _pause(self) -> None:
        self._paused = True
        self._elected.clear()
        if self._on_paused is not None:
            try:
                self._on_paused()
            except Exception:
                _LOGGER.exception("pausing the scheduler failed")

    def _resume(self) -> bool:
        """Paused: take the lock again if the database answers; False if another process took
        it meanwhile (`on_lost` was called)."""
        try:
            got = self.lock.acquire()
        except Exception:
            _LOGGER.debug("%s: the database still cannot be reached", self.lock.description)
            return True
        if not got:
            self._paused = False
            self._lose()
            return False
        self._paused = False
        self._elected.set()
        _LOGGER.warning(
            "%s taken again: this process (pid %d) resumes the scheduler",
            self.lock.description,
            os.getpid(),
        )
        if self._on_resumed is not None:
            try:
                self._on_resumed()
            except Exception:
                _LOGGER.exception("resuming the scheduler failed")
        return True

    def _lose(self) -> None:
        _LOGGER.critical("%s is lost: this process stops leading", self.lock.description)
        self._elected.clear()
        if self._on_lost is not None:
            self._on_lost()
