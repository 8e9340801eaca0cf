"""Every role boundary, page by page and API call by API call, from `broadcast.people.permissions`.

`PAGES` and `API` say which `Action` each route needs (or that it is public, or needs only a
sign-in); who may use it is read from the permissions table, never restated here. The tests
check that every other role is refused (403, or 404 where the object is hidden from them), that
allowed roles get through on the reading routes, and that the tables name every route the app
has, so a new route cannot be added without deciding which action it is.
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

from broadcast.const import Role, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.people import permissions
from broadcast.people.permissions import Action
from broadcast.service import BroadcastService
from wire.protocol import Priority

# the users of the fixtures and their roles; head-a is the village head of Thôn A
USERS = {
    "admin": Role.ADMIN,
    "officer": Role.OFFICER,
    "leader": Role.LEADER,
    "head-a": Role.VILLAGE_HEAD,
    "viewer": Role.VIEWER,
}
ROLES = tuple(USERS)
BOUND_TO = {"head-a": "thon-a"}  # the others are installation-wide (no zone)
PUBLIC = "public"
SIGNED_IN = "signed in"  # any role, e.g. to sign out


@dataclass(frozen=True)
class InThonB:
    """The route acts in Thôn B (on an object there, or `?zone=thon-b`): a role that may do
    `action` only within its own village is refused, as head-a's village is Thôn A."""

    action: Action


@dataclass(frozen=True)
class ProvinceLevel:
    """The route reads a whole province (/province/): a role that may do `action`, on an
    account bound to a province or to no zone; commune and village accounts are refused."""

    action: Action


Need = Action | InThonB | ProvinceLevel | str


def allowed_users(need: Need) -> frozenset[str] | str:
    """Who may use a route that needs `need`, from the permissions table."""
    if need == PUBLIC:
        return PUBLIC
    if need == SIGNED_IN:
        return frozenset(USERS)
    if isinstance(need, InThonB):
        return frozenset(
            name
            for name, role in USERS.items()
            if permissions.allowed(role, need.action) and BOUND_TO.get(name) in (None, "thon-b")
        )
    if isinstance(need, ProvinceLevel):  # no account of the fixtures is bound to a province
        return frozenset(
            name
            for name, role in USERS.items()
            if permissions.allowed(role, need.action) and BOUND_TO.get(name) is None
        )
    assert isinstance(need, Action), need
    return frozenset(name for name, role in USERS.items() if permissions.allowed(role, need))


@dataclass(frozen=True)
class Objects:
    """Things the routes point at; the broadcast and schedule are in Thôn B (not head-a's)."""

    bulletin: int
    schedule: int
    broadcast: int
    user: int
    forward: int  # the province bulletin in the commune's inbox
    zone: str = "thon-b"
    device: str = "loa-b-01"


