"""Every role boundary, page by page and API call by API call, from one table.

`PAGES` and `API` say which roles may use each route; the tests check that every other role is
refused (403, or 404 where the object is hidden from them), that allowed roles get through on
the reading routes, and that the tables name every route the app has, so a new route cannot be
added without deciding who may use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from service_support import Users, approved_bulletin
from web_support import csrf_token, login

from broadcast.const import ScheduleKind
from broadcast.service import BroadcastService, ScheduleRequest
from wire.protocol import Priority

ROLES = ("admin", "officer", "leader", "head-a", "viewer")
ALL = frozenset(ROLES)
CONTENT = frozenset({"admin", "officer"})
READERS = frozenset({"admin", "officer", "leader", "viewer"})  # commune-wide readers
ANNOUNCERS = frozenset({"admin", "officer", "head-a"})
ADMIN = frozenset({"admin"})
PUBLIC = "public"


@dataclass(frozen=True)
class Objects:
    """Things the routes point at; the broadcast and schedule are in Thôn B (not head-a's)."""

    bulletin: int
    schedule: int
    broadcast: int
    user: int
    zone: str = "thon-b"
    device: str = "loa-b-01"


# endpoint: {method: allowed roles}; PUBLIC routes need no login at all
PAGES: dict[str, dict[str, Any]] = {
    "dashboard.index": {"GET": ALL},
    "auth.login": {"GET": PUBLIC, "POST": PUBLIC},
    "auth.logout": {"POST": ALL},
    "media.media": {"GET": PUBLIC},
    "favicon": {"GET": PUBLIC},  # browsers ask before anyone signs in
    "metrics.metrics": {"GET": PUBLIC},  # loopback or an admin token: tests/web/test_metrics.py
    "admin.index": {"GET": ADMIN},
    "admin.audit_log": {"GET": ADMIN},
    "admin.devices": {"GET": ADMIN, "POST": ADMIN},
    "admin.device": {"GET": ADMIN},
    "admin.device_config": {"GET": ADMIN},
    "admin.device_config_svg": {"GET": ADMIN},
    "admin.device_qr": {"GET": ADMIN},
    "admin.users": {"GET": ADMIN, "POST": ADMIN},
    "admin.set_active": {"POST": ADMIN},
    "admin.reset_password": {"POST": ADMIN},
    "admin.change_role": {"POST": ADMIN},
    "admin.zones": {"GET": ADMIN, "POST": ADMIN},
    "admin.rename_zone": {"POST": ADMIN},
    "announce.new": {"GET": ANNOUNCERS},
    "announce.prepare": {"POST": ANNOUNCERS},
    "announce.confirm": {"POST": ANNOUNCERS},
    "announce.detail": {"GET": READERS},  # a Thôn B broadcast: hidden from head-a
    "announce.events": {"GET": READERS},
    "announce.status": {"GET": READERS},
    "announce.cancel": {"POST": CONTENT},
    "bulletins.index": {"GET": READERS},
    "bulletins.detail": {"GET": READERS},
    "bulletins.new": {"GET": CONTENT, "POST": CONTENT},
    "bulletins.edit": {"GET": CONTENT, "POST": CONTENT},
    "bulletins.submit": {"POST": CONTENT},
    "bulletins.approve": {"POST": frozenset({"admin", "leader"})},
    "bulletins.reject": {"POST": frozenset({"admin", "leader"})},
    "bulletins.preview": {"POST": frozenset({"admin", "officer", "leader"})},
    "bulletins.schedule": {"POST": CONTENT},
    "bulletins.send": {"POST": CONTENT},
    "bulletins.upload_recording": {"POST": CONTENT},
    "bulletins.create_relay": {"POST": CONTENT},
    "bulletins.cancel_schedule": {"POST": CONTENT},
    "calendar.week": {"GET": READERS},  # of Thôn B
    "reports.index": {"GET": READERS},  # of Thôn B
    "reports.broadcasts_csv": {"GET": READERS},
    "reports.deliveries_csv": {"GET": READERS},
    "reports.monthly": {"GET": READERS},
    "reports.monthly_csv": {"GET": READERS},
}
ZONE_QUERY = {"calendar.week", *(name for name in PAGES if name.startswith("reports."))}

API: dict[tuple[str, str], Any] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/zones"): ALL,
    ("GET", "/devices"): ALL,
    ("GET", "/announcements"): ALL,
    ("POST", "/announcements"): ANNOUNCERS,
    ("POST", "/announcements/recording"): ANNOUNCERS,
    ("GET", "/announcements/{broadcast_id}"): READERS,
    ("POST", "/announcements/{broadcast_id}/cancel"): CONTENT,
    ("GET", "/schedules"): READERS,
    ("POST", "/schedules"): CONTENT,
    ("GET", "/schedules/{schedule_id}"): READERS,
    ("DELETE", "/schedules/{schedule_id}"): CONTENT,
    ("GET", "/bulletins"): READERS,
    ("POST", "/bulletins"): CONTENT,
    ("GET", "/bulletins/{bulletin_id}"): READERS,
    ("PATCH", "/bulletins/{bulletin_id}"): CONTENT,
    ("POST", "/bulletins/{bulletin_id}/submit"): CONTENT,
    ("POST", "/bulletins/{bulletin_id}/approve"): frozenset({"admin", "leader"}),
    ("POST", "/bulletins/{bulletin_id}/reject"): frozenset({"admin", "leader"}),
    ("POST", "/bulletins/{bulletin_id}/send"): CONTENT,
    ("GET", "/reports/broadcasts?zone=thon-b"): READERS,
    ("GET", "/reports/monthly?month=2026-11&zone=thon-b"): READERS,
}


