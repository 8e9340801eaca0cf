"""Overlaps in the same zone are refused when scheduling, with a message naming the other
bulletin, the local date and time and the zone; never silently played over each other."""

from __future__ import annotations

from datetime import timedelta

import pytest
from service_support import approved_bulletin

from broadcast import clock
from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import ValidationError
from broadcast.service import BroadcastService
from broadcast.store.models import Schedule, utcnow
from wire.protocol import Priority

from ..conftest import Leader


def _schedule(
    service: BroadcastService,
    officer: int,
    bulletin: int,
    zones: list[str],
    devices: list[str] | None = None,
    **timing: object,
) -> int:
    timing.setdefault("kind", ScheduleKind.DAILY)
    return service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            zone_ids=zones,
            device_ids=devices or [],
            priority=timing.pop("priority", Priority.NORMAL),  # type: ignore[arg-type]
            **timing,  # type: ignore[arg-type]
        ),
    )


@pytest.fixture
def evening(leader: Leader) -> tuple[int, int]:
    """'Bản tin chiều' daily at 17:00 in Thôn A: (bulletin, schedule)."""
    bulletin = approved_bulletin(
        leader.service, leader.users.officer, "Bản tin chiều", "Tin chiều."
    )
    schedule = _schedule(
        leader.service, leader.users.officer, bulletin, ["thon-a"], time_of_day="17:00"
    )
    return bulletin, schedule


def _refused(
    leader: Leader, zones: list[str], devices: list[str] | None = None, **timing: object
) -> ValidationError:
    other = approved_bulletin(leader.service, leader.users.officer, "Tin khác", "Một tin khác.")
    with pytest.raises(ValidationError) as info:
        _schedule(leader.service, leader.users.officer, other, zones, devices, **timing)
    assert info.value.field == "time"
    return info.value


def test_same_zone_same_time_is_refused(leader: Leader, evening: tuple[int, int]) -> None:
    error = _refused(leader, ["thon-a"], time_of_day="17:00")
    assert error.code == "overlap"
    assert "“Bản tin chiều”" in error.message
    assert "17:00 ngày" in error.message
    assert "Thôn A" in error.message
    assert f"lịch số {evening[1]}" in error.message


def test_commune_meets_its_villages(leader: Leader, evening: tuple[int, int]) -> None:
    error = _refused(leader, ["xa-test"], time_of_day="17:00")
    assert "tại Thôn A" in error.message  # where they meet: the village, not the whole commune


def test_a_device_counts_as_its_zone(leader: Leader, evening: tuple[int, int]) -> None:
    error = _refused(leader, [], ["loa-a-02"], time_of_day="17:00")
    assert "Thôn A" in error.message


def test_other_villages_and_other_times_are_fine(leader: Leader, evening: tuple[int, int]) -> None:
    service, officer = leader.service, leader.users.officer
    other = approved_bulletin(service, officer, "Tin khác", "Một tin khác.")
    _schedule(service, officer, other, ["thon-b"], time_of_day="17:00")
    _schedule(service, officer, other, ["thon-a"], time_of_day="17:01")  # the first one is short


def test_duration_counts_repeats(leader: Leader, evening: tuple[int, int]) -> None:
    with leader.service.db.session() as session:
        airtime = session.get(Schedule, evening[1]).airtime_s
    assert 1 < airtime < 60
    text = "Bà con chú ý: chiều nay họp thôn tại nhà văn hóa, mang theo sổ hộ khẩu. " * 2
    long_one = approved_bulletin(leader.service, leader.users.officer, "Tin dài", text)
    once = _schedule(  # read once it ends before 17:00 …
        leader.service, leader.users.officer, long_one, ["thon-a"], time_of_day="16:59"
    )
    with leader.service.db.session() as session:
        assert session.get(Schedule, once).airtime_s < 60
    with pytest.raises(ValidationError) as info:  # … read ten times it does not
        _schedule(
            leader.service,
            leader.users.officer,
            long_one,
            ["thon-a"],
            time_of_day="16:58",
            repeat=10,
        )
    assert "Tin dài" in info.value.message or "Bản tin chiều" in info.value.message


def test_a_relay_lasts_its_minutes(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    relay = approved_bulletin(
        service, officer, "VOV1", relay_url="http://radio.example.vn/vov1", minutes=30
    )
    _schedule(service, officer, relay, ["thon-b"], time_of_day="06:00")
    error = _refused(leader, ["thon-b"], time_of_day="06:20")
    assert "“VOV1”" in error.message and "06:00 ngày" in error.message
    other = approved_bulletin(service, officer, "Tin sáng", "Tin sáng.")
    _schedule(service, officer, other, ["thon-b"], time_of_day="06:31")


def test_weekdays_and_cron_meet_daily(leader: Leader, evening: tuple[int, int]) -> None:
    _refused(leader, ["thon-a"], kind=ScheduleKind.WEEKDAYS, time_of_day="17:00", weekdays=[2])
    _refused(leader, ["thon-a"], kind=ScheduleKind.CRON, cron="0 17 * * 6")


def test_a_once_far_ahead_is_checked_at_its_time(leader: Leader, evening: tuple[int, int]) -> None:
    day = clock.to_local(utcnow() + timedelta(days=40)).date()
    error = _refused(leader, ["thon-a"], kind=ScheduleKind.ONCE, run_at=f"{day}T17:00")
    assert day.strftime("%d/%m/%Y") in error.message


def test_a_window_outside_the_other_is_fine(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    first = clock.to_local(utcnow() + timedelta(days=3)).date()
    december = approved_bulletin(service, officer, "Tháng này", "Tin.")
    _schedule(service, officer, december, ["thon-a"], time_of_day="18:00", valid_to=str(first))
    later = approved_bulletin(service, officer, "Sau đó", "Tin.")
    _schedule(
        service,
        officer,
        later,
        ["thon-a"],
        time_of_day="18:00",
        valid_from=str(first + timedelta(days=1)),
    )
    error = _refused(leader, ["thon-a"], time_of_day="18:00")
    assert "Tháng này" in error.message  # the earliest clash is named


def test_cancelled_schedules_and_runs_do_not_count(
    leader: Leader, evening: tuple[int, int]
) -> None:
    leader.service.scheduling.cancel(leader.users.officer, evening[1])
    other = approved_bulletin(leader.service, leader.users.officer, "Tin khác", "Tin.")
    _schedule(leader.service, leader.users.officer, other, ["thon-a"], time_of_day="17:00")


def test_a_series_does_not_clash_with_the_one_it_replaces(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    storm = approved_bulletin(service, officer, "Tin bão", "Bão.")
    for _ in range(2):
        _schedule(
            service,
            officer,
            storm,
            ["xa-test"],
            kind=ScheduleKind.SERIES,
            interval_h=2,
            series_key="bao-so-3",
            priority=Priority.EMERGENCY,
        )


def test_a_schedule_must_not_overlap_itself(leader: Leader) -> None:
    error = _refused(leader, ["thon-b"], kind=ScheduleKind.CRON, cron="*/5 * * * *")
    assert "quá gần" in error.message


def test_windows_far_ahead_are_checked_where_they_run(leader: Leader) -> None:
    service, officer = leader.service, leader.users.officer
    spring = approved_bulletin(service, officer, "Mùa xuân 2030", "Tin.")
    _schedule(service, officer, spring, ["thon-a"], time_of_day="17:00", valid_from="2030-01-01")
    error = _refused(leader, ["thon-a"], time_of_day="17:00", valid_from="2030-02-01")
    assert "Mùa xuân 2030" in error.message and "01/02/2030" in error.message