# endpoint: {method: what it needs}
PAGES: dict[str, dict[str, Need]] = {
    "dashboard.index": {"GET": Action.VIEW},
    "auth.login": {"GET": PUBLIC, "POST": PUBLIC},
    "auth.logout": {"POST": SIGNED_IN},
    "media.media": {"GET": PUBLIC},
    "favicon": {"GET": PUBLIC},  # browsers ask before anyone signs in
    "metrics.metrics": {"GET": PUBLIC},  # loopback or an admin token: tests/web/test_metrics.py
    "admin.index": {"GET": Action.ADMINISTER},
    "admin.audit_log": {"GET": Action.ADMINISTER},
    "admin.devices": {"GET": Action.ADMINISTER, "POST": Action.ADMINISTER},
    "admin.device": {"GET": Action.ADMINISTER},
    "admin.device_config": {"GET": Action.ADMINISTER},
    "admin.device_config_svg": {"GET": Action.ADMINISTER},
    "admin.device_qr": {"GET": Action.ADMINISTER},
    "admin.users": {"GET": Action.ADMINISTER, "POST": Action.ADMINISTER},
    "admin.set_active": {"POST": Action.ADMINISTER},
    "admin.reset_password": {"POST": Action.ADMINISTER},
    "admin.change_role": {"POST": Action.ADMINISTER},
    "admin.zones": {"GET": Action.ADMINISTER, "POST": Action.ADMINISTER},
    "admin.rename_zone": {"POST": Action.ADMINISTER},
    "announce.new": {"GET": Action.ANNOUNCE},
    "announce.prepare": {"POST": Action.ANNOUNCE},
    "announce.confirm": {"POST": Action.ANNOUNCE},
    "announce.detail": {"GET": InThonB(Action.VIEW)},
    "announce.events": {"GET": InThonB(Action.VIEW)},
    "announce.status": {"GET": InThonB(Action.VIEW)},
    "announce.cancel": {"POST": InThonB(Action.CANCEL_BROADCAST)},
    "bulletins.index": {"GET": Action.READ_BULLETINS},
    "bulletins.detail": {"GET": Action.READ_BULLETINS},
    "bulletins.new": {"GET": Action.WRITE_BULLETIN, "POST": Action.WRITE_BULLETIN},
    "bulletins.edit": {"GET": Action.WRITE_BULLETIN, "POST": Action.WRITE_BULLETIN},
    "bulletins.submit": {"POST": Action.WRITE_BULLETIN},
    "bulletins.approve": {"POST": Action.APPROVE_BULLETIN},
    "bulletins.reject": {"POST": Action.APPROVE_BULLETIN},
    "bulletins.preview": {"POST": Action.PREVIEW_BULLETIN},
    "bulletins.schedule": {"POST": Action.SCHEDULE},
    "bulletins.send": {"POST": Action.WRITE_BULLETIN},
    "bulletins.upload_recording": {"POST": Action.WRITE_BULLETIN},
    "bulletins.create_relay": {"POST": Action.WRITE_BULLETIN},
    "bulletins.cancel_schedule": {"POST": Action.SCHEDULE},
    "calendar.week": {"GET": InThonB(Action.VIEW)},
    "province_bulletins.index": {"GET": Action.SEND_DOWN, "POST": Action.SEND_DOWN},
    "province_bulletins.detail": {"GET": Action.SEND_DOWN},
    "province_bulletins.send": {"POST": Action.SEND_DOWN},
    "province_bulletins.inbox": {"GET": Action.SCHEDULE},
    "province_bulletins.place": {"POST": Action.SCHEDULE},
    "province_bulletins.decline": {"POST": Action.SCHEDULE},
    "province_bulletins.head": {"POST": Action.SCHEDULE},
    "province_bulletins.move": {"POST": Action.SCHEDULE},
    "reports.index": {"GET": InThonB(Action.READ_REPORTS)},
    "reports.broadcasts_csv": {"GET": InThonB(Action.READ_REPORTS)},
    "reports.deliveries_csv": {"GET": InThonB(Action.READ_REPORTS)},
    "reports.monthly": {"GET": InThonB(Action.READ_REPORTS)},
    "reports.monthly_csv": {"GET": InThonB(Action.READ_REPORTS)},
    "province.index": {"GET": ProvinceLevel(Action.READ_REPORTS)},
    "province.monthly": {"GET": ProvinceLevel(Action.READ_REPORTS)},
    "province.monthly_csv": {"GET": ProvinceLevel(Action.READ_REPORTS)},
}
ZONE_QUERY = {"calendar.week", *(name for name in PAGES if name.startswith("reports."))}

API: dict[tuple[str, str], Need] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/zones"): Action.VIEW,
    ("GET", "/devices"): Action.VIEW,
    ("GET", "/announcements"): Action.VIEW,
    ("POST", "/announcements"): Action.ANNOUNCE,
    ("POST", "/announcements/recording"): Action.ANNOUNCE,
    ("GET", "/announcements/{broadcast_id}"): InThonB(Action.VIEW),
    ("POST", "/announcements/{broadcast_id}/cancel"): InThonB(Action.CANCEL_BROADCAST),
    ("GET", "/schedules"): Action.READ_BULLETINS,
    ("POST", "/schedules"): Action.SCHEDULE,
    ("GET", "/schedules/{schedule_id}"): Action.READ_BULLETINS,
    ("DELETE", "/schedules/{schedule_id}"): Action.SCHEDULE,
    ("GET", "/bulletins"): Action.READ_BULLETINS,
    ("POST", "/bulletins"): Action.WRITE_BULLETIN,
    ("GET", "/bulletins/{bulletin_id}"): Action.READ_BULLETINS,
    ("PATCH", "/bulletins/{bulletin_id}"): Action.WRITE_BULLETIN,
    ("POST", "/bulletins/{bulletin_id}/submit"): Action.WRITE_BULLETIN,
    ("POST", "/bulletins/{bulletin_id}/approve"): Action.APPROVE_BULLETIN,
    ("POST", "/bulletins/{bulletin_id}/reject"): Action.APPROVE_BULLETIN,
    ("POST", "/bulletins/{bulletin_id}/send"): Action.WRITE_BULLETIN,
    ("GET", "/province-bulletins"): Action.SEND_DOWN,
    ("POST", "/province-bulletins"): Action.SEND_DOWN,
    ("GET", "/province-bulletins/{bulletin_id}"): Action.SEND_DOWN,
    ("GET", "/province-bulletins/inbox"): Action.SCHEDULE,
    ("POST", "/province-bulletins/inbox/{forward_id}/place"): Action.SCHEDULE,
    ("POST", "/province-bulletins/inbox/{forward_id}/decline"): Action.SCHEDULE,
    ("POST", "/province-bulletins/inbox/{forward_id}/head"): Action.SCHEDULE,
    ("POST", "/province-bulletins/inbox/reorder"): Action.SCHEDULE,
    ("POST", "/source/bulletins"): Action.FEED,
    ("POST", "/source/cap"): Action.FEED,
    ("GET", "/source/items"): Action.FEED,
    ("GET", "/source/items/{item_id}"): Action.FEED,
    ("GET", "/reports/broadcasts?zone=thon-b"): InThonB(Action.READ_REPORTS),
    ("GET", "/reports/monthly?month=2026-11&zone=thon-b"): InThonB(Action.READ_REPORTS),
    ("GET", "/province/dashboard"): ProvinceLevel(Action.READ_REPORTS),
    ("GET", "/province/monthly?month=2026-11"): ProvinceLevel(Action.READ_REPORTS),
}


