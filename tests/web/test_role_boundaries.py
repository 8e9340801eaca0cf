"""Every role boundary, page by page and API call by API call, from `broadcast.people.permissions`
and the zone each account is bound to.

`PAGES` and `API` say which `Action` each route needs (or that it is public, or needs only a
sign-in); who may use it is read from the permissions table and the accounts' zones, never
restated here. The fixture is a province of two communes (`service_support.seed_every_role`)
with an account of every role at every level it may be bound to, and in each commune a
bulletin, a schedule, a broadcast, a province bulletin in its inbox, a receiver, a user and a
village. A route acting on one of those objects may be used by an account whose zone's subtree
holds it (or an installation-wide one); routes reading a whole province (`ProvinceLevel`) act on
the province zone. Every other account is refused (403, or 404 where the object is hidden; 400
where a form, a body or a filter names an object out of reach, `_refusals`), allowed accounts
read with 200 and see nothing of a commune outside their zone — so commune A's accounts read
A's objects and are refused B's — and the tables name every route the app has, so a new route
cannot be added without deciding which action it is. Writes are sent only by accounts that must
be refused, so the world is built once per module. A source system's account works over the API
only: it cannot sign in on the pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_check import CheckedClient
from service_support import (
    PASSWORD,
    RecordingDispatcher,
    approved_bulletin,
    make_service,
    seed_every_role,
)
from sqlalchemy import select
from web_support import csrf_token, login

from broadcast.const import Role, ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.people import accounts, permissions
from broadcast.people.permissions import Action
from broadcast.service import BroadcastService
from broadcast.store.models import Feedback, User, Zone
from web import create_app
from wire.protocol import Priority

PUBLIC = "public"
SIGNED_IN = "signed in"  # any account that can sign in, e.g. to sign out
PROVINCE = "tinh-thu"


@dataclass(frozen=True)
class ProvinceLevel:
    """The route reads a whole province (/province/): it acts on the province zone, so only an
    account that may do `action` and is bound to the province or to no zone may use it."""

    action: Action


@dataclass(frozen=True)
class Own:
    """The route reads an object only the account that made it may see (a source system's
    items): whoever else may do `action` is refused."""

    action: Action


Need = Action | ProvinceLevel | Own | str


@dataclass(frozen=True)
class Account:
    name: str
    id: int
    role: Role
    zone: str | None
    scope: frozenset[str] | None  # its zone and every zone below; None: installation-wide


@dataclass(frozen=True)
class Place:
    """One commune's objects that the routes point at, and the zone each one is in."""

    commune: str
    bulletin: int  # written by the commune's officer: in the commune
    schedule: int  # of that bulletin, to the village
    broadcast: int  # to the village
    province_bulletin: int  # written by the province editor, sent down to this commune only
    forward: int  # that bulletin in the commune's inbox
    feedback: int  # a listener's, on the commune's replay page, about the broadcast
    user: int  # the commune's viewer
    village: str
    device: str  # in the village
    markers: tuple[str, ...]  # text only accounts of the village, or above it, may read
    names: tuple[str, ...]  # the commune's name: read by accounts in it or above it

    def zones_of(self, kind: str) -> frozenset[str]:
        """Where the object of `kind` is: an account may act on it if one of these is in its
        zone's subtree. A province bulletin is the province's, and also the commune's it was
        sent down to (that commune sees how it fared there, not elsewhere)."""
        return frozenset(
            {
                "bulletin": {self.commune},
                "forward": {self.commune},
                "feedback": {self.commune},
                "commune": {self.commune},
                "user": {self.commune},
                "province bulletin": {PROVINCE, self.commune},
            }.get(kind, {self.village})
        )


@dataclass(frozen=True)
class World:
    app: Flask
    accounts: dict[str, Account]
    tokens: dict[str, str]
    places: dict[str, Place]  # "a", "b"
    item: int  # what the province's source system posted
    item_owner: str
    parents: dict[str, str | None]  # zone id → its parent's

    def below(self, zone: str) -> frozenset[str]:
        return _subtree(self.parents, zone)

    def of_role(self, role: Role) -> list[Account]:
        return [account for account in self.accounts.values() if account.role is role]


