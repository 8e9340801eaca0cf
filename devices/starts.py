"""The starts this process is about to make, and the work that waits until they are made.

Every receiver of a zone must start at the same instant, so nothing may run ahead of a start that
is due: not the receiver's own reporting (`started`, the `playing` state), logging or disk writes,
and in `loa fleet` (many receivers in one process, one GIL) not another receiver's either. A run
counts its start as imminent a moment ahead (`StartWindow.imminent`) until its player has
launched the sound; work that can wait is handed to `defer` (run on the window's own thread) or
waits in `quiet`, and goes ahead once the window is open again: no start imminent, and
`SETTLE_S` past the moment of the last one made. It never waits more than `MAX_DEFER_S`. On a Pi,
with one receiver, that is right after its own start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

MAX_DEFER_S = 0.25  # reports are late by at most this much, even if starts keep coming
# The window stays closed this long after a start's moment, even once its sound is launched: the
# other receivers of the zone start at that same moment, and in `loa fleet` many of them are in
# other processes on the same cores, which this process cannot see.
SETTLE_S = 0.02


class Imminent:
    """One start counted as imminent; `made` once its sound is launched, else `dropped`."""

    def __init__(self, window: StartWindow, until: float) -> None:
        self._window = window
        self.until = until  # monotonic: `SETTLE_S` after the start's moment

    def made(self) -> None:
        """The sound is launched (the player calls this); calling it again does nothing."""
        self._window._end(self, made=True)

    def dropped(self) -> None:
        """The start will not happen (cut, failed); nothing if it was made."""
        self._window._end(self, made=False)


class StartWindow:
    """Counts the imminent starts of the process; runs the work put off until they are made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = threading.Condition(self._lock)  # for `quiet`
        self._work = threading.Condition(self._lock)  # for the deferred work's thread
        self._imminent: set[Imminent] = set()
        self._made_until = 0.0  # monotonic: `SETTLE_S` after the latest made start's moment
        self._until = 0.0  # the same, over the made starts and the imminent ones
        self._deferred: deque[tuple[float, Callable[[], object]]] = deque()
        self._thread: threading.Thread | None = None

    def imminent(self, moment: float) -> Imminent:
        """Count the start due at the epoch time `moment` as imminent."""
        start = Imminent(self, time.monotonic() + (moment - time.time()) + SETTLE_S)
        with self._lock:
            self._imminent.add(start)
            self._until = max(self._until, start.until)
        return start

    def quiet(self, timeout: float = MAX_DEFER_S) -> bool:
        """Block until the window is open (at most `timeout`); False if it is still closed."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                closed = self._closed_for()
                if closed is not None and closed <= 0:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._open.wait(left if closed is None else min(closed, left))

    def defer(self, work: Callable[[], object]) -> None:
        """Run `work` on the window's thread, in order, once the window is open (at most
        `MAX_DEFER_S` from now). The caller never runs it: it may be the very thread that has a
        sound to launch next."""
        with self._lock:
            self._deferred.append((time.monotonic() + MAX_DEFER_S, work))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run_deferred, name="loa-start-window", daemon=True
                )
                self._thread.start()  # it waits for this lock before looking at the queue
            elif len(self._deferred) == 1:
                self._work.notify()  # else it already waits no longer than for the first one

    def _end(self, start: Imminent, *, made: bool) -> None:
        with self._lock:
            if start not in self._imminent:
                return
            self._imminent.discard(start)
            if made:
                self._made_until = max(self._made_until, start.until)
            else:
                self._until = max([self._made_until, *(s.until for s in self._imminent)])
            # Waiters sleep until the latest `until` they saw; wake them only if the window
            # may open sooner than that.
            if not made or (not self._imminent and self._made_until <= time.monotonic()):
                self._open.notify_all()
                self._work.notify()

    def _closed_for(self) -> float | None:
        """Seconds the window stays closed at least (callers hold the lock): until `SETTLE_S`
        past the latest moment counted. None: past it, but a start is still not made; its
        `_end` wakes the waiters. Zero or less: open."""
        left = self._until - time.monotonic()
        if left <= 0 and self._imminent:
            return None
        return left

    def _run_deferred(self) -> None:
        while True:
            with self._lock:
                while True:
                    if not self._deferred:
                        self._work.wait()
                        continue
                    closed = self._closed_for()
                    overdue = self._deferred[0][0] - time.monotonic()
                    if (closed is not None and closed <= 0) or overdue <= 0:
                        break
                    self._work.wait(overdue if closed is None else min(closed, overdue))
                batch = [work for _due, work in self._deferred]
                self._deferred.clear()
            for work in batch:
                try:
                    work()
                except Exception:
                    _LOGGER.exception("work deferred past the starts failed")


# One per process: every receiver of a `loa fleet` process shares its GIL, so they share this.
START_WINDOW = StartWindow()
