"""Hostile input, as a fuzzer sends it: every value Python parses but Loa cannot hold is a 400
naming the field (an id no row can have: a 404), on every route that takes it, and nothing is
stored. Before `web.inputs` and the bounded dates of `broadcast.clock`, each class was a 500.

Classes: integers beyond what a column holds (ids in paths and bodies: 32 bits on PostgreSQL;
any JSON integer: 64 bits), lone UTF-16 surrogates and NUL in strings (NUL also in queries and
forms), deep nesting, NaN and infinities (`1e999`), floats/strings/booleans where a JSON integer
belongs, unknown fields (`play_at`), dates at the ends of Python's calendar; then the same on
the pages, and a text with nothing to read aloud (item 11) through the API and the forms.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from service_support import (
    RecordingDispatcher,
    Users,
    approved_bulletin,
    broadcast_status,
    wait_for,
)
from sqlalchemy import func, select
from web_support import csrf_token, login

from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Broadcast, Bulletin, Feedback, Schedule
from wire.protocol import CommandKind

MAX_ID = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL
TOKEN = "__RAW__"  # replaced by a raw JSON token (1e999, NaN) that json.dumps cannot write

# route → (method, url, a valid body); {names} in the URL and "bulletin" come from `ids`
ROUTES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "announce": (
        "POST",
        "/api/v1/announcements",
        {
            "text": "Mất điện từ 14h.",
            "zones": ["thon-a"],
            "devices": ["loa-a-01"],
            "priority": "emergency",
            "repeat": 1,
            "title": "Mất điện",
            "internal": False,
        },
    ),
    "cancel": (
        "POST",
        "/api/v1/announcements/{broadcast}/cancel",
        {"correction": "Đính chính: mất điện từ 16h."},
    ),
    "bulletin": (
        "POST",
        "/api/v1/bulletins",
        {
            "title": "Tin",
            "text": "Họp dân lúc 8h.",
            "make_script": False,
            "submit": False,
            "internal": False,
        },
    ),
    "replay_public": ("PATCH", "/api/v1/replay/communes/{commune}", {"public": True}),
    "broadcast_internal": (
        "POST",
        "/api/v1/replay/broadcasts/{broadcast}/internal",
        {"internal": True},
    ),
    "bulletin_internal": ("POST", "/api/v1/replay/bulletins/{draft}/internal", {"internal": False}),
    "moderate": (
        "POST",
        "/api/v1/replay/feedback/{feedback}/moderate",
        {"decision": "approved"},
    ),
    "edit": ("PATCH", "/api/v1/bulletins/{draft}", {"title": "Tin", "text": "Họp dân lúc 9h."}),
    "approve": ("POST", "/api/v1/bulletins/{submitted}/approve", {"comment": "Được."}),
    "reject": ("POST", "/api/v1/bulletins/{returned}/reject", {"comment": "Ghi rõ giờ."}),
    "send": (
        "POST",
        "/api/v1/bulletins/{approved}/send",
        {"zones": ["thon-a"], "devices": ["loa-a-01"], "priority": "normal", "repeat": 1},
    ),
    "schedule": (
        "POST",
        "/api/v1/schedules",
        {
            "bulletin": 0,
            "kind": "weekdays",
            "weekdays": [0, 3],
            "time_of_day": "06:00",
            "zones": ["thon-a"],
            "devices": ["loa-a-01"],
            "priority": "normal",
            "repeat": 1,
            "interval_h": 2,
            "run_at": "",
            "cron": "",
            "series_key": "",
            "valid_from": "2099-01-01",
            "valid_to": "2099-12-31",
            "lunar_days": [15],  # read only by the lunar kinds, checked as integers by all
            "lunar_month": 3,
        },
    ),
}


def _fields(kind: type) -> list[tuple[str, str]]:
    """(route, field) for every field of a valid body holding a `kind` (or a list of them)."""
    found = []
    for route, (_method, _url, body) in ROUTES.items():
        for field, value in body.items():
            sample = value[0] if isinstance(value, list) else value
            if type(sample) is kind:
                found.append((route, field))
    return found


TEXT_FIELDS = _fields(str)
INTEGER_FIELDS = _fields(int)
ID_ROUTES = [
    ("GET", "/api/v1/announcements/{}"),
    ("POST", "/api/v1/announcements/{}/cancel"),
    ("GET", "/api/v1/bulletins/{}"),
    ("PATCH", "/api/v1/bulletins/{}"),
    ("POST", "/api/v1/bulletins/{}/submit"),
    ("POST", "/api/v1/bulletins/{}/approve"),
    ("POST", "/api/v1/bulletins/{}/reject"),
    ("POST", "/api/v1/bulletins/{}/send"),
    ("GET", "/api/v1/schedules/{}"),
    ("DELETE", "/api/v1/schedules/{}"),
    ("POST", "/api/v1/replay/broadcasts/{}/internal"),
    ("POST", "/api/v1/replay/bulletins/{}/internal"),
    ("POST", "/api/v1/replay/feedback/{}/moderate"),
]


@pytest.fixture
def ids(app: Flask, service: BroadcastService, users: Users) -> dict[str, int]:
    """One of each thing a route's URL or body names."""
    desk = service.bulletins
    waiting = []
    for title in ("Chờ duyệt", "Sẽ trả lại"):
        bulletin_id = desk.create_bulletin(users.officer, title, "Tiêm phòng dại.")
        desk.submit(users.officer, bulletin_id)
        waiting.append(bulletin_id)
    broadcast = service.announcements.announce(users.officer, "Mất điện từ 14h.", ["thon-a"])
    with service.db.session() as session:
        feedback = Feedback(broadcast_id=broadcast, zone_id="xa-test", text="Hay.", client_key="0")
        session.add(feedback)
        session.flush()
        feedback_id = feedback.id
    return {
        "broadcast": broadcast,
        "feedback": feedback_id,
        "draft": desk.create_bulletin(users.officer, "Nháp", "Họp dân."),
        "submitted": waiting[0],
        "returned": waiting[1],
        "approved": approved_bulletin(service, users.officer, "Tin", "Họp dân lúc 8h."),
    }


