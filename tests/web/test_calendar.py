"""The week calendar page: a zone's planned runs day by day, conflicts said in words, schedules
cancelled from it, and village heads kept to their own village."""

from __future__ import annotations

import re
from datetime import datetime

from flask.testing import FlaskClient
from service_support import (
    Users,
    add_calendar_communes,
    approved_bulletin,
    seed_calendar_province,
)
from web_support import csrf_token, login

from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.service import BroadcastService
from broadcast.store.models import Bulletin, Schedule
from wire.protocol import Priority

WEEK = "/calendar/?zone=xa-test&week=2030-01-09"  # the week of Monday 7 January 2030


def _daily(service: BroadcastService, users: Users, title: str, zone: str, at: str) -> int:
    bulletin = approved_bulletin(service, users.officer, title, f"{title}.")
    return service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=[zone],
            priority=Priority.NORMAL,
            time_of_day=at,
        ),
    )


def _clashing(service: BroadcastService, zone: str, at: str) -> int:
    """A schedule stored as it is, skipping the overlap check (as an old one could be)."""
    with service.db.session() as session:
        bulletin = Bulletin(title="<b>Tin trùng</b>", text="Tin trùng.", status="approved")
        session.add(bulletin)
        session.flush()
        schedule = Schedule(
            bulletin_id=bulletin.id,
            kind="daily",
            time_of_day=at,
            zone_ids=[zone],
            priority="emergency",
            airtime_s=120.0,
            created_at=datetime(2020, 1, 1),
        )
        session.add(schedule)
        session.flush()
        return schedule.id


def _day(page: str, index: int) -> str:
    return page.split(f'id="day-{index}"')[1].split("</section>")[0]


def test_the_week_day_by_day(client: FlaskClient, service: BroadcastService, users: Users) -> None:
    evening = _daily(service, users, "Bản tin chiều", "xa-test", "17:00")
    _daily(service, users, "Tin thôn B", "thon-b", "06:00")
    login(client, "officer")
    page = client.get(WEEK).get_data(as_text=True)
    assert "Từ 07/01/2030 đến 13/01/2030" in page
    assert "Thứ Hai <small>07/01</small>" in _day(page, 1) and "13/01" in _day(page, 7)
    for index in range(1, 8):
        day = _day(page, index)
        assert re.search(r">06:00</time>–<time[^>]*>06:0\d</time>", day), day
        assert ">17:00</time>" in day and "Bản tin chiều" in day and "Thông thường" in day
        assert "Hằng ngày" in day
    assert "Trùng giờ" not in page
    assert f'href="/bulletins/{_schedule_bulletin(service, evening)}"' in page
    assert 'rel="prev" href="/calendar/?zone=xa-test&amp;week=2029-12-31"' in page
    assert 'rel="next" href="/calendar/?zone=xa-test&amp;week=2030-01-14"' in page
    village = client.get("/calendar/?zone=thon-a&week=2030-01-09").get_data(as_text=True)
    assert "Bản tin chiều" in village and "Tin thôn B" not in village


def _schedule_bulletin(service: BroadcastService, schedule_id: int) -> int:
    with service.db.session() as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None
        return schedule.bulletin_id


def test_conflicts_are_said_in_words(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    _daily(service, users, "Bản tin chiều", "thon-a", "17:00")
    _clashing(service, "xa-test", "17:00")
    login(client, "viewer")
    page = client.get(WEEK).get_data(as_text=True)
    assert 'id="conflicts"' in page and "14 lượt phát trùng giờ" in page
    monday = _day(page, 1)
    assert monday.count('class="entry priority-emergency conflict"') == 1
    assert "⚠ Trùng giờ</strong>" in monday
    assert "với “Bản tin chiều” lúc 17:00" in monday
    assert "với “&lt;b&gt;Tin trùng&lt;/b&gt;” lúc 17:00" in monday and "<b>" not in page
    assert "Khẩn cấp" in monday


def test_schedules_are_cancelled_from_the_calendar(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    schedule_id = _daily(service, users, "Bản tin chiều", "thon-a", "17:00")
    login(client, "officer")
    page = client.get(WEEK).get_data(as_text=True)
    assert f'id="schedule-{schedule_id}"' in page and "Hủy lịch</button>" in page
    token = csrf_token(client, WEEK)
    response = client.post(
        f"/bulletins/schedules/{schedule_id}/cancel", data={"csrf_token": token, "next": WEEK}
    )
    assert response.status_code == 302 and response.headers["Location"] == WEEK
    page = client.get(WEEK).get_data(as_text=True)
    assert "Bản tin chiều" not in page and "Đã hủy lịch phát." in page
    again = client.post(
        f"/bulletins/schedules/{schedule_id}/cancel",
        data={"csrf_token": token, "next": WEEK},
        follow_redirects=True,
    )
    assert "lịch phát này đã kết thúc hoặc đã bị hủy trước đó" in again.get_data(as_text=True)
    response = client.post(
        f"/bulletins/schedules/{schedule_id}/cancel",
        data={"csrf_token": token, "next": "//evil.example/"},
    )
    assert response.headers["Location"] == "/bulletins/"


def test_who_sees_which_calendar(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    _daily(service, users, "Bản tin chiều", "xa-test", "17:00")
    for name in ("leader", "viewer"):
        login(client, name)
        page = client.get(WEEK).get_data(as_text=True)
        assert "Bản tin chiều" in page and "Hủy lịch</button>" not in page
        assert 'href="/calendar/"' in page  # the nav link
        client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "head-a")
    page = client.get("/calendar/").get_data(as_text=True)
    assert 'Lịch phát theo tuần: <span lang="vi">Thôn A</span>' in page and "Bản tin chiều" in page
    assert 'href="/bulletins/' not in page  # no bulletin pages for a village head
    assert client.get("/calendar/?zone=thon-a&week=2030-01-09").status_code == 200
    assert client.get("/calendar/?zone=thon-b").status_code == 403
    assert client.get(WEEK).status_code == 403
    login(client, "admin")
    assert client.get("/calendar/?zone=thon-z").status_code == 404
    response = client.get("/calendar/?zone=thon-a&week=tuan-sau", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "(week)" in page and 'Lịch phát theo tuần: <span lang="vi">Thôn A</span>' in page


def test_a_province_s_week_stays_small(client: FlaskClient, service: BroadcastService) -> None:
    """A province editor's week lists the province-wide runs and one line per commune: adding
    18 communes (each with 21 runs in the week) adds a few hundred bytes each, not pages."""
    seed_calendar_province(service)
    add_calendar_communes(service, 1, 2)
    login(client, "lich-editor")
    week = "/calendar/?week=2030-01-09"
    small = client.get(week).get_data(as_text=True)
    add_calendar_communes(service, 3, 20)
    page = client.get(week).get_data(as_text=True)
    assert len(page.encode()) - len(small.encode()) < 18 * 600
    assert page.count("Tin toàn tỉnh") >= 7 and "Tin xã 001" not in page
    assert 'id="communes"' in page and page.count('href="/calendar/?zone=lich-xa-') == 20
    assert "Xã Lịch 020" in page and "lich-xa-020-t1" not in page
    commune = client.get("/calendar/?zone=lich-xa-003&week=2030-01-09").get_data(as_text=True)
    assert "Tin xã 003" in commune and 'id="communes"' not in commune
