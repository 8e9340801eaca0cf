"""Lunar schedules over the API: made, read back, and refused with a 400 naming the field.

Responses are validated against `web/api/openapi.py` by the `client` fixture."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from service_support import Users, approved_bulletin
from sqlalchemy import func, select

from broadcast.service import BroadcastService
from broadcast.store.models import Schedule


def _post(client: FlaskClient, token: str, body: Any) -> tuple[int, Any]:
    response = client.post(
        "/api/v1/schedules", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.get_json(silent=True)


def test_lunar_monthly_and_yearly_schedules(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Rằm", "Nhắc bà con giữ vệ sinh.")
    status, monthly = _post(
        client,
        tokens["officer"],
        {
            "bulletin": bulletin,
            "kind": "lunar_monthly",
            "lunar_days": [15, 1],
            "time_of_day": "06:00",
            "zones": ["thon-a"],
        },
    )
    assert status == 201, monthly
    assert monthly["kind"] == "lunar_monthly" and monthly["lunar_days"] == [1, 15]
    assert monthly["lunar_month"] is None and monthly["next_run"] is not None
    status, yearly = _post(
        client,
        tokens["officer"],
        {
            "bulletin": bulletin,
            "kind": "lunar_yearly",
            "lunar_days": [10],
            "lunar_month": 3,
            "time_of_day": "07:00",
            "zones": ["thon-a"],
        },
    )
    assert status == 201, yearly
    assert (yearly["lunar_days"], yearly["lunar_month"]) == ([10], 3)
    response = client.get(
        f"/api/v1/schedules/{yearly['id']}",
        headers={"Authorization": f"Bearer {tokens['viewer']}"},
    )
    assert response.status_code == 200 and response.get_json()["lunar_month"] == 3


def test_bad_lunar_values_are_400s_naming_the_field(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    bulletin = approved_bulletin(service, users.officer, "Tin", "Họp dân.")
    base = {"bulletin": bulletin, "time_of_day": "06:00", "zones": ["thon-a"]}
    cases = [
        ({"kind": "lunar_monthly"}, "lunar_days"),
        ({"kind": "lunar_monthly", "lunar_days": []}, "lunar_days"),
        ({"kind": "lunar_monthly", "lunar_days": [0]}, "lunar_days"),
        ({"kind": "lunar_monthly", "lunar_days": [31]}, "lunar_days"),
        ({"kind": "lunar_monthly", "lunar_days": ["15"]}, "lunar_days"),
        ({"kind": "lunar_monthly", "lunar_days": 15}, "lunar_days"),
        ({"kind": "lunar_yearly", "lunar_days": [10]}, "lunar_month"),
        ({"kind": "lunar_yearly", "lunar_days": [10], "lunar_month": 13}, "lunar_month"),
        ({"kind": "lunar_yearly", "lunar_days": [10], "lunar_month": 0}, "lunar_month"),
        ({"kind": "lunar_yearly", "lunar_days": [10], "lunar_month": 2.5}, "lunar_month"),
        ({"kind": "lunar_yearly", "lunar_days": [10], "lunar_month": 3, "time_of_day": "x"},
         "time_of_day"),
    ]  # fmt: skip
    for extra, field in cases:
        status, error = _post(client, tokens["officer"], {**base, **extra})
        assert status == 400 and error["error"]["field"] == field, (extra, error)
        assert error["error"]["message"]


def test_day_30_is_accepted(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    """30 exists only in long months: in a short one the schedule plays on its last day."""
    bulletin = approved_bulletin(service, users.officer, "Cuối tháng", "Nộp quỹ.")
    status, created = _post(
        client,
        tokens["officer"],
        {
            "bulletin": bulletin,
            "kind": "lunar_monthly",
            "lunar_days": [30],
            "time_of_day": "18:00",
            "zones": ["thon-a"],
        },
    )
    assert status == 201 and created["lunar_days"] == [30]


def test_edge_values_in_the_lunar_fields_are_400s(
    client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    """Python's edge values on the lunar path (huge ints, infinities, surrogates, deep
    nesting, years 1 and 9999) are refused with a 400, never a 5xx, and nothing is stored."""
    bulletin = approved_bulletin(service, users.officer, "Tin", "Họp dân.")
    base = (f'{{"bulletin": {bulletin}, "time_of_day": "06:00", "zones": ["thon-a"],'
            ' "kind": "lunar_yearly", ')  # fmt: skip
    tails = [
        '"lunar_days": [10], "lunar_month": 1180591620717411303424}',
        '"lunar_days": [1180591620717411303424], "lunar_month": 3}',
        '"lunar_days": [10], "lunar_month": 1e999}',
        '"lunar_days": [10], "lunar_month": Infinity}',
        '"lunar_days": [NaN], "lunar_month": 3}',
        '"lunar_days": ["\\ud800"], "lunar_month": 3}',
        '"lunar_days": ' + "[" * 200 + "]" * 200 + ', "lunar_month": 3}',
        '"lunar_days": [10], "lunar_month": 3, "valid_from": "0001-01-01"}',
        '"lunar_days": [10], "lunar_month": 3, "valid_to": "9999-12-31"}',
    ]
    for tail in tails:
        response = client.post(
            "/api/v1/schedules",
            data=base + tail,
            content_type="application/json",
            headers={"Authorization": f"Bearer {tokens['officer']}"},
        )
        assert response.status_code == 400, (tail[:80], response.get_json())
        assert response.get_json()["error"]["field"]
    with service.db.session() as session:
        assert session.scalar(select(func.count(Schedule.id))) == 0