@pytest.fixture
def objects(service: BroadcastService, users: Users) -> Objects:
    bulletin = approved_bulletin(service, users.officer, "Tin thôn B", "Họp dân thôn B.")
    schedule = service.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=["thon-b"],
            priority=Priority.NORMAL,
            time_of_day="05:10",
        ),
    )
    broadcast = service.announce(users.officer, "Thông báo thôn B.", ["thon-b"])
    return Objects(bulletin, schedule, broadcast, users.viewer)


def _page_url(app: Flask, endpoint: str, objects: Objects) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {
        "bulletin_id": objects.bulletin,
        "schedule_id": objects.schedule,
        "broadcast_id": objects.broadcast,
        "target_id": objects.user,
        "zone_id": objects.zone,
        "device_id": objects.device,
        "sha256": "0" * 64,
    }
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:\w+:)?{name}>", str(values[name]), url)
    if endpoint in ZONE_QUERY:
        url += f"?zone={objects.zone}"
    return url


def test_the_tables_name_every_route(app: Flask) -> None:
    pages, api = set(), set()
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            api |= {(method, path) for method in methods}
        elif rule.endpoint != "static":
            pages |= {(rule.endpoint, method) for method in methods}
    assert pages == {(name, method) for name, rules in PAGES.items() for method in rules}
    assert api == {(method, path.partition("?")[0]) for method, path in API}


@pytest.mark.parametrize("role", ROLES)
def test_pages_refuse_every_role_not_allowed(
    app: Flask, client: FlaskClient, objects: Objects, role: str
) -> None:
    login(client, role)
    token = csrf_token(client, "/")
    for endpoint, rules in PAGES.items():
        for method, allowed in rules.items():
            if allowed == PUBLIC or role in allowed:
                continue
            url = _page_url(app, endpoint, objects)
            data = {"csrf_token": token} if method == "POST" else None
            status = client.open(url, method=method, data=data).status_code
            assert status in (403, 404), f"{role} {method} {url}: {status}"


@pytest.mark.parametrize("role", ROLES)
def test_allowed_roles_can_read(
    app: Flask, client: FlaskClient, objects: Objects, role: str
) -> None:
    login(client, role)
    for endpoint, rules in PAGES.items():
        allowed = rules.get("GET")
        if allowed is None or allowed == PUBLIC or role not in allowed:
            continue
        if endpoint == "announce.events":
            continue  # a stream: tests/web/test_announce.py reads it with bounded reads
        url = _page_url(app, endpoint, objects)
        status = client.get(url).status_code
        assert status in (200, 302), f"{role} GET {url}: {status}"


def test_pages_need_a_login(app: Flask, client: FlaskClient, objects: Objects) -> None:
    for endpoint, rules in PAGES.items():
        for method, allowed in rules.items():
            if allowed == PUBLIC:
                continue
            url = _page_url(app, endpoint, objects)
            response = client.open(url, method=method)
            assert response.status_code in (302, 400, 401), f"{method} {url}"
            if response.status_code == 302:
                assert "/auth/login" in response.headers["Location"], url


# what each call accepts (an unknown field is refused whoever sends it)
BODIES: dict[str, dict[str, Any] | None] = {
    "/announcements/{broadcast_id}/cancel": {"correction": "Thử."},
    "/bulletins": {"text": "Thử."},
    "/bulletins/{bulletin_id}": {"text": "Thử."},
    "/bulletins/{bulletin_id}/approve": {"comment": "Thử."},
    "/bulletins/{bulletin_id}/reject": {"comment": "Thử."},
    "/bulletins/{bulletin_id}/send": {"zones": ["thon-b"]},
    "/schedules/{schedule_id}": None,
}


@pytest.mark.parametrize("role", ROLES)
def test_api_refuses_every_role_not_allowed(
    client: FlaskClient, objects: Objects, tokens: dict[str, str], role: str
) -> None:
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    for (method, path), allowed in API.items():
        url = "/api/v1" + path.format(
            broadcast_id=objects.broadcast,
            schedule_id=objects.schedule,
            bulletin_id=objects.bulletin,
        )
        if allowed == PUBLIC:
            assert client.open(url, method=method).status_code == 200
            continue
        assert client.open(url, method=method).status_code == 401, f"no token: {method} {url}"
        if role in allowed:
            continue
        body = BODIES.get(path, {"text": "Thử.", "zones": ["thon-b"]}) if method != "GET" else None
        status = client.open(url, method=method, json=body, headers=headers).status_code
        assert status in (403, 404), f"{role} {method} {url}: {status}"