def _request(
    route: str, ids: dict[str, int], changes: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    method, url, body = ROUTES[route]
    if "bulletin" in body:
        body = {**body, "bulletin": ids["approved"]}
    return method, url.format(**ids, commune="xa-test"), {**body, **changes}


def _send(
    client: FlaskClient, token: str, method: str, url: str, raw: str | bytes
) -> tuple[int, dict[str, Any]]:
    response = client.open(
        url,
        method=method,
        data=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    body = response.get_json(silent=True)
    assert body is not None, (response.status_code, response.get_data(as_text=True)[:300])
    return response.status_code, body


def _stored(service: BroadcastService) -> tuple[int, ...]:
    """What a refused request must leave as it was: rows made and privileged actions logged."""
    with service.db.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Broadcast, Bulletin, Schedule, AuditEntry)
        )


def _refused(
    client: FlaskClient,
    service: BroadcastService,
    token: str,
    method: str,
    url: str,
    raw: str | bytes,
    field: str,
) -> str:
    before = _stored(service)
    status, body = _send(client, token, method, url, raw)
    assert status == 400, (url, str(raw)[:200], body)
    assert body["error"]["field"] == field, (url, str(raw)[:200], body)
    assert _stored(service) == before, "a refused request changed something"
    return str(body["error"]["message"])


def test_the_valid_bodies_are_accepted(
    client: FlaskClient, tokens: dict[str, str], ids: dict[str, int]
) -> None:
    """The baseline the hostile variants below start from (so a 400 there is theirs)."""
    assert len(TEXT_FIELDS) >= 20 and len(INTEGER_FIELDS) == 8
    for route in ROUTES:
        method, url, body = _request(route, ids, {})
        status, answer = _send(client, tokens["admin"], method, url, json.dumps(body))
        assert status in (200, 201), (route, answer)


def test_the_document_lists_exactly_the_accepted_fields(client: FlaskClient) -> None:
    """What `json_body` accepts and what /api/v1/openapi.json declares are the same fields."""
    document = client.get("/api/v1/openapi.json").get_json()
    shape = re.compile(r"\{\w+\}")
    paths = {shape.sub("{}", path): item for path, item in document["paths"].items()}
    for route, (method, url, body) in ROUTES.items():
        operation = paths[shape.sub("{}", url.removeprefix("/api/v1"))][method.lower()]
        reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
        assert schema["additionalProperties"] is False, route
        assert set(schema["properties"]) == set(body), route