# endpoint: {method: what it needs}
PAGES: dict[str, dict[str, Need]] = {
    "dashboard.index": {"GET": Action.VIEW},
    "auth.login": {"GET": PUBLIC, "POST": PUBLIC},
    "live.listeners": {"POST": PUBLIC},  # Icecast asks it; the listen token is the credential
    "live.new": {"GET": Action.ANNOUNCE},
    "live.start": {"POST": Action.ANNOUNCE},
    "live.piece": {"POST": Action.ANNOUNCE},
    "live.end": {"POST": Action.CANCEL_BROADCAST},
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
    "admin.zone_voice": {"POST": Action.ADMINISTER},
    "announce.new": {"GET": Action.ANNOUNCE},
    "announce.prepare": {"POST": Action.ANNOUNCE},
    "announce.confirm": {"POST": Action.ANNOUNCE},
    "announce.detail": {"GET": Action.VIEW},
    "announce.events": {"GET": Action.VIEW},
    "announce.status": {"GET": Action.VIEW},
    "announce.cancel": {"POST": Action.CANCEL_BROADCAST},
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
    "calendar.week": {"GET": Action.VIEW},
    # a phone's calendar app asks it: the link's secret is the credential (test_calendar_feed.py)
    "calendar.feed": {"GET": PUBLIC},
    "calendar.renew_feed": {"POST": Action.VIEW},
    "province_bulletins.index": {"GET": Action.SEND_DOWN, "POST": Action.SEND_DOWN},
    "province_bulletins.detail": {"GET": Action.SEND_DOWN},
    "province_bulletins.send": {"POST": Action.SEND_DOWN},
    "province_bulletins.inbox": {"GET": Action.SCHEDULE},
    "province_bulletins.place": {"POST": Action.SCHEDULE},
    "province_bulletins.decline": {"POST": Action.SCHEDULE},
    "province_bulletins.head": {"POST": Action.SCHEDULE},
    "province_bulletins.move": {"POST": Action.SCHEDULE},
    "reports.index": {"GET": Action.READ_REPORTS},
    "reports.broadcasts_csv": {"GET": Action.READ_REPORTS},
    "reports.deliveries_csv": {"GET": Action.READ_REPORTS},
    "reports.monthly": {"GET": Action.READ_REPORTS},
    "reports.monthly_csv": {"GET": Action.READ_REPORTS},
    "province.index": {"GET": ProvinceLevel(Action.READ_REPORTS)},
    "province.monthly": {"GET": ProvinceLevel(Action.READ_REPORTS)},
    "province.monthly_csv": {"GET": ProvinceLevel(Action.READ_REPORTS)},
    # nghe lại: a commune's public replay (a closed one is not found), and its management
    "listen.page": {"GET": PUBLIC},
    "listen.feed": {"GET": PUBLIC},
    "listen.feedback_form": {"GET": PUBLIC, "POST": PUBLIC},
    "listen.thanks": {"GET": PUBLIC},
    "replay.manage": {"GET": Action.MANAGE_REPLAY},
    "replay.set_public": {"POST": Action.MANAGE_REPLAY},
    "replay.broadcast_internal": {"POST": Action.MANAGE_REPLAY},
    "replay.bulletin_internal": {"POST": Action.MANAGE_REPLAY},
    "replay.feedback": {"GET": Action.MANAGE_REPLAY},
    "replay.moderate": {"POST": Action.MANAGE_REPLAY},
}
ZONE_QUERY = {"calendar.week", *(name for name in PAGES if name.startswith("reports."))}
# forms naming the zone they act in ({zone}: the place's village, {commune}: its commune),
# complete otherwise, so that only where they act decides; a zone out of reach is refused there
# as the form's answer to a value it may not choose (400, the field named) or 403
ZONE_FORMS: dict[str, dict[str, str]] = {
    "announce.prepare": {"text": "Thử.", "zones": "{zone}"},
    "live.start": {"zones": "{zone}"},
    "admin.users": {"username": "moi", "role": "village_head", "zone": "{zone}"},
    "admin.devices": {"id": "loa-moi", "zone": "{zone}"},
    "admin.zones": {"kind": "village", "name": "Thôn Mới", "parent": "{commune}"},
    "replay.set_public": {"commune": "{commune}", "public": "1"},
}

