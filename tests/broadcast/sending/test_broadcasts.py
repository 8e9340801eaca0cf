"""Broadcast records and answer-back bookkeeping, driven by protocol events."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_support import Users, add_devices, broadcast_status, make_service, seed_commune
from sqlalchemy.orm import Session
from support import sql_statements

from broadcast.const import BroadcastStatus, ZoneKind
from broadcast.errors import PermissionDenied, ValidationError
from broadcast.fleet import registry
from broadcast.people import zones
from broadcast.sending import broadcasts
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Device
from wire.protocol import DeviceEvent, DeviceStatus, EventKind, Priority, ReceiverState


@pytest.fixture(name="fleet")
def fleet_fixture(service: BroadcastService, users: Users) -> list[str]:
    """The test commune (`users` seeds it) with its three receivers."""
    return register_fleet(service)


def register_fleet(service: BroadcastService) -> list[str]:
    with service.db.session() as session:
        for device_id, zone in (
            ("loa-a-01", "thon-a"),
            ("loa-a-02", "thon-a"),
            ("loa-b-01", "thon-b"),
        ):
            registry.register_device(
                session, service.settings, service.fleet.public_key_text, device_id, zone
            )
    return ["loa-a-01", "loa-a-02", "loa-b-01"]


def _event(device: str, broadcast_id: int, kind: EventKind) -> DeviceEvent:
    return DeviceEvent(device, "cmd", broadcast_id, kind, time.time())


def test_deliveries_follow_events(service: BroadcastService, fleet: list[str]) -> None:
    with service.db.session() as session:
        targets = zones.resolve_zones(session, ["thon-a"])
        broadcast = broadcasts.create_broadcast(
            session,
            text="Họp thôn",
            zone_list=targets,
            priority=Priority.EMERGENCY,
            repeat=1,
            source="announcement",
        )
        assert [d.device_id for d in broadcast.deliveries] == ["loa-a-01", "loa-a-02"]
        broadcasts.mark_dispatched(broadcast, "0" * 64, "espeak", "cmd")
        broadcast_id = broadcast.id
    with service.db.session() as session:
        for kind in (EventKind.RECEIVED, EventKind.STARTED, EventKind.FINISHED):
            broadcasts.apply_event(session, _event("loa-a-01", broadcast_id, kind))
        # a late 'received' never moves a finished delivery backwards
        broadcasts.apply_event(session, _event("loa-a-01", broadcast_id, EventKind.RECEIVED))
        # a device that was not targeted is ignored
        assert (
            broadcasts.apply_event(session, _event("loa-b-01", broadcast_id, EventKind.STARTED))
            is None
        )
    with service.db.session() as session:
        broadcast = broadcasts.get_broadcast(session, broadcast_id)
        assert broadcast.deliveries[0].state == "finished"
        assert broadcast.deliveries[0].started_at is not None
        assert broadcast.status == BroadcastStatus.DISPATCHED
        broadcasts.apply_event(session, _event("loa-a-02", broadcast_id, EventKind.FAILED))
    with service.db.session() as session:
        assert broadcasts.get_broadcast(session, broadcast_id).status == BroadcastStatus.PARTIAL


def test_commune_and_village_together_dispatch_once(
    service: BroadcastService, fleet: list[str]
) -> None:
    with service.db.session() as session:
        targets = zones.resolve_zones(session, ["thon-a", "xa-test"])
        broadcast = broadcasts.create_broadcast(
            session,
            text="Bão số 3",
            zone_list=targets,
            priority=Priority.EMERGENCY,
            repeat=3,
            source="announcement",
        )
        assert broadcast.zone_ids == ["xa-test"]
        assert len(broadcast.deliveries) == 3


def test_stale_last_will_is_ignored(service: BroadcastService, fleet: list[str]) -> None:
    now = time.time()
    change = broadcasts.StatusChange
    with service.db.session() as session:
        assert (
            broadcasts.apply_status(
                session, DeviceStatus("loa-a-01", ReceiverState.IDLE, "boot-2", now)
            )
            == change.RETURNED
        )
        assert (
            broadcasts.apply_status(
                session, DeviceStatus("loa-a-01", ReceiverState.OFFLINE, "boot-1", now)
            )
            == change.IGNORED
        )
    with service.db.session() as session:
        device = session.get(Device, "loa-a-01")
        assert device.online and device.boot_id == "boot-2"
        assert (
            broadcasts.apply_status(
                session, DeviceStatus("loa-a-01", ReceiverState.PLAYING, "boot-2", now + 1)
            )
            == change.UPDATED
        )
        assert (
            broadcasts.apply_status(
                session, DeviceStatus("loa-a-01", ReceiverState.OFFLINE, "boot-2", now + 2)
            )
            == change.UPDATED
        )
    with service.db.session() as session:
        assert not session.get(Device, "loa-a-01").online
        assert (
            broadcasts.apply_status(  # back after a broker restart: same boot, online again
                session, DeviceStatus("loa-a-01", ReceiverState.IDLE, "boot-2", now + 3)
            )
            == change.RETURNED
        )


@pytest.mark.parametrize(
    ("text", "zone_ids", "priority", "repeat", "field"),
    [
        ("   ", ["thon-a"], "emergency", 1, "text"),
        ("Có bão", ["thon-x"], "emergency", 1, "zones"),
        ("Có bão", [], "emergency", 1, "zones"),
        ("Có bão", "thon-a", "emergency", 1, "zones"),
        ("Có bão", ["thon-a"], "urgent", 1, "priority"),
        ("Có bão", ["thon-a"], "emergency", 0, "repeat"),
        ("Có bão", ["thon-a"], "emergency", "ba", "repeat"),
    ],
)
def test_announce_rejects_bad_input(
    service: BroadcastService, users: Users, text, zone_ids, priority, repeat, field
) -> None:
    with pytest.raises(ValidationError) as info:
        service.announcements.announce(users.officer, text, zone_ids, priority, repeat)
    assert info.value.field == field


def test_announce_denied_outside_role(service: BroadcastService, users: Users) -> None:
    with pytest.raises(PermissionDenied):
        service.announcements.announce(users.head_1, "Mất điện", ["thon-b"])
    with pytest.raises(PermissionDenied):
        service.announcements.announce(users.viewer, "Mất điện", ["thon-a"])


def _dispatched_to_thon_a(service: BroadcastService) -> int:
    with service.db.session() as session:
        broadcast = broadcasts.create_broadcast(
            session,
            text="Họp thôn",
            zone_list=zones.resolve_zones(session, ["thon-a"]),
            priority=Priority.NORMAL,
            repeat=1,
            source="announcement",
        )
        broadcasts.mark_dispatched(broadcast, "0" * 64, "espeak", "cmd")
        return broadcast.id


def test_a_preempted_delivery_resumes_and_finishes(
    service: BroadcastService, fleet: list[str]
) -> None:
    broadcast_id = _dispatched_to_thon_a(service)
    with service.db.session() as session:
        for kind in (EventKind.RECEIVED, EventKind.STARTED, EventKind.PREEMPTED):
            broadcasts.apply_event(session, _event("loa-a-01", broadcast_id, kind))
        # a late 'fetched' does not undo the preemption
        broadcasts.apply_event(session, _event("loa-a-01", broadcast_id, EventKind.FETCHED))
    with service.db.session() as session:
        delivery = broadcasts.get_broadcast(session, broadcast_id).deliveries[0]
        assert delivery.state == "preempted" and delivery.preempted_at is not None
        broadcasts.apply_event(session, _event("loa-a-01", broadcast_id, EventKind.STARTED))
    with service.db.session() as session:
        assert broadcasts.get_broadcast(session, broadcast_id).deliveries[0].state == "playing"
        broadcasts.apply_event(session, _event("loa-a-01", broadcast_id, EventKind.FINISHED))
        broadcasts.apply_event(session, _event("loa-a-01", broadcast_id, EventKind.PREEMPTED))
        broadcasts.apply_event(session, _event("loa-a-02", broadcast_id, EventKind.FINISHED))
    with service.db.session() as session:
        broadcast = broadcasts.get_broadcast(session, broadcast_id)
        assert [d.state for d in broadcast.deliveries] == ["finished", "finished"]
        assert broadcast.status == BroadcastStatus.FINISHED


def test_a_missed_run_still_settles_from_answer_back(
    service: BroadcastService, fleet: list[str]
) -> None:
    """The server missed the run, but the receivers played it from their manifests."""
    with service.db.session() as session:
        broadcast = broadcasts.create_broadcast(
            session,
            text="Bản tin",
            zone_list=zones.resolve_zones(session, ["thon-b"]),
            priority=Priority.NORMAL,
            repeat=1,
            source="schedule",
            status=BroadcastStatus.SCHEDULED,
        )
        assert broadcasts.mark_missed(broadcast, "the server was not running")
        assert not broadcasts.mark_due(broadcast)
        broadcast_id = broadcast.id
    with service.db.session() as session:
        broadcasts.apply_event(session, _event("loa-b-01", broadcast_id, EventKind.FINISHED))
    with service.db.session() as session:
        assert broadcasts.get_broadcast(session, broadcast_id).status == BroadcastStatus.FINISHED


def test_heartbeat_extras_are_kept(service: BroadcastService, fleet: list[str]) -> None:
    extra = {"cache_complete": 0.75, "manifest_items": 4, "clock_offset_s": -0.4, "manifest_seq": 7}
    with service.db.session() as session:
        broadcasts.apply_status(
            session,
            DeviceStatus("loa-b-01", ReceiverState.IDLE, "boot-1", time.time(), extra=extra),
        )
    with service.db.session() as session:
        assert session.get(Device, "loa-b-01").status_extra == extra


def _answer_statements(service: BroadcastService, receivers: int) -> tuple[int, str]:
    """SQL statements to write one batch of answer-back from `receivers` receivers (a state
    and two events each, all coming online) to a broadcast to all of them, in a village of
    their own; the broadcast's status after it."""
    village = f"thon-n{receivers}"
    with service.db.session() as session:
        zones.create_zone(session, village, village, ZoneKind.VILLAGE, "xa-test")
    add_devices(service, {f"loa-n{receivers}-{n:03d}": village for n in range(receivers)})
    with service.db.session() as session:
        broadcast = broadcasts.create_broadcast(
            session,
            text="Họp thôn",
            zone_list=zones.resolve_zones(session, [village]),
            priority=Priority.EMERGENCY,
            repeat=1,
            source="announcement",
        )
        broadcasts.mark_dispatched(broadcast, "0" * 64, "espeak", "cmd")
        broadcast_id = broadcast.id
        every = [d.device_id for d in broadcast.deliveries]
    now = time.time()
    answers: list[DeviceStatus | DeviceEvent] = []
    for device_id in every:
        answers.append(DeviceStatus(device_id, ReceiverState.IDLE, "boot", now, None, "t", {}))
        answers.append(_event(device_id, broadcast_id, EventKind.RECEIVED))
        answers.append(_event(device_id, broadcast_id, EventKind.FINISHED))
    with sql_statements(service.db.engine) as statements:
        service._apply_answers(answers)
    return len(statements), broadcast_status(service, broadcast_id)


