"""Schedules fire at their time from the planned runs, also after a server restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from service_support import Users, approved_bulletin, make_service, seed_commune, waiting_runs
from support import LOOPBACK, free_port

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.fleet.brokers.embedded import EmbeddedBroker
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast
from wire.protocol import Priority


@pytest.fixture
def broker_port(tmp_path: Path) -> Iterator[int]:
    """An embedded broker that knows the server user of the service under tmp_path/data."""
    port = free_port()
    service = make_service(tmp_path / "data", mqtt_port=port)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()
    broker = EmbeddedBroker(LOOPBACK, port, access)
    broker.start()
    yield port
    broker.stop()


def _local_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone(LOCAL_TZ).isoformat()


@pytest.mark.integration  # an embedded broker
def test_once_schedule_survives_restart(tmp_path: Path, broker_port: int) -> None:
    first = make_service(tmp_path / "data", mqtt_port=broker_port, connect_mqtt=True)
    users: Users = seed_commune(first)
    first.start()
    bulletin = approved_bulletin(first, users.officer, "Lịch tiêm chủng", "Tiêm chủng lúc 7h30.")
    schedule_id = first.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.ONCE,
            zone_ids=["thon-a"],
            priority=Priority.NORMAL,
            run_at=_local_in(3),
        ),
    )
    assert first.scheduling.next_run(schedule_id) is not None
    with first.db.session() as session:  # planned at once: a waiting row with its run time
        planned = list(session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id))
        assert [row.status for row in planned] == ["scheduled"]
    assert waiting_runs(first.scheduler) == {planned[0].id}
    first.stop()  # the server goes down before the schedule is due

    second = make_service(tmp_path / "data", mqtt_port=broker_port, connect_mqtt=True)
    second.start()
    try:
        deadline = time.monotonic() + 30
        fired: list[Broadcast] = []
        while time.monotonic() < deadline and not fired:
            with second.db.session() as session:
                fired = list(session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id))
            time.sleep(0.2)
        assert len(fired) == 1
        while time.monotonic() < deadline and fired[0].status == "scheduled":
            with second.db.session() as session:
                fired[0] = session.get(Broadcast, fired[0].id)
            time.sleep(0.2)
        assert fired[0].status == "dispatched", fired[0].error
        assert fired[0].source == "schedule"
        assert fired[0].id == planned[0].id  # the planned row, not a second one
        assert second.scheduling.next_run(schedule_id) is None
        assert waiting_runs(second.scheduler) == set()
    finally:
        second.stop()


def test_daily_schedule_runs_at_local_time(service: BroadcastService, users: Users) -> None:
    bulletin = approved_bulletin(service, users.officer, "Bản tin chiều", "Bản tin chiều nay.")
    schedule_id = service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=["xa-test"],
            priority=Priority.NORMAL,
            time_of_day="17:00",
        ),
    )
    next_run = service.scheduling.next_run(schedule_id)
    assert next_run is not None
    assert next_run.replace(tzinfo=UTC).astimezone(LOCAL_TZ).strftime("%H:%M") == "17:00"
    assert next_run.strftime("%H:%M") == "10:00"  # stored and computed in UTC


def test_schedule_in_the_past_is_rejected(service: BroadcastService, users: Users) -> None:
    from broadcast.errors import ValidationError

    bulletin = approved_bulletin(service, users.officer, "", "Nội dung.")
    with pytest.raises(ValidationError) as info:
        service.scheduling.schedule(
            users.officer,
            ScheduleRequest(
                bulletin_id=bulletin,
                kind=ScheduleKind.ONCE,
                zone_ids=["thon-a"],
                priority=Priority.NORMAL,
                run_at=_local_in(-60),
            ),
        )
    assert info.value.field == "run_at"


def test_village_head_cannot_schedule(service: BroadcastService, users: Users) -> None:
    from broadcast.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        service.bulletins.create_bulletin(users.head_1, "", "Nội dung.")


def test_todays_programme_in_local_days(service: BroadcastService, users: Users) -> None:
    from broadcast.programme.planning import todays_programme
    from broadcast.store.models import Bulletin, Schedule

    created = datetime(2026, 11, 20)
    with service.db.session() as session:
        bulletin = Bulletin(title="Bản tin", text="Bản tin.")
        session.add(bulletin)
        session.flush()

        def add(schedule_id: int, **fields: object) -> None:
            session.add(
                Schedule(
                    id=schedule_id,
                    bulletin_id=bulletin.id,
                    zone_ids=["thon-a"],
                    priority="normal",
                    created_at=created,
                    **fields,
                )
            )

        add(1, kind="daily", time_of_day="06:00")
        add(2, kind="daily", time_of_day="17:00")
        add(3, kind="daily", time_of_day="12:00", active=False, ended_at=created)
        add(4, kind="once", run_at=datetime(2026, 11, 27, 1, 0))
    with service.db.session() as session:
        # 16:30 UTC on 26/11 is 23:30 on 26/11 in Hà Nội: still the 26th there
        slots = todays_programme(session, datetime(2026, 11, 26, 16, 30))
        assert [(slot.schedule.id, slot.at, slot.done) for slot in slots] == [
            (1, datetime(2026, 11, 25, 23, 0), True),
            (2, datetime(2026, 11, 26, 10, 0), True),
        ]
        # 17:30 UTC is already the 27th locally: the once-schedule at 08:00 local is today
        slots = todays_programme(session, datetime(2026, 11, 26, 17, 30))
        assert [(slot.schedule.id, slot.done) for slot in slots] == [
            (1, False),
            (4, False),
            (2, False),
        ]


def test_todays_programme_of_a_village_head_has_what_plays_on_their_loudspeakers(
    service: BroadcastService, users: Users
) -> None:
    """A commune-wide bulletin plays in every village: a village head's programme has it,
    with the runs for their village and their receivers, and nothing of another village."""
    from broadcast.people import accounts
    from broadcast.programme.planning import todays_programme
    from broadcast.sending import broadcasts
    from broadcast.store.models import Bulletin, Schedule

    registry_devices = {"loa-a-01": "thon-a", "loa-b-01": "thon-b"}
    with service.db.session() as session:
        for device_id, zone_id in registry_devices.items():
            registry.register_device(
                session, service.settings, service.fleet.public_key_text, device_id, zone_id
            )
        bulletin = Bulletin(title="Bản tin", text="Bản tin.")
        session.add(bulletin)
        session.flush()
        targets = {
            1: (["xa-test"], []),  # the whole commune
            2: (["thon-a"], []),
            3: (["thon-b"], []),
            4: ([], ["loa-a-01"]),
            5: ([], ["loa-b-01"]),
        }
        for schedule_id, (zone_ids, device_ids) in targets.items():
            session.add(
                Schedule(
                    id=schedule_id,
                    bulletin_id=bulletin.id,
                    zone_ids=zone_ids,
                    device_ids=device_ids,
                    priority="normal",
                    created_at=datetime(2026, 11, 20),
                    kind="daily",
                    time_of_day=f"0{schedule_id}:00",
                )
            )
    now = datetime(2026, 11, 26, 12, 0)
    with service.db.session() as session:
        head = accounts.get_user(session, "head-a")
        scope = broadcasts.listening_scope(session, head)
        heard = [slot.schedule.id for slot in todays_programme(session, now, scope)]
        assert heard == [1, 2, 4]
        officer = accounts.get_user(session, "officer")
        assert broadcasts.listening_scope(session, officer) is None
        assert [slot.schedule.id for slot in todays_programme(session, now)] == [1, 2, 3, 4, 5]
