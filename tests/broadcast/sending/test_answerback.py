"""Answer-back is written off the MQTT thread, in order, in batches; a bad answer costs itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from broadcast.sending.answerback import Answer, AnswerBackWriter
from wire.protocol import DeviceEvent, EventKind


def _event(n: int) -> DeviceEvent:
    return DeviceEvent(f"loa-{n:03d}", "cmd", n, EventKind.RECEIVED, 1_900_000_000.0 + n)


def test_answers_are_written_in_order_in_batches() -> None:
    written: list[list[int]] = []
    gate = threading.Event()

    def apply(batch: Sequence[Answer]) -> None:
        gate.wait(5)  # the first batch waits, so the rest pile up behind it
        written.append([answer.broadcast_id for answer in batch])  # type: ignore[union-attr]

    writer = AnswerBackWriter(apply, max_batch=100)
    writer.start()
    for n in range(250):
        writer.put(_event(n))
    gate.set()
    assert writer.flush(10)
    writer.stop()
    flat = [n for batch in written for n in batch]
    assert flat == list(range(250))
    assert len(written) <= 4 and max(len(batch) for batch in written) <= 100


def test_a_failing_batch_is_retried_one_by_one() -> None:
    written: list[int] = []

    def apply(batch: Sequence[Answer]) -> None:
        ids = [answer.broadcast_id for answer in batch]  # type: ignore[union-attr]
        if 13 in ids:
            raise ValueError("a poisoned answer")
        written.extend(ids)  # type: ignore[arg-type]

    writer = AnswerBackWriter(apply)
    for n in range(20):
        writer.put(_event(n))
    writer.start()
    assert writer.flush(10)
    writer.stop()
    assert written == [n for n in range(20) if n != 13]


def test_stop_writes_what_is_queued_and_flush_times_out_when_stuck() -> None:
    written: list[int] = []
    release = threading.Event()

    def apply(batch: Sequence[Answer]) -> None:
        release.wait(5)
        written.extend(a.broadcast_id for a in batch)  # type: ignore[misc, union-attr]

    writer = AnswerBackWriter(apply)
    writer.start()
    writer.put(_event(1))
    started = time.monotonic()
    assert not writer.flush(0.2)
    assert time.monotonic() - started < 2
    release.set()
    writer.put(_event(2))
    writer.stop()
    assert written == [1, 2]