API: dict[tuple[str, str], Need] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/zones"): Action.VIEW,
    ("GET", "/devices"): Action.VIEW,
    ("GET", "/devices?zone={zone}"): Action.VIEW,
    ("GET", "/announcements"): Action.VIEW,
    ("POST", "/announcements"): Action.ANNOUNCE,
    ("POST", "/announcements/recording"): Action.ANNOUNCE,
    ("GET", "/announcements/{broadcast_id}"): Action.VIEW,
    ("POST", "/announcements/{broadcast_id}/cancel"): Action.CANCEL_BROADCAST,
    ("POST", "/live"): Action.ANNOUNCE,
    ("POST", "/live/{broadcast_id}/feed"): Action.ANNOUNCE,
    ("POST", "/live/{broadcast_id}/end"): Action.CANCEL_BROADCAST,
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
    ("GET", "/source/items/{item_id}"): Own(Action.FEED),
    ("GET", "/reports/broadcasts?zone={zone}"): Action.READ_REPORTS,
    ("GET", "/reports/monthly?month=2026-11&zone={zone}"): Action.READ_REPORTS,
    ("GET", "/province/dashboard"): ProvinceLevel(Action.READ_REPORTS),
    ("GET", "/province/monthly?month=2026-11"): ProvinceLevel(Action.READ_REPORTS),
    ("GET", "/replay/communes"): Action.MANAGE_REPLAY,
    ("GET", "/replay/communes/{commune}"): Action.MANAGE_REPLAY,
    ("PATCH", "/replay/communes/{commune}"): Action.MANAGE_REPLAY,
    ("GET", "/replay/communes/{commune}/items"): Action.MANAGE_REPLAY,
    ("POST", "/replay/broadcasts/{broadcast_id}/internal"): Action.MANAGE_REPLAY,
    ("POST", "/replay/bulletins/{bulletin_id}/internal"): Action.MANAGE_REPLAY,
    ("GET", "/replay/feedback"): Action.MANAGE_REPLAY,
    ("POST", "/replay/feedback/{feedback_id}/moderate"): Action.MANAGE_REPLAY,
}


def test_every_action_guards_a_route() -> None:
    """No row of the table is dead: each action but the four-eyes exception (checked in
    tests/broadcast/desks/test_bulletins.py) is what some route needs."""
    needs = [*(need for rules in PAGES.values() for need in rules.values()), *API.values()]
    named = {need.action if isinstance(need, ProvinceLevel | Own) else need for need in needs}
    assert set(Action) - named == {Action.APPROVE_OWN_BULLETIN}


# --- the world: built once per module (no request below changes it) ----------------------------


def _subtree(parents: dict[str, str | None], zone: str) -> frozenset[str]:
    below = {zone}
    while True:
        more = {child for child, parent in parents.items() if parent in below} - below
        if not more:
            return frozenset(below)
        below |= more


