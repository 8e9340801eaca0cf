"""The week calendar at a province's size: a commune's week costs the same number of queries
with 2 communes in the province as with 20 (the zones are read once, and only what sounds in the
zone is read), and a province's week lists what sounds province-wide and a count per commune."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from service_support import add_calendar_communes, seed_calendar_province
from support import sql_statements

from broadcast.desks.calendar import WeekCalendar
from broadcast.service import BroadcastService
from broadcast.store.models import User

WEEK = date(2030, 1, 7)  # a Monday


def _week(service: BroadcastService, user_id: int, zone: str = "") -> WeekCalendar:
    return service.calendar.week(user_id, zone, WEEK, now=datetime(2029, 12, 1))


def _counted(service: BroadcastService, ask: Callable[[], WeekCalendar]) -> tuple[int, Any]:
    """How many statements `ask` runs, and what it returns."""
    with sql_statements(service.db.engine) as seen:
        result = ask()
    return len(seen), result


def _titles(cal: WeekCalendar) -> list[tuple[str, str]]:
    return [(str(entry.at), entry.title) for day in cal.days for entry in day.entries]


def _user(service: BroadcastService, name: str) -> int:
    with service.db.session() as session:
        return session.query(User).filter_by(username=name).one().id


def test_a_week_costs_the_same_queries_with_2_and_20_communes(service: BroadcastService) -> None:
    ids = seed_calendar_province(service)
    add_calendar_communes(service, 1, 2)
    officer = _user(service, "lich-officer-1")
    asks = {
        "commune": lambda: _week(service, officer),
        "village": lambda: _week(service, officer, "lich-xa-001-t2"),
        "province": lambda: _week(service, ids["lich-editor"]),
        "root": lambda: _week(service, ids["lich-root"], "lich-xa-002"),
    }
    small = {name: _counted(service, ask) for name, ask in asks.items()}
    add_calendar_communes(service, 3, 20)
    large = {name: _counted(service, ask) for name, ask in asks.items()}
    for name in ("commune", "village", "root"):
        assert large[name][0] == small[name][0], name
        assert _titles(large[name][1]) == _titles(small[name][1]), name
    assert large["province"][0] == small["province"][0]
    commune = small["commune"][1]
    # the province's, the commune's, a village's and a receiver's
    assert len(_titles(commune)) == 7 * 4
    assert {s.title for s in commune.schedules} == {
        "Tin toàn tỉnh", "Tin xã 001", "Tin thôn 001", "Tin loa 001"
    }  # fmt: skip
    assert commune.cancellable == {s.id for s in commune.schedules if s.title != "Tin toàn tỉnh"}
    assert [z.id for z in commune.zones] == ["lich-xa-001", "lich-xa-001-t1", "lich-xa-001-t2"]
    # the receiver's schedule sounds in its village only
    village = {title for _, title in _titles(small["village"][1])}
    assert village == {"Tin toàn tỉnh", "Tin xã 001", "Tin loa 001"}


def test_a_province_s_week_counts_per_commune(service: BroadcastService) -> None:
    ids = seed_calendar_province(service)
    add_calendar_communes(service, 1, 20)
    cal = _week(service, ids["lich-editor"])
    assert cal.zone.id == "tinh-lich"
    assert {title for _, title in _titles(cal)} == {"Tin toàn tỉnh"}  # 7 runs, not 7 × 61
    assert len(_titles(cal)) == 7
    assert len(cal.communes) == 20
    first = cal.communes[0]
    # 3 schedules × 7 days; the commune's 06:00 clashes with the province's (not counted here)
    assert (first.id, first.name, first.runs, first.conflicts) == (
        "lich-xa-001", "Xã Lịch 001", 21, 7
    )  # fmt: skip
    # the picker: the province and its communes, not every village
    assert [z.id for z in cal.zones] == ["tinh-lich"] + [c.id for c in cal.communes]
    assert [s.title for s in cal.schedules] == ["Tin toàn tỉnh"]
