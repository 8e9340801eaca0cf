"""A lunar schedule made at the desk is planned on the right solar days, across the leap 5th
month of 2028 (5th month from 24/5, leap 5th from 23/6, 6th from 22/7: rằm on 7/6, 7/7, 5/8)."""

from __future__ import annotations

from datetime import datetime

from service_support import Users, approved_bulletin
from sqlalchemy import select

from broadcast import clock
from broadcast.const import BroadcastStatus, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.programme import planning
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast
from wire.protocol import Priority


def test_ram_and_mung_mot_are_planned_through_a_leap_month(
    service: BroadcastService, users: Users
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Nhắc rằm", "Giữ vệ sinh chung.")
    schedule_id = service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.LUNAR_MONTHLY,
            zone_ids=["thon-a"],
            priority=Priority.NORMAL,
            time_of_day="06:00",
            lunar_days=["1", "15"],
            valid_from="2028-06-01",
            valid_to="2028-08-31",
        ),
    )
    record = service.scheduling.get(users.viewer, schedule_id)
    assert (record.kind, record.lunar_days, record.lunar_month) == ("lunar_monthly", (1, 15), None)
    assert record.next_run == datetime(2028, 6, 6, 23, 0)  # 7/6/2028 06:00 in Hà Nội
    now = datetime(2028, 7, 5, 17, 0)  # local midnight starting 6/7/2028
    with service.db.session() as session:
        planning.plan(session, now=now, horizon_s=48 * 3600, grace_s=900, item_valid_s=900)
        rows = session.scalars(
            select(Broadcast)
            .where(Broadcast.schedule_id == schedule_id)
            .order_by(Broadcast.occurrence_at)
        ).all()
        planned = [(clock.format_local(row.occurrence_at), row.status) for row in rows]
    assert planned == [
        ("07/06/2028 06:00", BroadcastStatus.MISSED.value),  # rằm of the 5th month
        ("23/06/2028 06:00", BroadcastStatus.MISSED.value),  # mùng một of the leap 5th
        ("07/07/2028 06:00", BroadcastStatus.SCHEDULED.value),  # rằm of the leap 5th
    ]