def _place(service: BroadcastService, ids: dict[str, int], name: str) -> Place:
    commune, village = {"an": ("xa-an", "thon-an-1"), "binh": ("xa-binh", "thon-binh-1")}[name]
    editor, sent_down = ids["tinh-editor"], f"Tin của tỉnh cho {commune}"
    province_bulletin = service.bulletins.create_bulletin(editor, sent_down, "Tin từ tỉnh.")
    [forward] = service.source_bulletins.send_down(editor, province_bulletin, [commune])
    officer = ids[f"{name}-officer"]
    title, text = f"Tin riêng của {name}-officer", f"Loa riêng ở {village}."
    bulletin = approved_bulletin(
        service, officer, title, "Nội dung.", reviewer=ids[f"{name}-leader"]
    )
    schedule = service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=[village],
            priority=Priority.NORMAL,
            time_of_day="05:10",
        ),
    )
    broadcast = service.announcements.announce(officer, text, [village])
    with service.db.session() as session:
        feedback = Feedback(
            broadcast_id=broadcast, zone_id=commune, text="Góp ý.", client_key="0" * 64
        )
        session.add(feedback)
        session.flush()
        feedback_id = feedback.id
    device = {"an": "loa-an-1-01", "binh": "loa-binh-1-01"}[name]
    markers = (title, text, sent_down, device, f"{name}-viewer", *_zone_names(service, village))
    return Place(commune, bulletin, schedule, broadcast, province_bulletin, forward, feedback_id,
                 ids[f"{name}-viewer"], village, device, markers,
                 _zone_names(service, commune))  # fmt: skip


def _zone_names(service: BroadcastService, zone_id: str) -> tuple[str, ...]:
    with service.db.session() as session:
        return (session.get(Zone, zone_id).name,)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch:
        if request.config.getoption("--db") == "postgresql":
            server = request.getfixturevalue("postgres_server")
            name = f"loa_test_{abs(hash(request.node.nodeid)) % 10**12}"
            patch.setenv("LOA_DATABASE_URL", server.create_database(name))
        service = make_service(tmp_path_factory.mktemp("boundaries") / "data")
    service.dispatcher = RecordingDispatcher(service)
    _, ids = seed_every_role(service)
    places = {"a": _place(service, ids, "an"), "b": _place(service, ids, "binh")}
    fields = {"text": "Tin của nguồn.", "priority": "normal", "communes": ["99002"]}
    item = service.inbound.post_bulletin(ids["tinh-source"], "key-1", fields).record.id
    with service.db.session() as session:
        parents = {
            row.id: row.parent_id for row in session.execute(select(Zone.id, Zone.parent_id))
        }
        found: dict[str, Account] = {}
        tokens: dict[str, str] = {}
        for user in session.scalars(select(User)):
            scope = None if user.zone_id is None else _subtree(parents, user.zone_id)
            found[user.username] = Account(
                user.username, user.id, Role(user.role), user.zone_id, scope
            )
            tokens[user.username] = accounts.create_token(session, user)
    assert {account.role for account in found.values()} == set(Role)
    app = create_app(service, {"TESTING": True})
    app.test_client_class = CheckedClient
    yield World(app, found, tokens, places, item, "tinh-source", parents)
    service.stop()


# --- who may: the permissions table and the zones --------------------------------------------


def may(world: World, account: Account, need: Need, place: Place, kind: str | None) -> bool:
    """Whether `account` may use a route that needs `need` on `place`'s object of `kind`."""
    if need == PUBLIC:
        return True
    if account.role is Role.SOURCE and need == SIGNED_IN:
        return False  # a source system does not sign in on the pages
    if need == SIGNED_IN:
        return True
    if isinstance(need, Own):
        return permissions.allowed(account.role, need.action) and account.name == world.item_owner
    if isinstance(need, ProvinceLevel):
        action, where = need.action, frozenset({PROVINCE})
    else:
        assert isinstance(need, Action), need
        action, where = need, None if kind is None else place.zones_of(kind)
    if not permissions.allowed(account.role, action):
        return False
    return where is None or account.scope is None or bool(where & account.scope)


# the object each path parameter names
_KINDS = {
    "bulletin_id": "bulletin",
    "schedule_id": "schedule",
    "broadcast_id": "broadcast",
    "target_id": "user",
    "forward_id": "forward",
    "zone_id": "zone",
    "device_id": "device",
    "item_id": "item",
    "feedback_id": "feedback",
    "commune": "commune",
}


def _object_kind(names: list[str], province_route: bool, zone_query: bool) -> str | None:
    kinds = [_KINDS[name] for name in names if name in _KINDS]
    if len(kinds) > 1 and "commune" in kinds:
        kinds.remove("commune")  # a commune's item (its public feedback form): the item decides
    if zone_query:
        kinds.append("zone")
    if not kinds or kinds == ["item"]:
        return None  # a list, or an item (`Own` says who)
    assert len(kinds) == 1, names
    if province_route and kinds == ["bulletin"]:
        return "province bulletin"
    return kinds[0]


