"""Two communes under one province: each commune's officer, leader, viewer and village head see
and act only in their commune (bulletins, schedules, broadcasts and their live view, calendar,
reports and CSV, dashboard receivers); what the province sends plays in both and is shown to
both read-only; an installation-wide account sees everything.

The tree is built here (`two_communes`), not from a shared fixture, so these tests do not
depend on how another module seeds a province."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_check import CheckedClient
from service_support import (
    PASSWORD,
    RecordingDispatcher,
    add_devices,
    approved_bulletin,
    broadcast_status,
    wait_for,
)
from web_support import csrf_token, login

from broadcast import clock
from broadcast.const import Role, ZoneKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.store.models import utcnow
from web import create_app

COMMUNE_ROLES = (
    ("officer", Role.OFFICER),
    ("leader", Role.LEADER),
    ("viewer", Role.VIEWER),
)


@dataclass
class Province:
    """User ids by name ("root", "officer-a", "head-b", …) and their API tokens."""

    ids: dict[str, int]
    tokens: dict[str, str]

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


@pytest.fixture
def two_communes(service: BroadcastService) -> Province:
    """tinh-t → xa-a → thon-a1 (loa-a1), tinh-t → xa-b → thon-b1 (loa-b1); an unbound admin
    "root", and per commune an officer, leader, viewer and a village head."""
    with service.db.session() as session:
        zones.create_zone(session, "tinh-t", "Tỉnh Thử", ZoneKind.PROVINCE, code="99")
        for letter in "ab":
            commune = f"xa-{letter}"
            zones.create_zone(session, commune, f"Xã {letter.upper()}", ZoneKind.COMMUNE, "tinh-t")
            zones.create_zone(
                session, f"thon-{letter}1", f"Thôn {letter.upper()}1", ZoneKind.VILLAGE, commune
            )
    add_devices(service, {"loa-a1": "thon-a1", "loa-b1": "thon-b1"})
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    with service.db.session() as session:
        wanted: list[tuple[str, Role, str | None]] = [("root", Role.ADMIN, None)]
        for letter in "ab":
            wanted += [(f"{name}-{letter}", role, f"xa-{letter}") for name, role in COMMUNE_ROLES]
            wanted.append((f"head-{letter}", Role.VILLAGE_HEAD, f"thon-{letter}1"))
        for name, role, zone_id in wanted:
            user = accounts.create_user(session, name, PASSWORD, role, zone_id)
            ids[name] = user.id
            tokens[name] = accounts.create_token(session, user)
    return Province(ids, tokens)


@pytest.fixture
def scoped_app(
    service: BroadcastService, two_communes: Province, sent: RecordingDispatcher
) -> Flask:
    app = create_app(service, {"TESTING": True})
    app.test_client_class = CheckedClient
    return app


@pytest.fixture
def web(scoped_app: Flask) -> Iterator[FlaskClient]:
    yield scoped_app.test_client()


def _api(client: FlaskClient, province: Province, name: str, method: str, path: str,
         **kwargs: Any) -> Any:  # fmt: skip
    headers = {"Authorization": f"Bearer {province.tokens[name]}"}
    return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)


def _as(client: FlaskClient, name: str) -> FlaskClient:
    """A new browser of the same app, signed in as `name`."""
    browser = client.application.test_client()
    login(browser, name)
    return browser


def _announced(service: BroadcastService, user_id: int, zone: str, text: str) -> int:
    broadcast_id = service.announcements.announce(user_id, text, [zone], "emergency", 1)
    wait_for(lambda: broadcast_status(service, broadcast_id) == "dispatched", 60, "dispatched")
    return broadcast_id


@dataclass
class Sent:
    province: int  # by root to tinh-t: sounds in both communes
    a: int  # by officer-a to xa-a
    b: int  # by officer-b to xa-b


@pytest.fixture
def sent_three(service: BroadcastService, two_communes: Province, scoped_app: Flask) -> Sent:
    return Sent(
        province=_announced(service, two_communes["root"], "tinh-t", "Tin của tỉnh"),
        a=_announced(service, two_communes["officer-a"], "xa-a", "Tin xã A"),
        b=_announced(service, two_communes["officer-b"], "xa-b", "Tin xã B"),
    )


# --- bulletins --------------------------------------------------------------------------------


def test_a_commune_never_sees_the_other_commune_s_bulletins(
    service: BroadcastService, two_communes: Province, web: FlaskClient
) -> None:
    desk, p = service.bulletins, two_communes
    mine = desk.create_bulletin(p["officer-a"], "Lịch tiêm phòng xã A", "Tiêm phòng ngày mai.")
    theirs = desk.create_bulletin(p["officer-b"], "Lịch họp xã B", "Họp dân tối nay.")
    desk.submit(p["officer-a"], mine)
    desk.submit(p["officer-b"], theirs)
    for name in ("officer-a", "leader-a", "viewer-a"):
        listed = [row["id"] for row in _api(web, p, name, "GET", "/bulletins").get_json()]
        assert listed == [mine], name
        assert _api(web, p, name, "GET", f"/bulletins/{theirs}").status_code == 404, name
        assert _api(web, p, name, "GET", f"/bulletins/{mine}").status_code == 200, name
        client = _as(web, name)
        page = client.get("/bulletins/?status=all").get_data(as_text=True)
        assert "Lịch tiêm phòng xã A" in page and "Lịch họp xã B" not in page, name
        assert client.get(f"/bulletins/{theirs}").status_code == 404, name
    index = desk.index(p["officer-a"], "")
    assert sum(index.counts.values()) == 1  # the other commune's are not even counted
    # acting on it is the same as it not existing
    assert (
        _api(web, p, "leader-a", "POST", f"/bulletins/{theirs}/approve", json={}).status_code == 404
    )
    assert _api(web, p, "leader-a", "POST", f"/bulletins/{theirs}/reject",
                json={"comment": "không"}).status_code == 404  # fmt: skip
    assert _api(web, p, "officer-a", "POST", f"/bulletins/{theirs}/submit").status_code == 404
    assert _api(web, p, "officer-a", "POST", f"/bulletins/{theirs}/send",
                json={"zones": ["xa-a"]}).status_code == 404  # fmt: skip
    client = _as(web, "leader-a")
    token = csrf_token(client, f"/bulletins/{mine}")
    assert (
        client.post(f"/bulletins/{theirs}/preview", data={"csrf_token": token}).status_code == 404
    )
    # the leader approves their own commune's
    assert (
        _api(web, p, "leader-a", "POST", f"/bulletins/{mine}/approve", json={}).status_code == 200
    )
    # the village head reads no bulletins at all; the installation-wide admin reads both
    assert _api(web, p, "head-a", "GET", f"/bulletins/{mine}").status_code == 403
    both = {row["id"] for row in _api(web, p, "root", "GET", "/bulletins").get_json()}
    assert both == {mine, theirs}
    assert _api(web, p, "root", "POST", f"/bulletins/{theirs}/approve", json={}).status_code == 200


def test_a_bulletin_opens_with_the_writer_s_commune(
    service: BroadcastService, two_communes: Province
) -> None:
    desk, p = service.bulletins, two_communes
    text = "Thông báo lịch thu gom rác thải sinh hoạt."
    assert desk.prepare_script(p["officer-a"], text).text.startswith("Đài truyền thanh xã A ")
    assert desk.prepare_script(p["officer-b"], text).text.startswith("Đài truyền thanh xã B ")
    # an installation-wide account of two communes speaks for neither
    assert desk.prepare_script(p["root"], text).text == text


def test_bulletins_are_sent_only_to_the_writer_s_commune(
    service: BroadcastService, two_communes: Province, web: FlaskClient
) -> None:
    p = two_communes
    bulletin = approved_bulletin(
        service, p["officer-a"], "Tin xã A", "Nội dung.", reviewer=p["leader-a"]
    )
    for zone in ("xa-b", "thon-b1", "tinh-t"):
        response = _api(
            web, p, "officer-a", "POST", f"/bulletins/{bulletin}/send", json={"zones": [zone]}
        )
        assert response.status_code == 403, zone


# --- schedules and the calendar ---------------------------------------------------------------


def _scheduled(service: BroadcastService, user_id: int, bulletin_id: int, zone: str) -> int:
    at = clock.to_local(utcnow() + timedelta(days=1))
    assert at is not None
    return service.scheduling.schedule(
        user_id,
        ScheduleRequest(
            bulletin_id=bulletin_id,
            kind="once",
            zone_ids=[zone],
            priority="normal",
            run_at=at.replace(hour=6 + bulletin_id, minute=0).strftime("%Y-%m-%dT%H:%M"),
        ),
    )


@dataclass
class Planned:
    province: int
    a: int
    b: int


@pytest.fixture
def planned(service: BroadcastService, two_communes: Province, scoped_app: Flask) -> Planned:
    p = two_communes
    ids = {}
    for key, author, reviewer, zone in (
        ("province", "root", "root", "tinh-t"),
        ("a", "officer-a", "leader-a", "xa-a"),
        ("b", "officer-b", "leader-b", "xa-b"),
    ):
        bulletin = approved_bulletin(service, p[author], f"Lịch {key}", f"Nội dung {key}.",
                                     reviewer=p[reviewer])  # fmt: skip
        ids[key] = _scheduled(service, p[author], bulletin, zone)
    return Planned(**ids)


def test_schedules_are_listed_where_they_sound_and_cancelled_only_by_their_commune(
    service: BroadcastService, two_communes: Province, planned: Planned, web: FlaskClient
) -> None:
    p = two_communes
    for name in ("officer-a", "leader-a", "viewer-a"):
        listed = {row["id"] for row in _api(web, p, name, "GET", "/schedules").get_json()}
        assert listed == {planned.province, planned.a}, name
        assert _api(web, p, name, "GET", f"/schedules/{planned.b}").status_code == 404, name
        assert _api(web, p, name, "GET", f"/schedules/{planned.province}").status_code == 200
    assert _api(web, p, "officer-a", "DELETE", f"/schedules/{planned.b}").status_code == 404
    # their own approved bulletin, to the other commune or the province; the other's bulletin
    bulletin = service.scheduling.get(p["officer-a"], planned.a).bulletin_id
    for zone in ("xa-b", "thon-b1", "tinh-t"):
        body = {"bulletin": bulletin, "kind": "daily", "time_of_day": "05:00", "zones": [zone]}
        assert _api(web, p, "officer-a", "POST", "/schedules", json=body).status_code == 403
    other = service.scheduling.get(p["officer-b"], planned.b).bulletin_id
    body = {"bulletin": other, "kind": "daily", "time_of_day": "05:00", "zones": ["xa-a"]}
    assert _api(web, p, "officer-a", "POST", "/schedules", json=body).status_code == 400
    # the province's plays here, read-only
    assert _api(web, p, "officer-a", "DELETE", f"/schedules/{planned.province}").status_code == 403
    index = service.bulletins.index(p["officer-a"], "")
    assert {s.id for s in index.schedules} == {planned.province, planned.a}
    assert index.cancellable == {planned.a}
    page = _as(web, "officer-a").get("/bulletins/?status=all").get_data(as_text=True)
    assert "Lịch province" in page and "Lịch b" not in page
    assert page.count('/cancel"') == 1  # a cancel button for their own schedule only
    everything = {row["id"] for row in _api(web, p, "root", "GET", "/schedules").get_json()}
    assert everything == {planned.province, planned.a, planned.b}
    assert _api(web, p, "officer-a", "DELETE", f"/schedules/{planned.a}").status_code == 204
    assert _api(web, p, "root", "DELETE", f"/schedules/{planned.province}").status_code == 204


def test_a_commune_s_officer_can_neither_read_nor_cancel_another_commune_s_schedule(
    service: BroadcastService, two_communes: Province, planned: Planned, web: FlaskClient
) -> None:
    """Reported at an older main: the officer of xa-a cancelled xa-b's schedule through the
    page's form (302, the schedule ended) and saw every commune's schedules with their buttons."""
    p = two_communes
    client = _as(web, "officer-a")
    page = client.get("/bulletins/?status=all").get_data(as_text=True)
    assert f"/schedules/{planned.b}/" not in page and "Lịch b" not in page
    assert f"/schedules/{planned.a}/cancel" in page
    token = csrf_token(client, "/bulletins/")
    response = client.post(f"/bulletins/schedules/{planned.b}/cancel", data={"csrf_token": token})
    assert response.status_code == 404
    assert _api(web, p, "officer-a", "GET", f"/schedules/{planned.b}").status_code == 404
    assert _api(web, p, "officer-a", "DELETE", f"/schedules/{planned.b}").status_code == 404
    still = service.scheduling.get(p["officer-b"], planned.b)
    assert still.active and still.ended_at is None
    assert service.scheduling.next_run(planned.b) is not None
    # the commune's own schedule is cancelled by the same form
    response = client.post(f"/bulletins/schedules/{planned.a}/cancel", data={"csrf_token": token})
    assert response.status_code == 302
    assert service.scheduling.next_run(planned.a) is None


def test_the_calendar_shows_a_commune_its_own_and_the_province_s(
    service: BroadcastService, two_communes: Province, planned: Planned, web: FlaskClient
) -> None:
    p = two_communes
    week = clock.to_local(utcnow() + timedelta(days=1))
    assert week is not None
    for name in ("officer-a", "viewer-a", "head-a"):
        cal = service.calendar.week(p[name], "", week.date())
        titles = {e.title for day in cal.days for e in day.entries}
        assert titles == {"Lịch province", "Lịch a"}, name
        assert {z.id for z in cal.zones} <= {"xa-a", "thon-a1"}, name
        client = _as(web, name)
        assert client.get("/calendar/?zone=xa-b").status_code == 403, name
        page = client.get(f"/calendar/?week={week.date().isoformat()}").get_data(as_text=True)
        assert "Lịch b" not in page and "Xã B" not in page, name
    cal = service.calendar.week(p["officer-a"], "", week.date())
    assert cal.cancellable == {planned.a}
    page = (
        _as(web, "officer-a")
        .get(f"/calendar/?week={week.date().isoformat()}")
        .get_data(as_text=True)
    )
    assert f"schedules/{planned.a}/cancel" in page
    assert f"schedules/{planned.province}/cancel" not in page
    root = service.calendar.week(p["root"], "", week.date())  # the province by default
    # a province's week: what sounds province-wide, the rest counted per commune
    assert {e.title for day in root.days for e in day.entries} == {"Lịch province"}
    assert [(c.id, c.runs, c.conflicts) for c in root.communes] == [("xa-a", 1, 0), ("xa-b", 1, 0)]
    assert [(z.id, z.depth) for z in root.zones] == [("tinh-t", 0), ("xa-a", 1), ("xa-b", 1)]
    commune = service.calendar.week(p["root"], "xa-b", week.date())
    assert {e.title for day in commune.days for e in day.entries} == {"Lịch province", "Lịch b"}
    assert not commune.communes
    assert [(z.id, z.depth) for z in commune.zones] == [
        ("tinh-t", 0), ("xa-a", 1), ("xa-b", 1), ("thon-b1", 2)
    ]  # fmt: skip


# --- broadcasts -------------------------------------------------------------------------------


def test_broadcasts_are_seen_where_they_sound(
    two_communes: Province, sent_three: Sent, web: FlaskClient
) -> None:
    p = two_communes
    for letter, own, other in (
        ("a", sent_three.a, sent_three.b),
        ("b", sent_three.b, sent_three.a),
    ):
        for name in (f"officer-{letter}", f"leader-{letter}", f"viewer-{letter}", f"head-{letter}"):
            listed = {row["id"] for row in _api(web, p, name, "GET", "/announcements").get_json()}
            assert listed == {sent_three.province, own}, name
            assert _api(web, p, name, "GET", f"/announcements/{other}").status_code == 404
            seen = _api(web, p, name, "GET", f"/announcements/{sent_three.province}")
            assert seen.status_code == 200, name
            # a province broadcast shows each commune its own receivers only
            assert [d["device"] for d in seen.get_json()["deliveries"]] == [f"loa-{letter}1"]
            client = _as(web, name)
            assert client.get(f"/announce/{other}").status_code == 404, name
            assert client.get(f"/announce/{other}/status.json").status_code == 404, name
            assert client.get(f"/announce/{other}/events").status_code == 404, name
            page = client.get(f"/announce/{sent_three.province}").get_data(as_text=True)
            assert "Tin của tỉnh" in page and f"loa-{'b' if letter == 'a' else 'a'}1" not in page
            dashboard = client.get("/").get_data(as_text=True)
            assert f"loa-{letter}1" in dashboard, name
            assert f"loa-{'b' if letter == 'a' else 'a'}1" not in dashboard, name
            assert "Tin xã " + ("B" if letter == "a" else "A") not in dashboard, name
    everything = {row["id"] for row in _api(web, p, "root", "GET", "/announcements").get_json()}
    assert everything == {sent_three.province, sent_three.a, sent_three.b}


def test_the_event_stream_follows_only_what_sounds_here(
    scoped_app: Flask, two_communes: Province, sent_three: Sent, web: FlaskClient
) -> None:
    scoped_app.config.update(LOA_EVENTS_POLL_S=0.02, LOA_EVENTS_KEEPALIVE_S=5, LOA_EVENTS_MAX_S=2)
    client = _as(web, "viewer-a")
    assert client.get(f"/announce/{sent_three.b}/events").status_code == 404
    response = client.get(f"/announce/{sent_three.province}/events", buffered=False)
    try:
        assert response.status_code == 200
        chunks = (chunk.decode() for chunk in response.response)
        first = next(chunk for chunk in chunks if chunk.startswith("event:"))
        assert first.startswith("event: state") and "loa-a1" in first and "loa-b1" not in first
    finally:
        response.close()


def test_a_province_broadcast_is_read_only_in_the_communes(
    two_communes: Province, sent_three: Sent, web: FlaskClient, service: BroadcastService
) -> None:
    p = two_communes
    for name in ("officer-a", "head-a", "officer-b"):
        response = _api(
            web, p, name, "POST", f"/announcements/{sent_three.province}/cancel", json={}
        )
        assert response.status_code == 403, name
        page = _as(web, name).get(f"/announce/{sent_three.province}").get_data(as_text=True)
        assert f"/announce/{sent_three.province}/cancel" not in page, name
    assert _api(web, p, "officer-a", "POST", f"/announcements/{sent_three.b}/cancel",
                json={}).status_code == 404  # fmt: skip
    assert broadcast_status(service, sent_three.province) == "dispatched"
    assert _api(web, p, "officer-a", "POST", f"/announcements/{sent_three.a}/cancel",
                json={}).status_code == 200  # fmt: skip
    assert _api(web, p, "root", "POST", f"/announcements/{sent_three.province}/cancel",
                json={}).status_code == 200  # fmt: skip


# --- reports and the dashboard ----------------------------------------------------------------


def _csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_reports_and_exports_hold_only_the_commune(
    two_communes: Province, sent_three: Sent, web: FlaskClient
) -> None:
    p = two_communes
    for name in ("officer-a", "leader-a", "viewer-a"):
        log = _api(web, p, name, "GET", "/reports/broadcasts").get_json()
        assert {row["id"] for row in log["broadcasts"]} == {sent_three.province, sent_three.a}
        assert _api(web, p, name, "GET", "/reports/broadcasts?zone=xa-b").status_code == 403
        client = _as(web, name)
        rows = _csv(client.get("/reports/broadcasts.csv").data)[1:]
        assert {int(row[0]) for row in rows} == {sent_three.province, sent_three.a}, name
        deliveries = _csv(client.get("/reports/deliveries.csv").data)[1:]
        assert {row[4] for row in deliveries} == {"loa-a1"}, name
        assert client.get("/reports/broadcasts.csv?zone=xa-b").status_code == 403
        monthly = _csv(client.get("/reports/monthly.csv").data)[1:]
        assert [row[1] for row in monthly] == ["xa-a", "thon-a1"], name
        page = client.get("/reports/monthly").get_data(as_text=True)
        assert "Xã B" not in page and "loa-b1" not in page, name
        summary = _api(web, p, name, "GET", f"/reports/monthly?month={_month()}").get_json()
        assert [zone["zone"] for zone in summary["zones"]] == ["xa-a", "thon-a1"]
        assert [device["device"] for device in summary["devices"]] == ["loa-a1"]
    summary = _api(web, p, "root", "GET", f"/reports/monthly?month={_month()}").get_json()
    # tree order: the province, then each commune followed by its villages
    assert [zone["zone"] for zone in summary["zones"]] == [
        "tinh-t", "xa-a", "thon-a1", "xa-b", "thon-b1"
    ]  # fmt: skip
    log = _api(web, p, "root", "GET", "/reports/broadcasts").get_json()
    assert {row["id"] for row in log["broadcasts"]} == {
        sent_three.province,
        sent_three.a,
        sent_three.b,
    }


def _month() -> str:
    local = clock.to_local(utcnow())
    assert local is not None
    return local.strftime("%Y-%m")


def test_zones_and_receivers_of_the_api_are_the_commune_s(
    two_communes: Province, web: FlaskClient
) -> None:
    p = two_communes
    for name in ("officer-a", "leader-a", "viewer-a"):
        listed = {zone["id"] for zone in _api(web, p, name, "GET", "/zones").get_json()}
        assert listed == {"xa-a", "thon-a1"}, name
        devices = {d["id"] for d in _api(web, p, name, "GET", "/devices").get_json()}
        assert devices == {"loa-a1"}, name
        assert _api(web, p, name, "GET", "/devices?zone=xa-b").status_code == 400
    devices = {d["id"] for d in _api(web, p, "head-b", "GET", "/devices").get_json()}
    assert devices == {"loa-b1"}
    devices = {d["id"] for d in _api(web, p, "root", "GET", "/devices").get_json()}
    assert devices == {"loa-a1", "loa-b1"}
