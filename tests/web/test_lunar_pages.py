"""Lunar schedules on the pages: the schedule form offers them, the week shows each day's lunar
date beside the solar one (rằm and mùng một by name, the leap month said), in both languages."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from service_support import Users, approved_bulletin
from web_support import csrf_token, login

from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.service import BroadcastService
from wire.protocol import Priority


def _day(page: str, index: int) -> str:
    return page.split(f'id="day-{index}"')[1].split("</section>")[0]


def test_the_week_shows_lunar_dates_and_lunar_runs(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Nhắc ngày rằm", "Giữ vệ sinh.")
    service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.LUNAR_MONTHLY,
            zone_ids=["xa-test"],
            priority=Priority.NORMAL,
            time_of_day="06:00",
            lunar_days=[1, 15],
            valid_from="2030-01-01",
        ),
    )
    login(client, "officer")
    # Monday 4/8/2025 … Sunday 10/8/2025: 8/8 is rằm of the leap 6th month
    page = client.get("/calendar/?zone=xa-test&week=2025-08-04").get_data(as_text=True)
    assert "Thứ Hai <small>04/08</small>" in _day(page, 1)
    assert "(11/6 nhuận âm lịch)" in _day(page, 1)
    assert '<small class="lunar lunar-mark">(Rằm tháng 6 nhuận âm lịch)</small>' in _day(page, 5)
    # Tết 2030 (Vietnam's: 2/2, China's is 3/2): its runs start with the schedule's validity
    page = client.get("/calendar/?zone=xa-test&week=2030-02-02").get_data(as_text=True)
    saturday, sunday = _day(page, 6), _day(page, 7)
    assert "Mùng 1 tháng 1 âm lịch" in saturday and "Nhắc ngày rằm" in saturday
    assert "(2/1 âm lịch)" in sunday and "Nhắc ngày rằm" not in sunday
    assert "Hằng tháng âm lịch, ngày 1, 15, lúc 06:00" in page
    english = client.get("/calendar/?zone=xa-test&week=2025-08-04&lang=en").get_data(as_text=True)
    assert "(Full moon of lunar month leap 6)" in _day(english, 5)
    assert "(lunar 11/leap 6)" in _day(english, 1)


def test_the_schedule_form_makes_lunar_schedules(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Giỗ Tổ", "Treo cờ.")
    login(client, "officer")
    url = f"/bulletins/{bulletin}"
    page = client.get(url).get_data(as_text=True)
    for field in ('value="lunar_monthly"', 'value="lunar_yearly"', 'name="lunar_days"',
                  'name="lunar_year_days"', 'name="lunar_month"'):  # fmt: skip
        assert field in page
    token = csrf_token(client, url)
    base = {"zones": ["thon-a"], "priority": "normal", "repeat": "1", "csrf_token": token}
    page = client.post(
        f"{url}/schedule",
        data={**base, "kind": "lunar_yearly", "lunar_year_days": "10", "lunar_month": "3",
              "lunar_days": "", "time_of_day": "07:00"},
        follow_redirects=True,
    ).get_data(as_text=True)  # fmt: skip
    assert "Đã đặt lịch phát." in page
    assert "Hằng năm ngày 10/3 âm lịch, lúc 07:00" in page
    page = client.post(
        f"{url}/schedule",
        data={**base, "kind": "lunar_monthly", "lunar_days": "31", "time_of_day": "18:00"},
        follow_redirects=True,
    ).get_data(as_text=True)
    flashes = " ".join(re.findall(r'<p class="flash [^"]*" role="alert">([^<]*)</p>', page))
    assert "31 không nằm trong khoảng 1 đến 30 (lunar_days)" in flashes, flashes
    page = client.post(
        f"{url}/schedule",
        data={**base, "kind": "lunar_monthly", "lunar_days": "1, 15", "time_of_day": "18:00"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Hằng tháng âm lịch, ngày 1, 15, lúc 18:00" in page
