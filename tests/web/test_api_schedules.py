"""Programmes over the API: schedule, read, list, cancel; the same authorization as the pages."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from service_support import Users, approved_bulletin

from broadcast.service import BroadcastService


def _call(
    client: FlaskClient, method: str, url: str, token: str, body: Any = None
) -> tuple[int, Any]:
    response = client.open(
        url, method=method, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.get_json(silent=True)


def test_schedule_read_list_cancel(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    bulletin = approved_bulletin(
        service, users.officer, "Bản tin sáng", "Thông báo lịch tiêm chủng."
    )
    status, created = _call(
        client,
        "POST",
        "/api/v1/schedules",
        tokens["officer"],
        {
            "bulletin": bulletin,
            "kind": "weekdays",
            "weekdays": [0, 2, 4],
            "time_of_day": "06:00",
            "zones": ["thon-a"],
            "valid_to": "2099-12-31",
        },
    )
    assert status == 201, created
    assert created["kind"] == "weekdays" and created["weekdays"] == [0, 2, 4]
    assert created["time_of_day"] == "06:00" and created["valid_to"] == "2099-12-31"
    assert created["airtime_s"] > 0 and created["next_run"] is not None
    for role in ("viewer", "leader", "officer"):
        status, listed = _call(client, "GET", "/api/v1/schedules", tokens[role])
        assert status == 200 and [s["id"] for s in listed] == [created["id"]], role
    status, one = _call(client, "GET", f"/api/v1/schedules/{created['id']}", tokens["viewer"])
    assert status == 200 and one["title"] == "Bản tin sáng"
    status, _ = _call(client, "DELETE", f"/api/v1/schedules/{created['id']}", tokens["viewer"])
    assert status == 403
    status, _ = _call(client, "DELETE", f"/api/v1/schedules/{created['id']}", tokens["officer"])
    assert status == 204
    status, listed = _call(client, "GET", "/api/v1/schedules", tokens["officer"])
    assert listed == []
    status, one = _call(client, "GET", f"/api/v1/schedules/{created['id']}", tokens["officer"])
    assert one["active"] is False and one["ended_at"] is not None
    status, error = _call(client, "DELETE", f"/api/v1/schedules/{created['id']}", tokens["officer"])
    assert status == 409 and error["error"]["field"] == "schedule"
    status, again = _call(client, "GET", f"/api/v1/schedules/{created['id']}", tokens["officer"])
    assert again["ended_at"] == one["ended_at"]  # a second cancel does not rewrite the first


def test_who_may_schedule(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Tin", "Họp dân.")
    body = {"bulletin": bulletin, "kind": "daily", "time_of_day": "17:00", "zones": ["thon-a"]}
    for role in ("viewer", "leader", "head-a"):
        status, error = _call(client, "POST", "/api/v1/schedules", tokens[role], body)
        assert status == 403, (role, error)
    status, _ = _call(client, "GET", "/api/v1/schedules", tokens["head-a"])
    assert status == 403


def test_schedule_errors_name_the_field(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Tin", "Họp dân.")
    officer = tokens["officer"]
    cases = [
        ({"kind": "daily", "time_of_day": "06:00", "zones": ["thon-a"]}, "bulletin"),
        ({"bulletin": "7", "kind": "daily", "time_of_day": "06:00"}, "bulletin"),
        ({"bulletin": bulletin, "kind": "sometimes", "zones": ["thon-a"]}, "kind"),
        ({"bulletin": bulletin, "kind": "daily", "time_of_day": "25:00", "zones": ["thon-a"]},
         "time_of_day"),
        ({"bulletin": bulletin, "kind": "daily", "time_of_day": "06:00", "zones": ["nowhere"]},
         "zones"),
        # a valid expression (daily at 6:00) longer than the 100 characters the column holds
        ({"bulletin": bulletin, "kind": "cron", "zones": ["thon-a"],
          "cron": f"0 6 {','.join(map(str, range(1, 32)))} {','.join(map(str, range(1, 13)))} *"},
         "cron"),
    ]  # fmt: skip
    for body, field in cases:
        status, error = _call(client, "POST", "/api/v1/schedules", officer, body)
        assert status == 400 and error["error"]["field"] == field, (body, error)
    status, error = _call(client, "POST", "/api/v1/schedules", officer, ["not", "an", "object"])
    assert status == 400 and error["error"]["field"] == "body"
    status, _ = _call(client, "GET", "/api/v1/schedules/999", officer)
    assert status == 404


def test_an_overlap_is_refused_with_the_clash(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    first = approved_bulletin(
        service, users.officer, "Tin một", "Thông báo thứ nhất, đọc chậm rãi."
    )
    second = approved_bulletin(service, users.officer, "Tin hai", "Thông báo thứ hai.")
    daily = {"kind": "daily", "time_of_day": "06:00", "zones": ["xa-test"]}
    status, _ = _call(
        client, "POST", "/api/v1/schedules", tokens["officer"], {"bulletin": first, **daily}
    )
    assert status == 201
    status, error = _call(
        client, "POST", "/api/v1/schedules", tokens["officer"], {"bulletin": second, **daily}
    )
    assert status == 409 and error["error"]["field"] == "time"
    assert "Tin một" in error["error"]["message"]
    assert error["error"]["message"].startswith("Trùng giờ: lần phát lúc 06:00 ngày ")
    status, error = _call(
        client,
        "POST",
        "/api/v1/schedules?lang=en",
        tokens["officer"],
        {"bulletin": second, **daily},
    )  # the clash in the language asked for, its parameters (times, title, zone) in
    message = error["error"]["message"]
    assert status == 409 and message.startswith("Overlap: the run at 06:00 on "), message
    assert "“Tin một”" in message and "Choose another time" in message


def test_announcements_list_shows_what_the_caller_may_see(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    for zone in ("thon-a", "thon-b"):
        status, _ = _call(
            client, "POST", "/api/v1/announcements", tokens["officer"],
            {"text": f"Tin cho {zone}.", "zones": [zone]},
        )  # fmt: skip
        assert status == 201
    status, everything = _call(client, "GET", "/api/v1/announcements", tokens["viewer"])
    assert status == 200 and {tuple(b["zones"]) for b in everything} == {("thon-a",), ("thon-b",)}
    status, own = _call(client, "GET", "/api/v1/announcements?limit=10", tokens["head-a"])
    assert status == 200 and [b["zones"] for b in own] == [["thon-a"]]
    for limit in ("lots", "0", "201", "%D9%A3"):  # the last is an Arabic-Indic 3
        status, error = _call(
            client, "GET", f"/api/v1/announcements?limit={limit}", tokens["viewer"]
        )
        assert status == 400 and error["error"]["field"] == "limit", limit
