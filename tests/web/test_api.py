"""JSON API: token auth, the same authorization as the pages, errors that name the field."""

from __future__ import annotations

from flask.testing import FlaskClient


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health_needs_no_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/health").get_json() == {"status": "ok"}


def test_missing_or_bad_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/zones")
    assert response.status_code == 401
    assert "Bearer" in response.get_json()["error"]["message"]
    assert client.get("/api/v1/zones", headers=_auth("loa_nope")).status_code == 401


def test_zones_and_devices(client: FlaskClient, tokens: dict[str, str]) -> None:
    zones = client.get("/api/v1/zones", headers=_auth(tokens["officer"])).get_json()
    by_id = {zone["id"]: zone for zone in zones}
    assert by_id["thon-a"] == {
        "id": "thon-a",
        "name": "Thôn A",
        "kind": "village",
        "parent": "xa-test",
        "devices": ["loa-a-01"],
    }
    assert by_id["xa-test"]["kind"] == "commune"
    devices = client.get("/api/v1/devices", headers=_auth(tokens["officer"])).get_json()
    assert {d["id"] for d in devices} == {"loa-a-01", "loa-b-01"}
    assert set(devices[0]) >= {"id", "zone", "online", "state", "last_seen"}


def test_village_head_sees_only_own_village(client: FlaskClient, tokens: dict[str, str]) -> None:
    zones = client.get("/api/v1/zones", headers=_auth(tokens["head-a"])).get_json()
    assert [zone["id"] for zone in zones] == ["thon-a"]
    devices = client.get("/api/v1/devices", headers=_auth(tokens["head-a"])).get_json()
    assert [d["id"] for d in devices] == ["loa-a-01"]


def test_village_head_cannot_target_other_village(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Mất điện", "zones": ["thon-b"], "priority": "emergency"},
        headers=_auth(tokens["head-a"]),
    )
    assert response.status_code == 403


def test_viewer_cannot_announce(client: FlaskClient, tokens: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Mất điện", "zones": ["thon-a"]},
        headers=_auth(tokens["viewer"]),
    )
    assert response.status_code == 403


def test_errors_name_the_field(client: FlaskClient, tokens: dict[str, str]) -> None:
    cases = [
        ({"text": "", "zones": ["thon-a"]}, "text"),
        ({"text": "Bão", "zones": ["thon-q"]}, "zones"),
        ({"text": "Bão", "zones": ["thon-a"], "priority": "max"}, "priority"),
        ({"text": "Bão", "zones": ["thon-a"], "repeat": 99}, "repeat"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/announcements", json=body, headers=_auth(tokens["officer"]))
        assert response.status_code == 400, body
        assert response.get_json()["error"]["field"] == field
    response = client.post(
        "/api/v1/announcements", data="not json", headers=_auth(tokens["officer"])
    )
    assert response.status_code == 400


def test_unknown_announcement_is_404_json(client: FlaskClient, tokens: dict[str, str]) -> None:
    response = client.get("/api/v1/announcements/999", headers=_auth(tokens["officer"]))
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_unknown_api_route_is_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert "error" in response.get_json()
    assert client.delete("/api/v1/health").get_json()["error"]
