"""The week calendar of a zone: runs expanded from the schedules' rules, announcements from the
log, conflicts in related zones flagged, and who may see which zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from service_support import Users, add_devices, approved_bulletin

from broadcast import clock
from broadcast.const import BroadcastStatus, ScheduleKind
from broadcast.desks import calendar
from broadcast.desks.calendar import Entry, WeekCalendar, ZoneChoice
from broadcast.desks.records import ScheduleRecord
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Bulletin, Schedule
from wire.protocol import Priority

WEEK = date(2030, 1, 7)  # a Monday
LONG_AGO = datetime(2020, 1, 1)


def _row(
    service: BroadcastService,
    title: str,
    zones: list[str],
    kind: ScheduleKind = ScheduleKind.DAILY,
    airtime_s: float = 300.0,
    priority: str = "normal",
    **rule: object,
) -> int:
    """A schedule stored as it is (no overlap check), made long ago, with its bulletin."""
    with service.db.session() as session:
        bulletin = Bulletin(title=title, text=title, status="approved")
        session.add(bulletin)
        session.flush()
        schedule = Schedule(
            bulletin_id=bulletin.id,
            kind=kind.value,
            zone_ids=zones,
            device_ids=rule.pop("device_ids", []),
            priority=priority,
            airtime_s=airtime_s,
            created_at=LONG_AGO,
            **rule,
        )
        session.add(schedule)
        session.flush()
        return schedule.id


def _week(
    service: BroadcastService, user_id: int, zone: str = "", week: date = WEEK
) -> WeekCalendar:
    return service.calendar.week(user_id, zone, week, now=datetime(2029, 12, 1))


def _entries(cal: WeekCalendar) -> list[Entry]:
    return [entry for day in cal.days for entry in day.entries]


def _local(entry: Entry) -> str:
    return clock.format_local(entry.at, "%a %d/%m %H:%M")


def test_weekly_rule_in_local_time(service: BroadcastService, users: Users) -> None:
    _row(service, "Tin sáng", ["thon-a"], ScheduleKind.WEEKDAYS, time_of_day="06:30",
         weekdays=[0, 2])  # fmt: skip
    cal = _week(service, users.officer, "thon-a", WEEK + timedelta(days=3))  # any day of it
    assert cal.start == WEEK and cal.end == date(2030, 1, 13)
    assert cal.previous == date(2029, 12, 31) and cal.next == date(2030, 1, 14)
    assert [day.day for day in cal.days] == [WEEK + timedelta(days=n) for n in range(7)]
    assert [_local(e) for e in _entries(cal)] == ["Mon 07/01 06:30", "Wed 09/01 06:30"]
    assert [len(day.entries) for day in cal.days] == [1, 0, 1, 0, 0, 0, 0]
    first = cal.days[0].entries[0]
    assert first.end - first.at == timedelta(minutes=5)
    assert (first.title, first.kind, first.priority) == ("Tin sáng", "weekdays", "normal")
    assert first.at == datetime(2030, 1, 6, 23, 30)  # stored in UTC
    assert not first.conflicts and cal.conflict_count == 0


def test_what_reaches_a_zone(service: BroadcastService, users: Users) -> None:
    _row(service, "Toàn xã", ["xa-test"], time_of_day="17:00")
    _row(service, "Thôn A", ["thon-a"], time_of_day="06:00")
    _row(service, "Thôn B", ["thon-b"], time_of_day="07:00")
    titles = {
        zone: {entry.title for entry in _entries(_week(service, users.officer, zone))}
        for zone in ("xa-test", "thon-a", "thon-b")
    }
    assert titles == {
        "xa-test": {"Toàn xã", "Thôn A", "Thôn B"},  # a village's schedule shows in the commune
        "thon-a": {"Toàn xã", "Thôn A"},  # the commune's reaches its villages
        "thon-b": {"Toàn xã", "Thôn B"},
    }
    default = _week(service, users.officer)
    assert default.zone.id == "xa-test" and len(_entries(default)) == 21


def test_series_and_validity_window(service: BroadcastService, users: Users) -> None:
    # every 6 hours from Wednesday 09:00 local
    _row(service, "Tin bão", ["thon-a"], ScheduleKind.SERIES, interval_h=6,
         series_key="bao-so-3", run_at=clock.parse_local("2030-01-09T09:00", "run_at"))  # fmt: skip
    _row(service, "Tuần lễ", ["thon-a"], time_of_day="18:00",
         valid_from=date(2030, 1, 9), valid_to=date(2030, 1, 11))  # fmt: skip
    _row(service, "Hết hạn", ["thon-a"], time_of_day="19:00", valid_to=date(2030, 1, 6))
    entries = _entries(_week(service, users.officer, "thon-a"))
    storm = [_local(e) for e in entries if e.title == "Tin bão"]
    assert storm[:3] == ["Wed 09/01 09:00", "Wed 09/01 15:00", "Wed 09/01 21:00"]
    assert storm[-1] == "Sun 13/01 21:00" and len(storm) == 3 + 4 * 4
    assert [_local(e) for e in entries if e.title == "Tuần lễ"] == [
        "Wed 09/01 18:00",
        "Thu 10/01 18:00",
        "Fri 11/01 18:00",
    ]
    assert not [e for e in entries if e.title == "Hết hạn"]
    assert {e.kind for e in entries} == {"series", "daily"}


def test_conflicts_are_flagged_in_related_zones_only(
    service: BroadcastService, users: Users
) -> None:
    add_devices(service, {"loa-b-01": "thon-b"})
    _row(service, "Toàn xã", ["xa-test"], time_of_day="17:00", airtime_s=600,
         valid_from=WEEK, valid_to=WEEK)  # fmt: skip
    _row(service, "Thôn A", ["thon-a"], time_of_day="17:05", valid_from=WEEK, valid_to=WEEK)
    _row(service, "Thôn B sau", ["thon-b"], time_of_day="17:10", valid_from=WEEK, valid_to=WEEK)
    _row(service, "Loa B", [], time_of_day="17:06", valid_from=WEEK, valid_to=WEEK,
         device_ids=["loa-b-01"], airtime_s=180)  # fmt: skip
    commune = {e.title: e for e in _entries(_week(service, users.officer, "xa-test"))}
    assert [c.title for c in commune["Toàn xã"].conflicts] == ["Thôn A", "Loa B"]
    assert [c.title for c in commune["Thôn A"].conflicts] == ["Toàn xã"]
    assert [c.title for c in commune["Loa B"].conflicts] == ["Toàn xã"]  # a device: its village
    assert not commune["Thôn B sau"].conflicts  # starts when the commune's has ended
    # Thôn A 17:05 and Loa B 17:06 overlap in time but sound in different villages
    assert "Loa B" not in [c.title for c in commune["Thôn A"].conflicts]
    village = _week(service, users.officer, "thon-a")
    assert village.conflict_count == 2
    assert commune["Thôn A"].conflicts[0].at == commune["Toàn xã"].at


def test_announcements_and_cancelled_runs(service: BroadcastService, users: Users) -> None:
    schedule_id = _row(service, "Tin chiều", ["thon-a"], time_of_day="17:00",
                       valid_from=WEEK, valid_to=WEEK + timedelta(days=1))  # fmt: skip
    monday_run = clock.parse_local("2030-01-07T17:00", "at")
    with service.db.session() as session:
        session.add_all(
            [
                Broadcast(
                    title="Tin chiều",
                    text="x",
                    priority="normal",
                    zone_ids=["thon-a"],
                    source="schedule",
                    schedule_id=schedule_id,
                    occurrence_at=monday_run,
                    status=BroadcastStatus.CANCELLED.value,
                ),
                Broadcast(
                    title="Cháy chợ",
                    text="x",
                    priority="emergency",
                    zone_ids=["xa-test"],
                    source="announcement",
                    status=BroadcastStatus.FINISHED.value,
                    play_at=clock.parse_local("2030-01-08T17:01", "at"),
                    content="relay",
                    duration_s=120.0,
                ),
                Broadcast(
                    title="Tin sai",
                    text="x",
                    priority="emergency",
                    zone_ids=["thon-a"],
                    source="announcement",
                    status=BroadcastStatus.CANCELLED.value,
                    play_at=clock.parse_local("2030-01-08T08:00", "at"),
                ),
                Broadcast(
                    title="Thôn B",
                    text="x",
                    priority="normal",
                    zone_ids=["thon-b"],
                    source="bulletin",
                    status=BroadcastStatus.FINISHED.value,
                    play_at=clock.parse_local("2030-01-08T09:00", "at"),
                ),
            ]
        )
    entries = _entries(_week(service, users.viewer, "thon-a"))
    assert [(_local(e), e.title, e.kind) for e in entries] == [
        ("Tue 08/01 17:00", "Tin chiều", "daily"),  # Monday's run was cancelled
        ("Tue 08/01 17:01", "Cháy chợ", "announcement"),
    ]
    assert entries[1].end - entries[1].at == timedelta(minutes=2)
    assert [c.title for c in entries[0].conflicts] == ["Cháy chợ"]
    assert entries[1].broadcast_id is not None and entries[0].schedule_id == schedule_id


def test_ended_schedules_and_runs_before_a_schedule_existed(
    service: BroadcastService, users: Users
) -> None:
    ended = _row(service, "Đã hủy", ["thon-a"], time_of_day="06:00")
    late = _row(service, "Mới", ["thon-a"], time_of_day="07:00")
    with service.db.session() as session:
        session.get(Schedule, ended).ended_at = LONG_AGO  # type: ignore[union-attr]
        session.get(Schedule, late).created_at = clock.parse_local(  # type: ignore[union-attr]
            "2030-01-10T12:00", "at"
        )
    cal = _week(service, users.officer, "thon-a")
    assert [_local(e) for e in _entries(cal)] == [
        "Fri 11/01 07:00",
        "Sat 12/01 07:00",
        "Sun 13/01 07:00",
    ]
    [shown] = cal.schedules  # a record with its bulletin's title, read before the session closed
    assert (shown.id, shown.title, shown.time_of_day) == (late, "Mới", "07:00")
    assert isinstance(shown, ScheduleRecord) and isinstance(cal.zone, ZoneChoice)
    assert (cal.zone.id, cal.zone.name) == ("thon-a", "Thôn A")


def test_who_sees_which_zone(service: BroadcastService, users: Users) -> None:
    _row(service, "Toàn xã", ["xa-test"], time_of_day="17:00")
    for user_id in (users.admin, users.officer, users.leader, users.viewer):
        cal = _week(service, user_id, "thon-b")
        assert cal.zone.id == "thon-b" and len(_entries(cal)) == 7
        assert {zone.id for zone in cal.zones} == {"xa-test", "thon-a", "thon-b"}
    own = _week(service, users.head_1)
    assert own.zone.id == "thon-a" and [z.id for z in own.zones] == ["thon-a"]
    assert len(_entries(own)) == 7 and not own.can_cancel and not own.can_open_bulletins
    assert _week(service, users.head_1, "thon-a").zone.id == "thon-a"
    for elsewhere in ("thon-b", "xa-test"):
        with pytest.raises(PermissionDenied):
            _week(service, users.head_1, elsewhere)
    assert _week(service, users.officer).can_cancel and _week(service, users.admin).can_cancel
    leader = _week(service, users.leader)
    assert not leader.can_cancel and leader.can_open_bulletins
    with pytest.raises(NotFound):
        _week(service, users.officer, "thon-z")


def test_weeks_are_parsed_to_their_monday() -> None:
    assert calendar.parse_week("2030-01-13") == WEEK
    assert calendar.parse_week(" 2030-01-07 ") == WEEK
    for bad in ("2030-13-01", "tuần sau", ""):
        with pytest.raises(ValidationError) as info:
            calendar.parse_week(bad)
        assert info.value.field == "week"


def test_schedules_made_by_the_service_show(service: BroadcastService, users: Users) -> None:
    bulletin = approved_bulletin(service, users.officer, "Bản tin chiều", "Bản tin chiều.")
    service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.WEEKDAYS,
            zone_ids=["thon-a"],
            priority=Priority.PRIORITY,
            time_of_day="17:00",
            weekdays=[4],
        ),
    )
    entries = _entries(_week(service, users.officer, "thon-a"))
    assert [(_local(e), e.priority) for e in entries] == [("Fri 11/01 17:00", "priority")]
    assert entries[0].end > entries[0].at  # the rendered bulletin's real length