def _values(world: World, place: Place, province_route: bool) -> dict[str, Any]:
    return {
        "bulletin_id": place.province_bulletin if province_route else place.bulletin,
        "schedule_id": place.schedule,
        "broadcast_id": place.broadcast,
        "target_id": place.user,
        "forward_id": place.forward,
        "zone_id": place.village,
        "zone": place.village,
        "device_id": place.device,
        "item_id": world.item,
        "feedback_id": place.feedback,
        "commune": place.commune,
        "sha256": "0" * 64,
        "user_id": place.user,
        "token": "0" * 32,
    }


@dataclass(frozen=True)
class Route:
    method: str
    url: str
    need: Need
    kind: str | None
    api_path: str = ""  # the API table's path, for the bodies
    form: dict[str, str] | None = None
    named_in_field: bool = False  # an API call naming its object in a field (`FIELD_OBJECTS`)


def page_routes(world: World, place: Place) -> list[Route]:
    routes = []
    for endpoint, rules in PAGES.items():
        rule = next(r for r in world.app.url_map.iter_rules() if r.endpoint == endpoint)
        province_route = endpoint.startswith("province_bulletins.")
        values = _values(world, place, province_route)
        url = rule.rule
        for name in rule.arguments:
            url = re.sub(rf"<(?:\w+:)?{name}>", str(values[name]), url)
        if endpoint in ZONE_QUERY:
            url += f"?zone={place.village}"
        kind = _object_kind(sorted(rule.arguments), province_route, endpoint in ZONE_QUERY)
        for method, need in rules.items():
            form = ZONE_FORMS.get(endpoint) if method == "POST" else None
            if form is None:
                routes.append(Route(method, url, need, kind))
                continue
            filled = {
                k: v.format(zone=place.village, commune=place.commune) for k, v in form.items()
            }
            routes.append(Route(method, url, need, "zone", form=filled))
    return routes


def api_routes(world: World, place: Place) -> list[Route]:
    routes = []
    for (method, path), need in API.items():
        province_route = path.startswith("/province-bulletins/{bulletin_id}")
        names = re.findall(r"{(\w+)}", path)
        kind = _object_kind(
            [name for name in names if name != "zone"], province_route, "zone=" in path
        )
        url = "/api/v1" + path.format(**_values(world, place, province_route))
        in_field = FIELD_OBJECTS.get((method, path))
        routes.append(Route(method, url, need, kind or in_field, path.partition("?")[0],
                            named_in_field=(method, path) in FIELD_OBJECTS))  # fmt: skip
    return routes


# --- the tests ----------------------------------------------------------------------------------


def test_the_tables_name_every_route(world: World) -> None:
    pages, api = set(), set()
    for rule in world.app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            api |= {(method, path) for method in methods}
        elif rule.endpoint != "static":
            pages |= {(rule.endpoint, method) for method in methods}
    assert pages == {(name, method) for name, rules in PAGES.items() for method in rules}
    assert api == {(method, path.partition("?")[0]) for method, path in API}


def _browser(world: World, account: Account) -> FlaskClient | None:
    """A browser signed in as `account`; None for a source system, which may not sign in."""
    client = world.app.test_client()
    if account.role is Role.SOURCE:
        token = csrf_token(client, "/auth/login")
        data = {"username": account.name, "password": PASSWORD, "csrf_token": token}
        assert client.post("/auth/login", data=data).status_code != 302, account.name
        assert client.get("/").status_code == 302  # still signed out
        return None
    login(client, account.name)
    return client


def _leaks(world: World, account: Account, body: str) -> list[str]:
    """What a bound account's page or answer shows of a place outside its zone (the commune's
    name: of a commune neither in its zone nor holding it)."""
    if account.scope is None:
        return []
    found = []
    for place in world.places.values():
        if not {place.commune, place.village} & account.scope:
            found += [marker for marker in place.markers if marker in body]
        if place.commune not in account.scope and account.zone not in world.below(place.commune):
            found += [name for name in place.names if name in body]
    return found


