"""Receivers' answer-back (states and events), written to the database in batches.

The MQTT network thread must never wait for the database: a commune-wide emergency brings
hundreds of events within a second, and at one transaction each the server falls behind, the
broker queues for it and finally drops (mosquitto keeps a bounded queue per client). So the
dispatcher's callbacks only enqueue, and one writer thread applies everything waiting, in
arrival order, in one transaction. A batch that fails is applied again one answer at a time, so
one bad answer costs only itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wire.protocol import DeviceEvent, DeviceStatus

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    """A message on a receiver's state or event topic that was refused (malformed, or
    claiming another device): counted per sender in the database (`loa_answers_rejected_total`)."""

    device_id: str  # from the topic, which the broker's ACL ties to the sender; "" if unreadable
    reason: str


Answer = DeviceStatus | DeviceEvent | Rejected
ApplyBatch = Callable[[Sequence[Answer]], None]

MAX_BATCH = 500
_STOP = object()


class AnswerBackWriter:
    def __init__(self, apply: ApplyBatch, max_batch: int = MAX_BATCH) -> None:
        self._apply = apply
        self._max_batch = max_batch
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="loa-answerback", daemon=True)
            self._thread.start()

    def put(self, answer: Answer) -> None:
        """Called on the MQTT thread: queue and return at once."""
        with self._lock:
            self._pending += 1
        self._queue.put(answer)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self, timeout_s: float = 15.0) -> None:
        """Write what is queued, then end the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout_s)
        if thread.is_alive():
            _LOGGER.warning("answer-back writer did not finish within %.0f s", timeout_s)
        self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[Answer] = [first]  # type: ignore[list-item]
            stop_after = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop_after = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._write(batch)
            with self._idle:
                self._pending -= len(batch)
                if not self._pending:
                    self._idle.notify_all()
            if stop_after:
                return

    def _write(self, batch: list[Answer]) -> None:
        try:
            self._apply(batch)
            return
        except Exception:
            _LOGGER.exception("writing %d answers in one batch failed; one by one now", len(batch))
        for answer in batch:
            try:
                self._apply([answer])
            except Exception:
                _LOGGER.exception("could not record %r", answer)
