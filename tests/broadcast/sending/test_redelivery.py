"""Commands nobody answered are sent again; deliveries nobody will answer are closed."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from service_support import add_devices, broadcast_status, wait_for

from broadcast.settings import RedeliveryPolicy
from broadcast.store.models import Broadcast, Delivery, utcnow
from wire import protocol
from wire.protocol import EventKind

from ..conftest import Leader, ManualClock, start_leader

POLICY = RedeliveryPolicy()
A1, A2 = "loa-a-01", "loa-a-02"


def _announce(leader: Leader, text: str = "Mất điện từ 14 giờ.") -> int:
    broadcast_id = leader.service.announcements.announce(leader.users.officer, text, ["thon-a"])
    wait_for(lambda: broadcast_status(leader.service, broadcast_id) == "dispatched")
    return broadcast_id


def _row(leader: Leader, broadcast_id: int) -> Broadcast:
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        session.expunge(row)
        return row


def _states(leader: Leader, broadcast_id: int) -> dict[str, tuple[str, str]]:
    with leader.service.db.session() as session:
        rows = session.query(Delivery).filter_by(broadcast_id=broadcast_id).all()
        return {d.device_id: (d.state, d.detail) for d in rows}


def _answer(
    leader: Leader, device: str, broadcast_id: int, kind: EventKind, detail: str = ""
) -> None:
    leader.service._on_event(
        protocol.DeviceEvent(device, "cmd", broadcast_id, kind, 1_900_000_000.0, detail)
    )


def _resent(leader: Leader, device: str) -> list[protocol.Command]:
    return [s.command for s in leader.sent.on(protocol.device_command_topic(device))]


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[Leader]:
    """The leader on the test's clock: its periodic sweep (every few seconds of real time)
    sweeps at the moment the test last set, never between the test's simulated ones."""
    started = start_leader(tmp_path / "data", ManualClock(utcnow()))
    yield started
    started.service.stop()


def _sweep(leader: Leader, at: datetime) -> None:
    clock = leader.service.leader.clock
    assert isinstance(clock, ManualClock)
    clock.now = at
    leader.service.leader.redeliver()


def test_an_unanswered_play_is_sent_again_as_it_was(leader: Leader) -> None:
    broadcast_id = _announce(leader)
    [original] = [s.command for s in leader.sent.on(protocol.zone_command_topic("thon-a"))]
    _answer(leader, A1, broadcast_id, EventKind.RECEIVED)
    dispatched_at = _row(leader, broadcast_id).dispatched_at
    assert dispatched_at is not None

    _sweep(leader, dispatched_at + timedelta(seconds=POLICY.first_after_s - 1))
    assert _resent(leader, A2) == []  # not yet: the answer may still be on its way
    _sweep(leader, dispatched_at + timedelta(seconds=POLICY.first_after_s + 1))
    [again] = _resent(leader, A2)
    assert again.body == original.body  # same item, same play_at and deadline
    assert again.id != original.id and again.stream == protocol.device_command_topic(A2)
    assert _resent(leader, A1) == []  # it answered


def _resend_seconds(
    leader: Leader, start: datetime, between: Callable[[int], None] = lambda second: None
) -> list[int]:
    """Sweeps every 2 s over an hour past the first attempt: when A1 was sent the PLAY again
    (seconds after the first attempt was due); `between` runs before each sweep."""
    sent_at: list[int] = []
    for second in range(0, 4000, 2):
        before = len(_resent(leader, A1))
        between(second)
        _sweep(leader, start + timedelta(seconds=POLICY.first_after_s + second))
        if len(_resent(leader, A1)) > before:
            sent_at.append(second)
    return sent_at


def test_resends_back_off_and_stop_after_the_last_attempt(leader: Leader) -> None:
    broadcast_id = _announce(leader)
    start = _row(leader, broadcast_id).dispatched_at
    assert start is not None
    sent_at = _resend_seconds(leader, start)
    assert len(sent_at) == POLICY.max_attempts
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    waits = [min(POLICY.first_after_s * 2**n, POLICY.max_interval_s) for n in range(1, 8)]
    assert all(gap >= wait for gap, wait in zip(gaps, waits, strict=False)), gaps
    assert gaps[-1] < POLICY.max_interval_s + 2  # capped


def test_a_sweep_with_nothing_due_keeps_the_attempt_counts(leader: Leader) -> None:
    """A sweep at a moment when nothing is due yet (how a sweep on the real clock looked from a
    test's simulated hour) must not make the leader forget how often it already tried."""
    broadcast_id = _announce(leader)
    start = _row(leader, broadcast_id).dispatched_at
    assert start is not None
    sent_at = _resend_seconds(leader, start, between=lambda second: _sweep(leader, start))
    assert len(sent_at) == POLICY.max_attempts, sent_at


def test_a_clock_stepped_back_keeps_the_attempt_counts(leader: Leader) -> None:
    """NTP may step the server's clock back, even to before the broadcast was sent: the count
    of attempts survives it and the back-off goes on where it was."""
    broadcast_id = _announce(leader)
    start = _row(leader, broadcast_id).dispatched_at
    assert start is not None
    first = start + timedelta(seconds=POLICY.first_after_s + 1)
    _sweep(leader, first)
    assert len(_resent(leader, A1)) == 1
    _sweep(leader, start - timedelta(hours=1))  # stepped back by NTP
    _sweep(leader, first + timedelta(seconds=1))  # and forward again
    assert len(_resent(leader, A1)) == 1  # still backing off after the first attempt

    def step_back_once_a_minute(second: int) -> None:
        if second % 60 == 0:
            _sweep(leader, start - timedelta(minutes=5))

    sent_at = _resend_seconds(leader, start, between=step_back_once_a_minute)
    assert len(sent_at) == POLICY.max_attempts - 1, sent_at  # the first one was counted