@pytest.mark.parametrize("route", list(ROUTES))
def test_null_is_taken_wherever_the_document_allows_it(
    client: FlaskClient, tokens: dict[str, str], ids: dict[str, int], route: str
) -> None:
    """`web.inputs` reads an optional field's null as absent: `"title": null` was taken where
    the document said string only (a fuzzer's negative case, accepted). The document now says
    null for those fields, and each one it says it for is taken."""
    document = client.get("/api/v1/openapi.json").get_json()
    method, template, body = ROUTES[route]
    shape = re.compile(r"\{\w+\}")
    paths = {shape.sub("{}", path): item for path, item in document["paths"].items()}
    operation = paths[shape.sub("{}", template.removeprefix("/api/v1"))][method.lower()]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    properties = document["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"]
    nullable = [name for name, field in properties.items() if "null" in field.get("type", [])]
    expected = {"title", "internal", "make_script", "submit"} & set(body)
    if route not in ("broadcast_internal", "bulletin_internal"):  # there it is the one field
        assert expected <= set(nullable), route
    for name in nullable:
        method, url, body = _request(route, ids, {name: None})
        status, answer = _send(client, tokens["admin"], method, url, json.dumps(body))
        assert status in (200, 201), (route, name, answer)


@pytest.mark.parametrize("bad", ["\ud800", "Bão\udfff", "a\x00b"], ids=["surrogate", "low", "nul"])
def test_strings_that_no_database_stores(
    client: FlaskClient,
    service: BroadcastService,
    tokens: dict[str, str],
    ids: dict[str, int],
    bad: str,
) -> None:
    for route, field in TEXT_FIELDS:
        method, url, body = _request(route, ids, {})
        value = [bad] if isinstance(body[field], list) else bad
        method, url, body = _request(route, ids, {field: value})
        message = _refused(client, service, tokens["admin"], method, url, json.dumps(body), field)
        assert ("surrogate" in message) or ("NUL" in message), (route, message)


@pytest.mark.parametrize(
    "token",
    ["18446744073709551616", "9223372036854775808", "-9223372036854775809", "9" * 5000,
     "1e999", "-1e999", "NaN", "Infinity", "-Infinity"],
    ids=["2**64", "2**63", "-2**63-1", "5000-digits", "1e999", "-1e999", "NaN", "inf", "-inf"],
)  # fmt: skip
def test_numbers_beyond_what_loa_holds(
    client: FlaskClient,
    service: BroadcastService,
    tokens: dict[str, str],
    ids: dict[str, int],
    token: str,
) -> None:
    for route, field in INTEGER_FIELDS:
        method, url, body = _request(route, ids, {})
        value = [TOKEN] if isinstance(body[field], list) else TOKEN
        method, url, body = _request(route, ids, {field: value})
        raw = json.dumps(body).replace(json.dumps(TOKEN), token)
        message = _refused(client, service, tokens["admin"], method, url, raw, field)
        assert "không phải số Loa lưu được" in message and len(message) < 300, (route, message)


@pytest.mark.parametrize("value", [2.7, 3.5e-1, 1e300, "3", True, False, [1], {}])
def test_integers_are_json_integers(
    client: FlaskClient,
    service: BroadcastService,
    tokens: dict[str, str],
    ids: dict[str, int],
    value: object,
) -> None:
    """`repeat: 2.7`, `"3"` or `true` used to be read as 2, 3 and 1."""
    for route, field in INTEGER_FIELDS:
        method, url, body = _request(route, ids, {})
        wrapped = [value] if isinstance(body[field], list) else value
        method, url, body = _request(route, ids, {field: wrapped})
        message = _refused(client, service, tokens["admin"], method, url, json.dumps(body), field)
        assert "số nguyên" in message, (route, message)


def test_an_integer_written_with_a_zero_fraction_is_that_integer(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    """JSON Schema's `integer` (the document's type) takes 2.0: a fuzzer sending it found a
    schema-valid request refused (400)."""
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Mất điện từ 14h.", "zones": ["thon-a"], "repeat": 2.0},
        headers={"Authorization": f"Bearer {tokens['officer']}"},
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["repeat"] == 2


def test_unknown_fields_are_refused_by_name(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str], ids: dict[str, int]
) -> None:
    """`play_at` on an announcement was silently ignored: the notice went out at once."""
    for route in ROUTES:
        method, url, body = _request(route, ids, {"play_at": "2099-01-01T06:00"})
        raw = json.dumps(body)
        message = _refused(client, service, tokens["admin"], method, url, raw, "play_at")
        assert "trường lạ 'play_at'" in message
        assert all(name in message for name in ROUTES[route][2]), message  # the accepted ones