def test_every_action_guards_a_route() -> None:
    """No row of the table is dead: each action but the four-eyes exception (checked in
    tests/broadcast/desks/test_bulletins.py) is what some route needs."""
    needs = [*(need for rules in PAGES.values() for need in rules.values()), *API.values()]
    named = {need.action if isinstance(need, InThonB | ProvinceLevel) else need for need in needs}
    assert set(Action) - named == {Action.APPROVE_OWN_BULLETIN}


@pytest.fixture
def objects(service: BroadcastService, users: Users) -> Objects:
    bulletin = approved_bulletin(service, users.officer, "Tin thôn B", "Họp dân thôn B.")
    schedule = service.scheduling.schedule(
        users.officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=["thon-b"],
            priority=Priority.NORMAL,
            time_of_day="05:10",
        ),
    )
    broadcast = service.announcements.announce(users.officer, "Thông báo thôn B.", ["thon-b"])
    province = service.bulletins.create_bulletin(users.admin, "Tin tỉnh", "Tin từ tỉnh.")
    [forward] = service.source_bulletins.send_down(users.admin, province, ["xa-test"])
    return Objects(bulletin, schedule, broadcast, users.viewer, forward)


def _page_url(app: Flask, endpoint: str, objects: Objects) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {
        "bulletin_id": objects.bulletin,
        "schedule_id": objects.schedule,
        "broadcast_id": objects.broadcast,
        "target_id": objects.user,
        "forward_id": objects.forward,
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
        for method, need in rules.items():
            allowed = allowed_users(need)
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
        need = rules.get("GET")
        allowed = None if need is None else allowed_users(need)
        if allowed is None or allowed == PUBLIC or role not in allowed:
            continue
        if endpoint == "announce.events":
            continue  # a stream: tests/web/test_announce.py reads it with bounded reads
        url = _page_url(app, endpoint, objects)
        status = client.get(url).status_code
        assert status in (200, 302), f"{role} GET {url}: {status}"


def test_pages_need_a_login(app: Flask, client: FlaskClient, objects: Objects) -> None:
    for endpoint, rules in PAGES.items():
        for method, need in rules.items():
            if need == PUBLIC:
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
    "/province-bulletins": {"text": "Thử.", "communes": "all"},
    "/province-bulletins/inbox/{forward_id}/place": {"run_at": "2099-01-01T06:00"},
    "/province-bulletins/inbox/{forward_id}/decline": {"reason": "Thử."},
    "/province-bulletins/inbox/reorder": {"order": [1]},
}


@pytest.mark.parametrize("role", ROLES)
def test_api_refuses_every_role_not_allowed(
    client: FlaskClient, objects: Objects, tokens: dict[str, str], role: str
) -> None:
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    for (method, path), need in API.items():
        allowed = allowed_users(need)
        url = "/api/v1" + path.format(
            broadcast_id=objects.broadcast,
            schedule_id=objects.schedule,
            bulletin_id=objects.bulletin,
            forward_id=objects.forward,
            item_id=1,
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
