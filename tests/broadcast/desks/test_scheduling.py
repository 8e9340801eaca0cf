"""The scheduling desk's reading side: schedules as plain records, each read with its next run
(making them, overlaps and series are in tests/broadcast/programme)."""

from __future__ import annotations

import pytest
from service_support import Users, approved_bulletin

from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import NotFound, PermissionDenied
from broadcast.service import BroadcastService
from wire.protocol import Priority


def _daily(service: BroadcastService, users: Users, title: str, at: str) -> int:
    bulletin = approved_bulletin(service, users.officer, title, f"{title} lúc {at}.")
    return service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=["thon-a"],
            priority=Priority.NORMAL,
            time_of_day=at,
        ),
    )


def test_schedules_are_read_as_records_with_their_next_run(
    service: BroadcastService, users: Users
) -> None:
    desk = service.scheduling
    morning = _daily(service, users, "Bản tin sáng", "06:00")
    evening = _daily(service, users, "Bản tin chiều", "17:00")
    desk.cancel(users.officer, evening)

    [listed] = desk.active_schedules(users.leader)  # a leader reads the programme
    assert (listed.id, listed.title, listed.kind, listed.active) == (
        morning, "Bản tin sáng", "daily", True,
    )  # fmt: skip
    assert listed.zone_ids == ("thon-a",) and listed.next_run is None  # not computed in lists

    one = desk.get(users.viewer, morning)
    assert one.next_run is not None and one.next_run == desk.next_run(morning)
    ended = desk.get(users.officer, evening)
    assert not ended.active and ended.ended_at is not None and ended.next_run is None
    with pytest.raises(NotFound):
        desk.get(users.officer, 999)


def test_who_may_schedule_and_who_may_read(service: BroadcastService, users: Users) -> None:
    desk = service.scheduling
    desk.check_can_schedule(users.officer)
    desk.check_can_schedule(users.admin)
    for reader_only in (users.leader, users.viewer, users.head_1):
        with pytest.raises(PermissionDenied):
            desk.check_can_schedule(reader_only)
    with pytest.raises(PermissionDenied):  # a village head has no programme to read
        desk.active_schedules(users.head_1)