@pytest.mark.parametrize("shape", ["array", "object", "inside", "forty"])
def test_deep_nesting(
    client: FlaskClient,
    service: BroadcastService,
    tokens: dict[str, str],
    ids: dict[str, int],
    shape: str,
) -> None:
    depth = 40 if shape == "forty" else 100_000  # forty levels parse, and are refused after
    raw = {
        "array": "[" * depth + "]" * depth,
        "object": '{"a": ' * depth + "1" + "}" * depth,
        "inside": '{"zones": ' + "[" * depth + "]" * depth + "}",
        "forty": '{"zones": ' + "[" * depth + "]" * depth + "}",
    }[shape]
    for route in ROUTES:
        method, url, _body = _request(route, ids, {})
        message = _refused(client, service, tokens["admin"], method, url, raw, "body")
        assert "JSON lồng" in message, (route, message)


@pytest.mark.parametrize("number", [str(MAX_ID + 1), str(2**63), str(2**64), "9" * 40])
def test_ids_beyond_the_databases_range_in_paths_name_nothing(
    client: FlaskClient, tokens: dict[str, str], number: str
) -> None:
    for method, url in ID_ROUTES:
        response = client.open(
            url.format(number),
            method=method,
            json={},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        )
        assert response.status_code == 404, (method, url, response.get_data(as_text=True)[:300])
        assert "beyond the largest id" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    "digits", ["١", "１", "𝟏", "۱"], ids=["arabic", "fullwidth", "math", "persian"]
)
def test_ids_in_digits_other_than_ascii_name_nothing(
    client: FlaskClient, tokens: dict[str, str], ids: dict[str, int], digits: str
) -> None:
    """werkzeug's `\\d+` took "١" and `int` read it as 1: `/replay/broadcasts/١/internal`
    marked broadcast 1 internal (a 200 where the document allows only an integer)."""
    for method, url in ID_ROUTES:
        response = client.open(
            url.format(digits),
            method=method,
            json={},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
        )
        assert response.status_code == 404, (method, url, response.get_data(as_text=True)[:300])


def test_a_bulletin_id_beyond_the_range_in_a_body(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str], ids: dict[str, int]
) -> None:
    for number in (MAX_ID + 1, 0, -1):
        method, url, body = _request("schedule", ids, {"bulletin": number})
        raw = json.dumps(body)
        message = _refused(client, service, tokens["admin"], method, url, raw, "bulletin")
        assert f"từ 1 đến {MAX_ID}" in message


def test_targets_that_are_not_lists(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str], ids: dict[str, int]
) -> None:
    """`"devices": 1` on a schedule was a TypeError in the service (a 500)."""
    for route in ("announce", "send", "schedule"):
        for field in ("zones", "devices"):
            for value in (1, True, 2.5, "loa-a-01", {"a": 1}):
                method, url, body = _request(route, ids, {field: value})
                raw = json.dumps(body)
                _refused(client, service, tokens["admin"], method, url, raw, field)