def _refusals(account: Account, route: Route) -> tuple[int, ...]:
    """403 or 404; and 400 where a form, a call's body or a list's filter names an object out of
    the account's reach (a zone, a bulletin), refused as a value of a field it may not choose,
    as an unknown one is (only if its role may use the route at all)."""
    need = route.need
    named = route.form or route.named_in_field
    if named and isinstance(need, Action) and permissions.allowed(account.role, need):
        return (400, 403, 404)
    return (403, 404)


def _reads(route: Route) -> bool:
    return route.method == "GET" and not route.url.endswith("/events")


@pytest.mark.parametrize("role", list(Role))
def test_pages_let_in_exactly_whom_the_tables_and_zones_allow(world: World, role: Role) -> None:
    """Refused: 403 or 404, whatever the method; allowed reads: 200, showing nothing of a
    commune outside the account's zone. The event stream is read in tests/web/test_announce.py
    (bounded reads)."""
    problems = []
    for account in world.of_role(role):
        client = _browser(world, account)
        if client is None:
            continue
        token, object_reads = csrf_token(client, "/"), 0
        for place in world.places.values():
            for route in page_routes(world, place):
                allowed = may(world, account, route.need, place, route.kind)
                if route.need == PUBLIC:
                    continue
                if allowed and not _reads(route):
                    continue  # an allowed write would change the world
                if allowed:
                    response = client.get(route.url, follow_redirects=True)
                    body = response.get_data(as_text=True)
                    if response.status_code != 200 or response.request.path == "/auth/login":
                        problems.append(f"{account.name} GET {route.url}: {response.status_code}")
                    elif leaks := _leaks(world, account, body):
                        problems.append(f"{account.name} GET {route.url} shows {leaks}")
                    object_reads += route.kind is not None
                    continue
                data = (
                    {"csrf_token": token, **(route.form or {})} if route.method == "POST" else None
                )
                status = client.open(route.url, method=route.method, data=data).status_code
                if status not in _refusals(account, route):
                    problems.append(f"{account.name} {route.method} {route.url}: {status}")
        if _has_objects(world, account) and not object_reads:
            problems.append(f"{account.name} read none of its commune's objects")
    assert not problems, "\n".join(problems)


def _has_objects(world: World, account: Account) -> bool:
    """Whether any place's objects are in the account's zone (so it must read some: a test
    refusing everything fails)."""
    return account.scope is None or any(
        {place.commune, place.village} & account.scope for place in world.places.values()
    )


def test_pages_need_a_login(world: World) -> None:
    client = world.app.test_client()
    for place in world.places.values():
        for route in page_routes(world, place):
            if route.need == PUBLIC:
                continue
            response = client.open(route.url, method=route.method)
            assert response.status_code in (302, 400, 401), f"{route.method} {route.url}"
            if response.status_code == 302:
                assert "/auth/login" in response.headers["Location"], route.url


# what each call accepts (an unknown field is refused whoever sends it); {zone}: the place's
BODIES: dict[str, dict[str, Any] | None] = {
    "/announcements/{broadcast_id}/cancel": {"correction": "Thử."},
    "/live": {"zones": ["{zone}"]},
    "/live/{broadcast_id}/feed": None,
    "/live/{broadcast_id}/end": None,
    "/bulletins": {"text": "Thử."},
    "/bulletins/{bulletin_id}": {"text": "Thử."},
    "/bulletins/{bulletin_id}/approve": {"comment": "Thử."},
    "/bulletins/{bulletin_id}/reject": {"comment": "Thử."},
    "/bulletins/{bulletin_id}/send": {"zones": ["{zone}"]},
    "/schedules/{schedule_id}": None,
    "/replay/communes/{commune}": {"public": True},
    "/replay/broadcasts/{broadcast_id}/internal": {"internal": True},
    "/replay/bulletins/{bulletin_id}/internal": {"internal": True},
    "/replay/feedback/{feedback_id}/moderate": {"decision": "approved"},
    "/province-bulletins": {"text": "Thử.", "communes": "all"},
    "/province-bulletins/inbox/{forward_id}/place": {"run_at": "2099-01-01T06:00"},
    "/province-bulletins/inbox/{forward_id}/decline": {"reason": "Thử."},
    "/province-bulletins/inbox/reorder": {"order": ["{forward}"]},
    "/schedules": {
        "bulletin": "{bulletin}",
        "kind": "daily",
        "time_of_day": "05:00",
        "zones": ["{zone}"],
    },
}


