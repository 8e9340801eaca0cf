"""The calendar feed (.ics) an officer's phone subscribes to: it parses, carries the lunar
schedule's runs on the right days, answers only its own secret link, and shows another
commune's account nothing of this commune's programme."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import icalendar
from flask.testing import FlaskClient
from service_support import Users, approved_bulletin, seed_two_communes
from web_support import csrf_token, login

from broadcast.const import LOCAL_TZ, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.programme import lunar
from broadcast.service import BroadcastService
from broadcast.store.models import User
from wire.protocol import Priority

TITLE = "Nhắc rằm, mùng một"


def _feed_url(client: FlaskClient) -> str:
    page = client.get("/calendar/").get_data(as_text=True)
    match = re.search(
        r'id="feed-url" readonly value="http://localhost(/calendar/feed/[^"]+)"', page
    )
    assert match is not None, page
    assert 'href="webcal://localhost/calendar/feed/' in page
    return match.group(1)


def _events(client: FlaskClient, url: str) -> list[icalendar.Event]:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.get_data())
    return list(calendar.walk("VEVENT"))


def _lunar_schedule(service: BroadcastService, users: Users) -> None:
    bulletin = approved_bulletin(service, users.officer, TITLE, "Giữ gìn vệ sinh.")
    service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.LUNAR_MONTHLY,
            zone_ids=["xa-test"],
            priority=Priority.NORMAL,
            time_of_day="06:00",
            lunar_days=[1, 15],
        ),
    )


def _expected_days(weeks: int) -> set[date]:
    """The local days of mùng một and rằm from this week's Monday over `weeks` weeks, whose
    06:00 is still ahead (runs before the schedule was made are not shown)."""
    now = datetime.now(LOCAL_TZ)
    monday = now.date() - timedelta(days=now.weekday())
    days = (monday + timedelta(days=offset) for offset in range(7 * weeks))
    return {
        day
        for day in days
        if lunar.lunar_day(day).day in (1, 15)
        and datetime.combine(day, datetime.min.time().replace(hour=6), tzinfo=LOCAL_TZ) > now
    }


def test_the_feed_has_the_lunar_runs_on_their_days(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    _lunar_schedule(service, users)
    login(client, "officer")
    url = _feed_url(client)
    events = _events(client, url)
    mine = [event for event in events if str(event["SUMMARY"]) == TITLE]
    starts = [event.decoded("DTSTART") for event in mine]
    assert all(start.tzinfo is not None for start in starts)
    local = {start.astimezone(LOCAL_TZ) for start in starts}
    assert {at.date() for at in local} == _expected_days(8)
    assert {(at.hour, at.minute) for at in local} == {(6, 0)}
    assert len({str(event["UID"]) for event in mine}) == len(mine)
    assert all("âm lịch" in str(event["DESCRIPTION"]) for event in mine)
    assert all(event.decoded("DTEND") > event.decoded("DTSTART") for event in mine)
    longer = _events(client, url + "?weeks=12")
    assert len([e for e in longer if str(e["SUMMARY"]) == TITLE]) >= len(mine)


def test_the_link_is_secret_and_revocable(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    login(client, "officer")
    url = _feed_url(client)
    assert client.get(url).status_code == 200
    user_id, token = re.findall(r"/calendar/feed/(\d+)/([0-9a-f]+)\.ics", url)[0]
    assert int(user_id) == users.officer and len(token) == 32
    assert client.get(f"/calendar/feed/{user_id}/{'0' * 32}.ics").status_code == 404
    assert client.get(f"/calendar/feed/{users.viewer}/{token}.ics").status_code == 404
    assert client.get(f"/calendar/feed/99999/{token}.ics").status_code == 404
    client.post("/calendar/feed/renew", data={"csrf_token": csrf_token(client, "/calendar/")})
    assert client.get(url).status_code == 404  # the old link is revoked
    renewed = _feed_url(client)
    assert renewed != url and client.get(renewed).status_code == 200
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/calendar/")})
    assert client.get(renewed).status_code == 200  # no session needed
    with service.db.session() as session:
        user = session.get(User, users.officer)
        assert user is not None
        user.active = False
    assert client.get(renewed).status_code == 404


def test_another_communes_account_sees_nothing_of_this_one(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    seed_two_communes(service)
    _lunar_schedule(service, users)
    login(client, "an-officer")
    events = _events(client, _feed_url(client) + "?weeks=26")
    assert [str(event["SUMMARY"]) for event in events] == []
    assert client.get("/calendar/?zone=xa-test").status_code == 403


def test_the_feed_speaks_the_accounts_language(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    _lunar_schedule(service, users)
    with service.db.session() as session:
        user = session.get(User, users.officer)
        assert user is not None
        user.locale = "en"
    login(client, "officer")
    response = client.get(_feed_url(client))
    calendar = icalendar.Calendar.from_ical(response.get_data())
    assert str(calendar["X-WR-CALNAME"]).startswith("Loa: programme of")
    descriptions = [str(event["DESCRIPTION"]) for event in calendar.walk("VEVENT")]
    assert descriptions and all("lunar" in text for text in descriptions)