@pytest.mark.parametrize("url", [u for m, u in ID_ROUTES if m == "GET"])
def test_the_largest_id_is_looked_up(client: FlaskClient, tokens: dict[str, str], url: str) -> None:
    response = client.get(
        url.format(MAX_ID), headers={"Authorization": f"Bearer {tokens['admin']}"}
    )
    assert response.status_code == 404, response.get_data(as_text=True)[:300]
    assert "beyond" not in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("reports/broadcasts?from=0001-01-01", "from"),
        ("reports/broadcasts?to=9999-12-31", "to"),
        ("reports/broadcasts?from=9999-12-31", "from"),
        ("reports/broadcasts?to=0001-01-01", "to"),
        ("reports/broadcasts?from=1999-12-31", "from"),
        ("reports/monthly?month=9999-12", "month"),
        ("reports/monthly?month=0000-01", "month"),
        ("reports/monthly?month=0001-01", "month"),
        ("reports/monthly?month=2101-01", "month"),
    ],
)
def test_dates_at_the_ends_of_the_calendar_in_reports(
    client: FlaskClient, tokens: dict[str, str], query: str, field: str
) -> None:
    response = client.get(
        f"/api/v1/{query}", headers={"Authorization": f"Bearer {tokens['viewer']}"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["field"] == field and "2000 đến 2100" in error["message"], error


@pytest.mark.parametrize(
    "changes",
    [
        {"valid_to": "9999-12-31"},
        {"valid_from": "0001-01-01"},
        {"valid_from": "9999-12-31", "valid_to": ""},
        {"kind": "once", "run_at": "0001-01-01T00:00"},
        {"kind": "once", "run_at": "9999-12-31T23:59"},
        {"kind": "once", "run_at": "9999-12-31T23:59-23:59"},
        {"kind": "series", "run_at": "0001-01-01T00:00+14:00", "series_key": "bao"},
    ],
    ids=lambda changes: ",".join(f"{k}={v}" for k, v in changes.items()),
)
def test_dates_at_the_ends_of_the_calendar_in_schedules(
    client: FlaskClient,
    service: BroadcastService,
    tokens: dict[str, str],
    ids: dict[str, int],
    changes: dict[str, str],
) -> None:
    method, url, body = _request("schedule", ids, changes)
    field = "run_at" if "run_at" in changes else next(k for k, v in changes.items() if v)
    message = _refused(client, service, tokens["admin"], method, url, json.dumps(body), field)
    assert "2000 đến 2100" in message


def test_an_unexpected_failure_is_a_json_500_without_a_traceback(
    app: Flask, client: FlaskClient, service: BroadcastService, users: Users,
    tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals /srv/loa/var")

    monkeypatch.setattr(service.scheduling, "get", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    bulletin = approved_bulletin(service, users.officer, "Tin", "Họp dân.")
    unchecked = FlaskClient(app, app.response_class)  # a 500 is in no document: not checked
    response = unchecked.post(
        "/api/v1/schedules",
        json={"bulletin": bulletin, "kind": "daily", "time_of_day": "06:00", "zones": ["thon-a"]},
        headers={"Authorization": f"Bearer {tokens['officer']}"},
    )
    assert response.status_code == 500 and response.is_json
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret" not in text and "RuntimeError" not in text
    assert response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    "query",
    ["devices?page=%C2%B2", "devices?per_page=" + "9" * 5000, "reports/broadcasts?page=%C2%B2",
     "reports/broadcasts?per_page=" + "1" * 5000, "announcements?limit=" + "1" * 5000],
    ids=["superscript", "5000-digits", "report-superscript", "report-5000", "limit-5000"],
)  # fmt: skip
def test_page_numbers_that_python_calls_digits(
    client: FlaskClient, tokens: dict[str, str], query: str
) -> None:
    """`"²".isdigit()` is True and `int("²")` a ValueError; so is `int()` of 5,000 digits."""
    response = client.get(
        f"/api/v1/{query}", headers={"Authorization": f"Bearer {tokens['officer']}"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["field"] in query


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/devices?zone=%00", "zone"),
        ("/api/v1/bulletins?status=a%00", "status"),
        ("/api/v1/reports/broadcasts?zone=thon%00", "zone"),
        ("/api/v1/reports/monthly?month=2026-11&zone=%00", "zone"),
        ("/api/v1/announcements?limit=5&x%00=1", "x"),
    ],
)
def test_nul_in_a_query_is_refused_by_name(
    client: FlaskClient, tokens: dict[str, str], url: str, field: str
) -> None:
    """PostgreSQL refuses NUL in a text parameter: each of these was a 500 there."""
    response = client.get(url, headers={"Authorization": f"Bearer {tokens['officer']}"})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["field"] == field and "NUL" in error["message"], error


def test_a_lang_with_nul_is_ignored_like_any_other_unknown_language(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    """The document takes any string for `?lang=` and says other values are ignored; it is
    only compared with the locales, so a NUL there was refused (400) for nothing."""
    for url in ("/api/v1/replay/feedback?lang=%00", "/api/v1/zones?lang=a%00b&x=1"):
        response = client.get(url, headers={"Authorization": f"Bearer {tokens['officer']}"})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    refused = client.get(
        "/api/v1/devices?lang=%00&zone=%00",
        headers={"Authorization": f"Bearer {tokens['officer']}"},
    )
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "zone"


# --- the same classes on the pages -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/announce/2147483648",
        "/announce/9223372036854775808",
        "/announce/18446744073709551616/status.json",
        "/announce/99999999999999999999999999999/events",
        "/bulletins/9223372036854775808",
        "/bulletins/9223372036854775808/edit",
    ],
)
def test_pages_with_ids_beyond_the_range_are_404(client: FlaskClient, url: str) -> None:
    login(client, "officer")
    response = client.get(url)
    assert response.status_code == 404
    assert "<html" in response.get_data(as_text=True).lower()  # the normal error page


@pytest.mark.parametrize(
    "url",
    [
        "/announce/2147483648/cancel",
        "/bulletins/9223372036854775808/approve",
        "/bulletins/9223372036854775808/schedule",
        "/bulletins/schedules/9223372036854775808/cancel",
        "/admin/users/9223372036854775808/active",
    ],
)
def test_page_forms_with_ids_beyond_the_range_are_404(client: FlaskClient, url: str) -> None:
    login(client, "admin")
    response = client.post(url, data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/reports/?from=0001-01-01",
        "/reports/?to=9999-12-31",
        "/reports/?page=99999999999999999999",
        "/reports/broadcasts.csv?to=9999-12-31",
        "/reports/deliveries.csv?from=0001-01-01",
        "/reports/monthly?month=9999-12",
        "/reports/monthly.csv?month=0000-01",
    ],
)
def test_report_pages_refuse_extreme_dates(client: FlaskClient, url: str) -> None:
    login(client, "officer")
    response = client.get(url)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01"])
def test_the_calendar_refuses_extreme_weeks(client: FlaskClient, week: str) -> None:
    login(client, "officer")
    response = client.get(f"/calendar/?week={week}", follow_redirects=True)
    assert response.status_code == 200
    assert "2000 đến 2100" in response.get_data(as_text=True)  # the flashed bound


@pytest.mark.parametrize(
    "form",
    [
        {"kind": "daily", "time_of_day": "06:00", "valid_to": "9999-12-31"},
        {"kind": "daily", "time_of_day": "06:00", "valid_from": "0001-01-01"},
        {"kind": "once", "run_at": "0001-01-01T00:00"},
        {"kind": "series", "series_start": "9999-12-31T23:59", "interval_h": "2",
         "series_key": "bao"},
    ],
)  # fmt: skip
def test_the_schedule_form_refuses_extreme_dates(
    client: FlaskClient, service: BroadcastService, users: Users, form: dict[str, str]
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Tin", "Họp dân.")
    login(client, "officer")
    token = csrf_token(client, f"/bulletins/{bulletin}")
    before = _stored(service)
    response = client.post(
        f"/bulletins/{bulletin}/schedule",
        data={"csrf_token": token, "zones": "thon-a", **form},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "2000 đến 2100" in response.get_data(as_text=True)
    assert _stored(service) == before


# --- a text with nothing to read aloud (item 11) ------------------------------------------------

UNSPEAKABLE = ["~", "!!!", "\u0007", "\U000e0001", " ... — ", "\u200b\u00ad"]


@pytest.mark.parametrize("text", UNSPEAKABLE, ids=ascii)
def test_a_text_with_nothing_to_read_aloud_is_refused_up_front(
    client: FlaskClient,
    service: BroadcastService,
    tokens: dict[str, str],
    ids: dict[str, int],
    text: str,
) -> None:
    """It used to be accepted (201) and then fail in synthesis."""
    cases = [
        ("announce", {"text": text}, "text"),
        ("bulletin", {"text": text}, "text"),
        ("bulletin", {"text": text, "make_script": True}, "text"),
        ("edit", {"text": text}, "text"),
        ("cancel", {"correction": text}, "correction"),
    ]
    for route, changes, field in cases:
        method, url, body = _request(route, ids, changes)
        message = _refused(client, service, tokens["admin"], method, url, json.dumps(body), field)
        assert "không có gì để đọc" in message, (route, message)


def test_a_correction_with_nothing_to_read_stops_nothing(
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    tokens: dict[str, str],
    ids: dict[str, int],
) -> None:
    """The worst case: `{"correction": "~"}` stopped the original, then the correction failed."""
    wait_for(lambda: broadcast_status(service, ids["broadcast"]) != "pending", 30)
    status, body = _send(
        client,
        tokens["officer"],
        "POST",
        f"/api/v1/announcements/{ids['broadcast']}/cancel",
        json.dumps({"correction": "~"}),
    )
    assert status == 400 and body["error"]["field"] == "correction", body
    assert broadcast_status(service, ids["broadcast"]) == "dispatched"
    assert not [s for s in sent.sent if s.command.kind is CommandKind.STOP]


def test_a_stored_bulletin_with_nothing_to_read_is_neither_sent_nor_scheduled(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str], ids: dict[str, int]
) -> None:
    """One saved before the rule (or written to the database by hand)."""
    with service.db.session() as session:
        bulletin = session.get(Bulletin, ids["approved"])
        assert bulletin is not None
        bulletin.text = "!!!"
    for route in ("send", "schedule"):
        method, url, body = _request(route, ids, {})
        message = _refused(client, service, tokens["admin"], method, url, json.dumps(body), "text")
        assert "không có gì để đọc" in message


def test_the_village_head_is_told_in_words_they_understand(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "head-a")
    before = _stored(service)
    for lang, expected in (
        ("", "Nội dung thông báo: chưa có chữ nào để đọc, hãy nhập lời thông báo bằng chữ"),
        ("?lang=en", "there is nothing to read aloud yet; type the words of the notice"),
    ):
        token = csrf_token(client, f"/announce/{lang}")
        response = client.post(
            f"/announce/{lang}",
            data={"csrf_token": token, "mode": "text", "text": "~", "zones": ["thon-a"],
                  "priority": "emergency", "repeat": "3"},
        )  # fmt: skip
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert expected in page, lang
        assert "Xác nhận phát" not in page and "nothing to read aloud:" not in page
        assert "không có gì để đọc:" not in page
    assert _stored(service) == before


def test_the_correction_form_refuses_it_before_stopping(
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    users: Users,
) -> None:
    login(client, "head-a")
    broadcast = service.announcements.announce(users.head_1, "Mất điện từ 14h.", ["thon-a"])
    wait_for(lambda: broadcast_status(service, broadcast) != "pending", 30)
    url = f"/announce/{broadcast}"
    response = client.post(
        f"{url}/cancel",
        data={"csrf_token": csrf_token(client, url), "action": "correct", "correction": "!!!"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "Lời đính chính: chưa có chữ nào để đọc, hãy nhập lời thông báo bằng chữ" in page
    assert broadcast_status(service, broadcast) == "dispatched"
    assert not [s for s in sent.sent if s.command.kind is CommandKind.STOP]


def test_the_officers_bulletin_form_says_it_too(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "officer")
    token = csrf_token(client, "/bulletins/new")
    for data in ({"document": "~~~"}, {"action": "save", "title": "Tin", "script": "!!!"}):
        response = client.post("/bulletins/new", data={"csrf_token": token, **data})
        page = response.get_data(as_text=True)
        assert "Nội dung chưa có chữ nào để đọc: hãy nhập lời thông báo bằng chữ." in page, data
    with service.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Bulletin)) == 0


def test_nul_in_page_queries_and_forms_is_a_400_page(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "officer")
    for url in (
        "/?zone=%00",
        "/reports/?zone=%00",
        "/calendar/?zone=%00",
        "/reports/monthly?zone=%00",
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "<html" in response.get_data(as_text=True).lower()  # the normal error page
    before = _stored(service)
    token = csrf_token(client, "/announce/")
    for url, form in (
        ("/announce/", {"mode": "text", "text": "Họp\x00", "zones": "thon-a", "repeat": "1"}),
        ("/announce/", {"mode": "text", "text": "Họp", "zones": "thon-a\x00", "repeat": "1"}),
        ("/bulletins/new", {"action": "save", "title": "Tin\x00", "script": "Họp dân."}),
    ):
        response = client.post(url, data={"csrf_token": token, **form})
        assert response.status_code == 400, (url, form)
    assert _stored(service) == before


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1]:99999/live", "http://loa:65536/"])
def test_a_relay_url_python_cannot_split_is_refused(
    client: FlaskClient, service: BroadcastService, url: str
) -> None:
    """urlsplit raises ValueError on these ("Invalid IPv6 URL", a port out of range): a 500."""
    login(client, "officer")
    before = _stored(service)
    response = client.post(
        "/bulletins/relay",
        data={"csrf_token": csrf_token(client, "/bulletins/"), "title": "Tiếp sóng",
              "relay_url": url, "minutes": "30"},
        follow_redirects=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert "URL http:// hoặc https:// hợp lệ" in response.get_data(as_text=True)
    assert _stored(service) == before
