"""One play of one item, in its own thread: wait for the exact start, play, say how it ended.

All receivers of a zone must start together, so the scheduler launches a `Run` a moment before
the item's start and the run waits coarsely, then fine-waits the last `FINE_WAIT_S` in short
sleeps: the start lands within about a millisecond of the target on an idle Pi. At the start the
run's thread does the start only: it records the moment audio really starts (`started_at`, for
the `started` event) and launches the player. Waking the scheduler, which reports and persists,
is put off until no start of the process is imminent (`devices.starts`): a start never waits on
reporting, logging or disk writes, its own or (in `loa fleet`) another receiver's.
A player that can prepare (`devices.players.Preparing`: mpg123 loaded and paused) does so when
the run begins, before these waits, so its start-up does not land after the start either.

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
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from devices.cache import MediaCache
from devices.players import PlayContext, Player, PlayerError, Preparing
from devices.starts import START_WINDOW, Imminent
from devices.timeline import Item
from wire.protocol import ContentType

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

FINE_WAIT_S = 0.02
IMMINENT_S = 0.05  # a run counts as imminent this long before its start (`devices.starts`)
_COARSE_MAX_S = 1.0  # re-read the clock at least every second (NTP may step it)
_FINE_SLEEP_S = 0.0002
# A live broadcast's stream (`relay_live`): how long a receiver keeps trying to open one that is
# not up yet or broke, how often, and how long one must have played to count as heard.
LIVE_RETRY_S = 10.0
LIVE_RETRY_PAUSE_S = 0.5
LIVE_HEARD_S = 1.0


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


def wait_until(moment: float, cancel: threading.Event, *, precise: bool = True) -> bool:
    """Sleep until the epoch time `moment`; False if `cancel` was set meanwhile.

    `precise` polls the last `FINE_WAIT_S` in short sleeps rather than ending on one timed wait:
    as precise alone (~0.15 ms late here), and when many receivers of one process (`loa fleet`)
    wait for one moment, threads already awake and polling take their turns at the GIL sooner
    than threads all woken at the same instant (measured: 200 threads in 4 processes on 2 cores
    spread by ~2.8 ms polling, ~3.3 ms with one timed wait). Without it, the wait may end a
    fraction of a millisecond late.
    """
    fine = FINE_WAIT_S if precise else 0.0
    while True:
        left = moment - time.time()
        if left <= fine:
            break
        if cancel.wait(min(left - fine, _COARSE_MAX_S)):
            return False
    while time.time() < moment:
        if cancel.is_set():
            return False
        time.sleep(_FINE_SLEEP_S)
    return not cancel.is_set()


def execute(
    run: Run, device_id: str, cache: MediaCache, player: Player, wake: Callable[[], None]
) -> None:
    """The body of a run's thread; always ends with `run.outcome` set and `wake()` called.

    From `IMMINENT_S` before its start until its player has launched the sound, the run counts as
    imminent in `START_WINDOW`; `wake()` is always handed to the window, never called here, so
    the scheduler's reporting runs once the process's starts are made, never ahead of one.
    """
    item, body = run.item, run.item.body
    start: Imminent | None = None
    context = PlayContext(  # ready before the start, which then does only the start
        device_id=device_id,
        command_id=item.command_id,
        broadcast_id=body.broadcast_id,
        sha256=body.media_sha256,
        priority=body.priority.value,
        title=body.title,
        item_id=body.item_id,
        cancel=run.cancel,
    )
    preparing = player if isinstance(player, Preparing) else None

    def release() -> None:
        """Drop a prepared, unplayed file before the outcome lets the scheduler start the next
        run: the next player must find the audio device free."""
        if preparing is not None:
            preparing.release(context)  # nothing if it was played

    try:
        path: Path | None = None
        if body.content is ContentType.MEDIA:
            path = cache.get(body.media_sha256)  # re-verified: SD cards do corrupt data
            if path is None:
                run._end(Outcome.MISSING)
                return
        elif body.live and body.media_sha256:
            path = cache.get(body.media_sha256)  # the chime: without it, straight to the voice
            if path is None:
                _LOGGER.warning("%s: %s starts without its chime", device_id, item.describe())
        if path is not None and preparing is not None:
            preparing.prepare(path, context)  # the player's start-up happens before the start
        if not wait_until(run.start_at - IMMINENT_S, run.cancel, precise=False):
            release()
            run._end(Outcome.CUT)
            return
        start = START_WINDOW.imminent(run.start_at)
        context = replace(context, on_start=start.made)
        if not wait_until(run.start_at, run.cancel):
            release()
            run._end(Outcome.CUT)
            return
        with run.lock:
            cut = run.cancel.is_set()
            if not cut:
                run.started_at = time.time()
        if cut:  # cut at the last moment: `cut()` sees the cancel set, not the outcome
            release()
            run._end(Outcome.CUT)
            return
        START_WINDOW.defer(wake)  # the scheduler reports `started` and `playing`
        for index in range(body.repeat):
            if run.cancel.is_set():
                break
            if index:
                context = replace(context, repeat_index=index)
            if body.live:
                if path is not None:
                    player.play(path, context)  # the chime, in step on every receiver
                if not run.cancel.is_set():
                    relay_live(player, body.relay_url, body.duration_s, context)
            elif path is not None:
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
        if start is not None:
            start.dropped()  # nothing if the player launched the sound
        release()  # after an unexpected error; else nothing left
        START_WINDOW.defer(wake)


def relay_live(
    player: Player,
    url: str,
    duration_s: float,
    context: PlayContext,
    retry_s: float = LIVE_RETRY_S,
) -> None:
    """A live broadcast's stream for `duration_s` at most: a stream that is not up yet or
    breaks is opened again every `LIVE_RETRY_PAUSE_S` for `retry_s`, then the play fails; once
    heard, a stream the server refuses (401, 403: the broadcast has ended) ends the play."""
    deadline = time.monotonic() + duration_s
    heard = False
    trouble_since: float | None = None
    problem = "the live stream never opened"
    while not context.cancel.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        began = time.monotonic()
        try:
            player.relay(url, remaining, context)
        except PlayerError as exc:
            status = getattr(exc.__cause__, "status", None)
            if status in (401, 403):
                if heard:
                    return  # refused now: the broadcast ended on the server
                raise PlayerError(f"the live stream refused this receiver ({status})") from exc
            problem = str(exc)
        else:
            heard = heard or time.monotonic() - began > LIVE_HEARD_S
            problem = "the live stream broke"
        if context.cancel.is_set() or deadline - time.monotonic() <= 0:
            return
        now = time.monotonic()
        if time.monotonic() - began > LIVE_HEARD_S:
            trouble_since = now  # it played a while: a fresh break, a fresh retry window
        trouble_since = trouble_since or now
        if now - trouble_since >= retry_s:
            raise PlayerError(f"{problem}; gave up after {retry_s:g} s")
        _LOGGER.info("%s: %s; trying again", context.device_id, problem)
        context.cancel.wait(LIVE_RETRY_PAUSE_S)


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
