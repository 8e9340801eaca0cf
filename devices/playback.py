"""The play worker's side of a receiver: the job queue, and fetching then playing one job.

Downloads over 3G and playback take seconds to minutes, so they never run in paho's network
thread: accepted play commands become `Job`s in a bounded `JobQueue` (emergencies go to the
head, a stop command withdraws queued jobs) that the agent's worker thread drains one at a time
through `Playback.run`. Each accepted play is answered with `received` (by the agent), then
`fetched`, `started` and exactly one of `finished` or `failed` from here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from devices.cache import CacheError, MediaCache
from devices.players import PlayContext, Player, PlayerError
from devices.protocol import Command, EventKind, PlayBody, ReceiverState

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

STOPPED = "stopped"
SHUTTING_DOWN = "receiver shutting down"

SetState = Callable[[ReceiverState, int | None], Any]
"""Records and publishes the receiver's state (and the broadcast it is busy with)."""


class Report(Protocol):
    """Publishes one answer-back event for a command."""

    def __call__(
        self, command: Command, broadcast_id: int | None, kind: EventKind, detail: str = ""
    ) -> None: ...


@dataclass
class Job:
    """One accepted play command on its way through the worker."""

    command: Command
    body: PlayBody
    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str = STOPPED

    def stop(self, reason: str = STOPPED) -> None:
        if not self.cancel.is_set():
            self.reason = reason
        self.cancel.set()


class JobQueue:
    """A bounded FIFO whose head is reserved for emergencies and whose items can be withdrawn."""

    def __init__(self, limit: int) -> None:
        self._items: deque[Job] = deque()
        self._limit = limit
        self._closed = False
        self._cond = threading.Condition()

    def put(self, job: Job, front: bool = False) -> bool:
        with self._cond:
            if self._closed or len(self._items) >= self._limit:
                return False
            if front:
                self._items.appendleft(job)
            else:
                self._items.append(job)
            self._cond.notify()
            return True

    def get(self) -> Job | None:
        """Block for the next job; None once the queue is closed."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return self._items.popleft()

    def remove(self, predicate: Callable[[Job], bool]) -> list[Job]:
        with self._cond:
            removed = [job for job in self._items if predicate(job)]
            self._items = deque(job for job in self._items if not predicate(job))
            return removed

    def close(self) -> list[Job]:
        """Refuse further jobs and return the ones that will never run."""
        with self._cond:
            self._closed = True
            left = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return left

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class Playback:
    """Fetches a job's media through the verified cache and plays it on the receiver's player."""

    def __init__(
        self, device_id: str, cache: MediaCache, player: Player, http_timeout_s: float
    ) -> None:
        self.device_id = device_id
        self._cache = cache
        self._player = player
        self._http_timeout_s = http_timeout_s
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def run(self, job: Job, set_state: SetState, report: Report) -> None:
        """Fetch, wait for `play_at`, play `repeat` times; every step reported, cancel honoured.

        `set_state` and `report` are the agent's, passed per job: what it publishes is its own.
        """
        command, body = job.command, job.body

        def fail(detail: str) -> None:
            _LOGGER.warning(
                "%s: play %s (broadcast %s) failed: %s",
                self.device_id,
                command.id,
                body.broadcast_id,
                detail,
            )
            report(command, body.broadcast_id, EventKind.FAILED, detail)

        if job.cancel.is_set():
            fail(job.reason)
            return
        set_state(ReceiverState.FETCHING, body.broadcast_id)
        try:
            path, downloaded = self._cache.fetch(
                body.media_url,
                body.media_sha256,
                self._http_timeout_s,
                job.cancel,
                self._http,
            )
        except CacheError as exc:
            fail(job.reason if job.cancel.is_set() else exc.detail)
            return
        except OSError as exc:
            fail(f"cache: {exc.strerror or exc}")
            return
        report(
            command, body.broadcast_id, EventKind.FETCHED, "downloaded" if downloaded else "cached"
        )
        if body.play_at is not None and body.play_at > time.time():
            set_state(ReceiverState.IDLE, None)
            job.cancel.wait(max(0.0, body.play_at - time.time()))
        if job.cancel.is_set():
            fail(job.reason)
            return
        set_state(ReceiverState.PLAYING, body.broadcast_id)
        report(command, body.broadcast_id, EventKind.STARTED)
        try:
            for index in range(body.repeat):
                if job.cancel.is_set():
                    break
                self._player.play(
                    path,
                    PlayContext(
                        device_id=self.device_id,
                        command_id=command.id,
                        broadcast_id=body.broadcast_id,
                        sha256=body.media_sha256,
                        priority=body.priority.value,
                        repeat_index=index,
                        title=body.title,
                        cancel=job.cancel,
                    ),
                )
        except PlayerError as exc:
            fail(str(exc)[:200])
            return
        if job.cancel.is_set():
            fail(job.reason)
            return
        _LOGGER.info(
            "%s: played broadcast %s (%d×)", self.device_id, body.broadcast_id, body.repeat
        )
        report(command, body.broadcast_id, EventKind.FINISHED)