def test_an_answer_starts_the_count_again(leader: Leader) -> None:
    """Every attempt spent on a PLAY nobody received; once the receiver answers, asking it later
    how the item went gets attempts of its own."""
    broadcast_id = _announce(leader)
    start = _row(leader, broadcast_id).dispatched_at
    assert start is not None
    at = start
    for _ in range(1000):  # 2 s steps, well before the delivery would be closed unanswered
        if len(_resent(leader, A1)) == POLICY.max_attempts:
            break
        at += timedelta(seconds=2)
        _sweep(leader, at)
    _sweep(leader, at + timedelta(minutes=10))
    assert len(_resent(leader, A1)) == POLICY.max_attempts  # all spent
    _answer(leader, A1, broadcast_id, EventKind.RECEIVED)
    _sweep(leader, at + timedelta(minutes=10, seconds=2))  # its item's time is long past
    assert len(_resent(leader, A1)) == POLICY.max_attempts + 1


def test_a_receiver_back_online_is_tried_at_once(leader: Leader) -> None:
    broadcast_id = _announce(leader)
    start = _row(leader, broadcast_id).dispatched_at
    assert start is not None
    first = start + timedelta(seconds=POLICY.first_after_s + 1)
    _sweep(leader, first)
    assert len(_resent(leader, A1)) == 1
    _sweep(leader, first + timedelta(seconds=1))
    assert len(_resent(leader, A1)) == 1  # backing off
    leader.service._on_status(
        protocol.DeviceStatus(A1, protocol.ReceiverState.IDLE, "boot-new", 1_900_000_000.0)
    )
    _sweep(leader, first + timedelta(seconds=2))
    assert len(_resent(leader, A1)) == 2
    assert len(_resent(leader, A2)) == 1  # the other one keeps waiting its turn


def test_a_cancelled_broadcast_gets_its_stop_again_never_its_play(leader: Leader) -> None:
    broadcast_id = _announce(leader)
    _answer(leader, A1, broadcast_id, EventKind.STARTED)
    leader.service.announcements.cancel(leader.users.officer, broadcast_id)
    _answer(leader, A1, broadcast_id, EventKind.FAILED, "stopped")  # cut on air
    cancelled_at = _row(leader, broadcast_id).cancelled_at
    assert cancelled_at is not None
    _sweep(leader, cancelled_at + timedelta(seconds=POLICY.first_after_s + 1))
    assert _resent(leader, A1) == []
    [stop] = _resent(leader, A2)
    assert stop.body == protocol.StopBody(broadcast_id=broadcast_id)
    _answer(leader, A2, broadcast_id, EventKind.RECEIVED, "stop")  # it has the STOP now
    assert _states(leader, broadcast_id) == {A1: ("stopped", "stopped"), A2: ("stopped", "stopped")}
    assert broadcast_status(leader.service, broadcast_id) == "cancelled"


def test_deliveries_nobody_answers_are_closed_and_a_late_answer_still_counts(
    leader: Leader,
) -> None:
    broadcast_id = _announce(leader)
    _answer(leader, A1, broadcast_id, EventKind.FINISHED)
    valid_until = _row(leader, broadcast_id).valid_until
    assert valid_until is not None
    _sweep(leader, valid_until + timedelta(seconds=POLICY.answer_window_s - 1))
    assert _states(leader, broadcast_id)[A2][0] == "queued"
    _sweep(leader, valid_until + timedelta(seconds=POLICY.answer_window_s + 1))
    assert _states(leader, broadcast_id) == {A1: ("finished", ""), A2: ("failed", "no answer")}
    assert broadcast_status(leader.service, broadcast_id) == "partial"
    _answer(leader, A2, broadcast_id, EventKind.FINISHED)  # it was played after all
    assert _states(leader, broadcast_id)[A2] == ("finished", "")
    assert broadcast_status(leader.service, broadcast_id) == "finished"


def test_planned_runs_are_not_sent_as_commands(leader: Leader) -> None:
    broadcast_id = _announce(leader)
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        row.command_id = None  # a planned run that came due: receivers play their manifests
    leader.sent.clear()
    _sweep(leader, utcnow() + timedelta(minutes=5))
    assert leader.sent.sent == []


def test_a_sweep_reads_only_the_deliveries_with_something_due(leader: Leader) -> None:
    """While a province's emergency plays, thousands of answered deliveries stay open; the
    sweep every few seconds must read only the unanswered ones, not every open row."""
    add_devices(leader.service, {f"loa-a-{n:02d}": "thon-a" for n in range(10, 30)})
    broadcast_id = _announce(leader)
    row = _row(leader, broadcast_id)
    assert row.dispatched_at is not None and row.valid_until is not None
    answered = [device for device in _states(leader, broadcast_id) if device != A2]
    for device in answered:
        _answer(leader, device, broadcast_id, EventKind.RECEIVED)
    loaded: list[str] = []

    def count(target: Delivery, _context: object) -> None:
        loaded.append(target.device_id)

    sqlalchemy.event.listen(Delivery, "load", count)
    try:
        _sweep(leader, row.dispatched_at + timedelta(seconds=POLICY.first_after_s + 1))
    finally:
        sqlalchemy.event.remove(Delivery, "load", count)
    assert loaded == [A2]
    assert len(_resent(leader, A2)) == 1
    assert all(not _resent(leader, device) for device in answered)
