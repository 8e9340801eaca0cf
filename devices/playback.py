"""One play of one item, in its own thread: wait for the exact start, play, say how it ended.

All receivers of a zone must start together, so the scheduler launches a `Run` a moment before
the item's start and the run waits coarsely, then fine-waits the last `FINE_WAIT_S` in short
sleeps: the start lands within about a millisecond of the target on an idle Pi. The moment audio
really starts is recorded (`started_at`) for the `started` event.

A run never touches the programme: it sets `outcome` and wakes the scheduler, which decides what
the outcome means. Cutting a run (preemption, stop, shutdown) is setting its `cancel`, which
every player watches; `lock` makes "has it started?" and "cut it" one atomic step, so a run cut
a moment before its start never starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from devices.cache import MediaCache
from devices.players import PlayContext, Player, PlayerError
from devices.protocol import ContentType
from devices.timeline import Item

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

FINE_WAIT_S = 0.02
_COARSE_MAX_S = 1.0  # re-read the clock at least every second (NTP may step it)
_FINE_SLEEP_S = 0.0002


class Outcome(StrEnum):
    FINISHED = "finished"
    FAILED = "failed"  # `detail` says why
    CUT = "cut"  # `cancel` was set: `reason` says by whom
    MISSING = "missing"  # the cached media vanished or rotted: fetch it again


class CutReason(StrEnum):
    DEFERRED = "deferred"  # not started yet; something more urgent goes first
    PREEMPTED = "preempted"
    STOPPED = "stopped"
    SHUTDOWN = "receiver shutting down"


@dataclass(eq=False)
class Run:
    """The play of `item` starting at `start_at` (epoch seconds)."""

    item: Item
    start_at: float
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reason: CutReason | None = None
    started_at: float | None = None
    outcome: Outcome | None = None
    detail: str = ""
    announced: bool = False  # `started` reported
    thread: threading.Thread | None = None

    def cut(self, reason: CutReason) -> bool:
        """Ask the run to stop; True if this cut audio that had started. No effect on a run
        that already ended or was already cut."""
        with self.lock:
            if self.outcome is not None or self.cancel.is_set():
                return False
            self.reason = reason
            self.cancel.set()
            return self.started_at is not None

    @property
    def started(self) -> bool:
        with self.lock:
            return self.started_at is not None

    def _end(self, outcome: Outcome, detail: str = "") -> None:
        with self.lock:
            self.outcome, self.detail = outcome, detail


def wait_until(moment: float, cancel: threading.Event) -> bool:
    """Sleep until the epoch time `moment`; False if `cancel` was set meanwhile."""
    while True:
        left = moment - time.time()
        if left <= FINE_WAIT_S:
            break
        if cancel.wait(min(left - FINE_WAIT_S, _COARSE_MAX_S)):
            return False
    while time.time() < moment:
        if cancel.is_set():
            return False
        time.sleep(_FINE_SLEEP_S)
    return not cancel.is_set()


def execute(
    run: Run, device_id: str, cache: MediaCache, player: Player, wake: Callable[[], None]
) -> None:
    """The body of a run's thread; always ends with `run.outcome` set and `wake()` called."""
    item, body = run.item, run.item.body
    try:
        path: Path | None = None
        if body.content is ContentType.MEDIA:
            path = cache.get(body.media_sha256)  # re-verified: SD cards do corrupt data
            if path is None:
                run._end(Outcome.MISSING)
                return
        if not wait_until(run.start_at, run.cancel):
            run._end(Outcome.CUT)
            return
        with run.lock:
            if run.cancel.is_set():
                run.outcome = Outcome.CUT
                return
            run.started_at = time.time()
        wake()
        for index in range(body.repeat):
            if run.cancel.is_set():
                break
            context = PlayContext(
                device_id=device_id,
                command_id=item.command_id,
                broadcast_id=body.broadcast_id,
                sha256=body.media_sha256,
                priority=body.priority.value,
                repeat_index=index,
                title=body.title,
                item_id=body.item_id,
                cancel=run.cancel,
            )
            if path is not None:
                player.play(path, context)
            else:
                player.relay(body.relay_url, body.duration_s, context)
        run._end(Outcome.CUT if run.cancel.is_set() else Outcome.FINISHED)
    except PlayerError as exc:
        run._end(Outcome.CUT if run.cancel.is_set() else Outcome.FAILED, str(exc)[:200])
    except Exception as exc:
        _LOGGER.exception("%s: playing %s failed unexpectedly", device_id, item.describe())
        run._end(Outcome.FAILED, f"internal error: {exc}"[:200])
    finally:
        wake()


def launch(
    run: Run, device_id: str, cache: MediaCache, player: Player, wake: Callable[[], None]
) -> None:
    run.thread = threading.Thread(
        target=execute,
        args=(run, device_id, cache, player, wake),
        name=f"loa-play-{device_id}",
        daemon=True,
    )
    run.thread.start()