# calls whose body or filter names the object they act on (none in their path)
FIELD_OBJECTS = {
    ("POST", "/announcements"): "zone",
    ("POST", "/live"): "zone",
    ("POST", "/schedules"): "bulletin",  # and a zone of the same commune
    ("POST", "/province-bulletins/inbox/reorder"): "forward",
    ("GET", "/devices?zone={zone}"): "zone",
}


def _body(route: Route, place: Place) -> dict[str, Any] | None:
    """The body of a call, its placeholders filled with `place`'s objects."""
    if route.method == "GET":
        return None
    body = BODIES.get(route.api_path, {"text": "Thử.", "zones": ["{zone}"]})
    filled = {"{zone}": place.village, "{bulletin}": place.bulletin, "{forward}": place.forward}

    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(item) for item in value]
        return filled.get(value, value) if isinstance(value, str) else value

    return None if body is None else {key: fill(value) for key, value in body.items()}


@pytest.mark.parametrize("role", list(Role))
def test_the_api_lets_in_exactly_whom_the_tables_and_zones_allow(world: World, role: Role) -> None:
    client = world.app.test_client()
    problems = []
    for account in world.of_role(role):
        headers = {"Authorization": f"Bearer {world.tokens[account.name]}"}
        object_reads = 0
        for place in world.places.values():
            for route in api_routes(world, place):
                allowed = may(world, account, route.need, place, route.kind)
                if route.need == PUBLIC or (allowed and route.method != "GET"):
                    continue
                response = client.open(
                    route.url, method=route.method, json=_body(route, place), headers=headers
                )
                status = response.status_code
                if allowed and status != 200:
                    problems.append(f"{account.name} GET {route.url}: {status}")
                elif allowed and (leaks := _leaks(world, account, response.get_data(as_text=True))):
                    problems.append(f"{account.name} GET {route.url} shows {leaks}")
                elif not allowed and status not in _refusals(account, route):
                    problems.append(f"{account.name} {route.method} {route.url}: {status}")
                object_reads += allowed and status == 200 and route.kind is not None
        if _has_objects(world, account) and not object_reads:
            problems.append(f"{account.name} read none of its commune's objects")
    assert not problems, "\n".join(problems)


def test_the_api_needs_a_token(world: World) -> None:
    client = world.app.test_client()
    for route in api_routes(world, world.places["b"]):
        status = client.open(route.url, method=route.method).status_code
        assert status == (200 if route.need == PUBLIC else 401), f"{route.method} {route.url}"


def test_what_the_leak_check_looks_for_is_shown_where_allowed(world: World) -> None:
    """Each place's markers and names appear on some page or answer the installation-wide admin
    reads: the check that a commune's account sees none of the other commune's is not vacuous."""
    [root] = [a for a in world.of_role(Role.ADMIN) if a.scope is None]
    client = _browser(world, root)
    assert client is not None
    headers = {"Authorization": f"Bearer {world.tokens[root.name]}"}
    bodies = []
    for place in world.places.values():
        for route in [*page_routes(world, place), *api_routes(world, place)]:
            if _reads(route) and route.need != PUBLIC:
                response = client.get(route.url, headers=headers, follow_redirects=True)
                bodies.append(response.get_data(as_text=True))
    seen = "\n".join(bodies)
    for place in world.places.values():
        assert [text for text in (*place.markers, *place.names) if text not in seen] == []