def test_a_batch_of_answers_costs_the_same_statements_for_many_receivers(
    service: BroadcastService, fleet: list[str]
) -> None:
    """A province's answer-back comes in thousands: the statements of a batch must not grow
    with the receivers in it (deliveries read at once, each broadcast settled in SQL)."""
    few, few_status = _answer_statements(service, 5)
    many, many_status = _answer_statements(service, 60)
    assert few_status == many_status == BroadcastStatus.FINISHED.value
    assert many == few, (few, many)


@pytest.fixture
def on_postgresql(
    postgres_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BroadcastService]:
    """A commune with the fleet on a real PostgreSQL, whatever `--db` says: two writers at once
    exist only there (SQLite lets one in at a time)."""
    url = postgres_server.create_database(f"loa_race_{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]
    monkeypatch.setenv("LOA_DATABASE_URL", url)
    service = make_service(tmp_path / "on-postgresql")
    try:
        seed_commune(service)
        register_fleet(service)
        yield service
    finally:
        service.stop()


@pytest.mark.integration  # a PostgreSQL server
def test_answers_arriving_while_a_run_is_fired_still_settle_it(
    on_postgresql: BroadcastService,
) -> None:
    """A new leader fires an overdue run the moment the answers queued for it arrive: two
    transactions at once on PostgreSQL. The answers wait for the firing, then settle it (each
    used to read the other's work as not yet done, leaving the run dispatched for good)."""
    service = on_postgresql
    with service.db.session() as session:
        broadcast_id = broadcasts.create_broadcast(
            session,
            text="Bản tin",
            zone_list=zones.resolve_zones(session, ["thon-b"]),
            priority=Priority.NORMAL,
            repeat=1,
            source="schedule",
            status=BroadcastStatus.SCHEDULED,
        ).id
    firing = Session(service.db.engine)
    assert broadcasts.mark_due(firing.get(Broadcast, broadcast_id))  # not committed yet
    answered = threading.Event()

    def answer() -> None:
        with service.db.session() as session:
            broadcasts.apply_events(session, [_event("loa-b-01", broadcast_id, EventKind.FINISHED)])
        answered.set()

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        assert not answered.wait(1.0)  # it waits for the firing's transaction
        firing.commit()
    finally:
        firing.close()
        thread.join(timeout=10)
    assert answered.is_set()
    assert broadcast_status(service, broadcast_id) == BroadcastStatus.FINISHED
