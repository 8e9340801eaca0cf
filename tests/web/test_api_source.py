"""The source-information system's API: idempotent bulletins, CAP alerts, what became of them.
Every answer is checked against the OpenAPI document (`openapi_check.CheckedClient`)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from service_support import PASSWORD
from sqlalchemy import select
from support import tone_wav
from web_support import csrf_token

from broadcast.service import BroadcastService
from broadcast.store.models import BulletinForward

CAP = Path(__file__).resolve().parents[1] / "data" / "cap"


def _forwards(service: BroadcastService) -> list[tuple[str, str, str]]:
    """(commune, priority, state) of every province bulletin's forward."""
    with service.db.session() as session:
        rows = session.scalars(select(BulletinForward).order_by(BulletinForward.id))
        return [(row.commune_id, row.priority, row.state) for row in rows]


def _headers(token: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


BODY = {"text": "Chiều nay họp dân lúc 14 giờ.", "priority": "normal", "communes": ["xa-test"]}


def test_a_bulletin_is_created_once_and_a_retry_finds_it(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    headers = _headers(tokens["source"], "2026-12-07-001")
    first = client.post("/api/v1/source/bulletins", json=BODY, headers=headers)
    assert first.status_code == 201, first.get_json()
    item = first.get_json()
    assert (item["kind"], item["disposition"], item["communes"]) == (
        "bulletin",
        "broadcast",
        ["xa-test"],
    )
    assert first.headers["Location"] == f"/api/v1/source/items/{item['id']}"
    again = client.post("/api/v1/source/bulletins", json=BODY, headers=headers)
    assert (again.status_code, again.get_json()) == (200, item)
    assert _forwards(service) == [("xa-test", "normal", "received")]
    other = client.post(
        "/api/v1/source/bulletins", json={**BODY, "priority": "priority"}, headers=headers
    )
    assert other.status_code == 409
    assert other.get_json()["error"]["field"] == "Idempotency-Key"
    read = client.get(f"/api/v1/source/items/{item['id']}", headers=_headers(tokens["source"]))
    assert read.get_json() == item
    listed = client.get("/api/v1/source/items", headers=_headers(tokens["source"]))
    assert [row["id"] for row in listed.get_json()] == [item["id"]]


def test_a_bulletin_without_a_key_or_with_a_bad_field_is_a_400(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    response = client.post(
        "/api/v1/source/bulletins", json=BODY, headers=_headers(tokens["source"])
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "Idempotency-Key"
    response = client.post(
        "/api/v1/source/bulletins",
        json={**BODY, "communes": ["no-such-commune"]},
        headers=_headers(tokens["source"], "k2"),
    )
    assert (response.status_code, response.get_json()["error"]["field"]) == (400, "communes")
    response = client.post(
        "/api/v1/source/bulletins",
        json={**BODY, "zones": ["xa-test"]},
        headers=_headers(tokens["source"], "k3"),
    )
    assert response.status_code == 400
    assert _forwards(service) == []


def test_an_uploaded_recording_is_a_bulletin_too(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService, tmp_path: Path
) -> None:
    wav = tone_wav(tmp_path / "tin.wav", seconds=1.0).read_bytes()
    response = client.post(
        "/api/v1/source/bulletins",
        data={
            "audio": (io.BytesIO(wav), "tin.wav"),
            "title": "Tin tiếng Mông",
            "priority": "priority",
            "communes": "xa-test",
        },
        headers=_headers(tokens["source"], "rec-1"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    assert _forwards(service) == [("xa-test", "priority", "received")]


def test_people_may_not_feed(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    for name in ("admin", "officer", "head-a"):
        response = client.post(
            "/api/v1/source/bulletins", json=BODY, headers=_headers(tokens[name], "k")
        )
        assert response.status_code == 403
        response = client.post(
            "/api/v1/source/cap",
            data=b"<alert/>",
            headers=_headers(tokens[name]),
            content_type="application/json",
        )
        assert response.status_code == 403
    assert _forwards(service) == []


def test_a_source_account_cannot_sign_in_on_the_pages(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login", data={"username": "nguon", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 200  # the form again, not a redirect into the site
    assert client.get("/").status_code == 302  # still signed out


def test_malformed_or_mistyped_cap_is_a_400_and_creates_nothing(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    headers = _headers(tokens["source"])
    wrong_type = client.post(
        "/api/v1/source/cap", data=b"<alert/>", headers=headers, content_type="text/plain"
    )
    assert (wrong_type.status_code, wrong_type.get_json()["error"]["field"]) == (
        400,
        "Content-Type",
    )
    for data in (b"not xml", b"<alert/>", (CAP / "oasis-a2-thunderstorm.xml").read_bytes()):
        response = client.post(
            "/api/v1/source/cap", data=data, headers=headers, content_type="application/cap+xml"
        )
        assert response.status_code == 400, response.get_json()
    listed = client.get("/api/v1/source/items", headers=headers)
    assert listed.get_json() == [] and _forwards(service) == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "x", "priority": "normal", "communes": [99999999999999999999999999]}',
        b'{"text": "\\ud800", "priority": "normal", "communes": ["xa-test"]}',
        b'{"text": "x", "priority": "normal", "communes": ["xa-test"], "title": '
        + b"[" * 200
        + b"]" * 200
        + b"}",
        b'{"text": "x", "priority": Infinity, "communes": ["xa-test"]}',
        b'{"text": "x", "priority": "normal", "communes": ["xa-test"],'
        b' "valid_until": "9999-12-31T23:59+07:00"}',
        b'{"text": "x", "priority": "normal", "communes": ["xa-test"],'
        b' "valid_until": "0001-01-01T00:00+07:00"}',
        b'{"text": "x", "priority": "normal", "communes": ["xa-test"], "valid_until": 1e999}',
    ],
)
def test_edge_values_are_a_400_and_store_nothing(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService, raw: bytes
) -> None:
    response = client.post(
        "/api/v1/source/bulletins",
        data=raw,
        headers=_headers(tokens["source"], "edge"),
        content_type="application/json",
    )
    assert response.status_code == 400, response.get_json()
    assert _forwards(service) == []
