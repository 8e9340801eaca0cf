"""JSON API: token auth, the same authorization as the pages, errors that name the field."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from service_support import Province, RecordingDispatcher, broadcast_status, wait_for
from support import tone_wav

from broadcast.fleet import registry
from broadcast.people import accounts
from broadcast.service import BroadcastService
from wire import protocol
from wire.protocol import DeviceStatus, ReceiverState


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
        "code": None,
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
        ({"text": "Bão", "zones": ["thon-a"], "title": "T" * 301}, "title"),  # a 300-char column
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


def test_a_method_a_route_does_not_take_is_405_with_allow(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    """RFC 9110: a 405 names the methods the resource takes, in `Allow`."""
    cases = [
        ("DELETE", "/api/v1/health", {"GET"}),
        ("POST", "/api/v1/zones", {"GET"}),
        ("PUT", "/api/v1/announcements/1", {"GET"}),
        ("GET", "/api/v1/announcements/1/cancel", {"POST"}),
        ("PUT", "/api/v1/bulletins/1", {"GET", "PATCH"}),
        ("PATCH", "/api/v1/schedules/1", {"GET", "DELETE"}),
    ]
    for method, url, allowed in cases:
        response = client.open(url, method=method, headers=_auth(tokens["officer"]))
        assert response.status_code == 405, (method, url)
        assert response.is_json and response.get_json()["error"]["message"]
        allow = {part.strip() for part in response.headers.get("Allow", "").split(",")}
        assert allowed <= allow and method not in allow, (method, url, allow)


def _announce(client: FlaskClient, token: str, **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Mất điện từ 14h.", "priority": "emergency", **body},
        headers=_auth(token),
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _wait_sent(service: BroadcastService, broadcast_id: int) -> None:
    wait_for(lambda: broadcast_status(service, broadcast_id) != "pending", 30)
    assert broadcast_status(service, broadcast_id) == "dispatched"


def test_devices_can_be_targets(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    body = _announce(client, tokens["officer"], devices=["loa-b-01"])
    assert body["zones"] == [] and body["devices"] == ["loa-b-01"]
    assert [d["device"] for d in body["deliveries"]] == ["loa-b-01"]
    _wait_sent(service, body["id"])
    shown = client.get(f"/api/v1/announcements/{body['id']}", headers=_auth(tokens["officer"]))
    data = shown.get_json()
    assert data["item_id"] == f"b{body['id']}" and data["play_at"] and data["valid_until"]
    both = _announce(client, tokens["admin"], zones=["thon-a"], devices=["loa-b-01"])
    assert sorted(d["device"] for d in both["deliveries"]) == ["loa-a-01", "loa-b-01"]


def test_village_head_cannot_target_other_villages_devices(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Mất điện", "devices": ["loa-b-01"]},
        headers=_auth(tokens["head-a"]),
    )
    assert response.status_code == 403
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Mất điện", "devices": ["loa-nope"]},
        headers=_auth(tokens["officer"]),
    )
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "devices"


def test_cancel_with_a_correction(
    client: FlaskClient,
    tokens: dict[str, str],
    service: BroadcastService,
    sent: RecordingDispatcher,
) -> None:
    wrong = _announce(client, tokens["officer"], zones=["thon-a"])
    _wait_sent(service, wrong["id"])
    response = client.post(
        f"/api/v1/announcements/{wrong['id']}/cancel",
        json={"correction": "Đính chính: mất điện từ 16h, không phải 14h."},
        headers=_auth(tokens["officer"]),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["cancelled"]["status"] == "cancelled" and body["cancelled"]["cancelled_at"]
    correction = body["correction"]
    assert correction["corrects"] == wrong["id"] and correction["priority"] == "emergency"
    assert correction["zones"] == ["thon-a"]
    stops = [s for s in sent.sent if s.command.kind is protocol.CommandKind.STOP]
    assert [s.topic for s in stops] == [protocol.zone_command_topic("thon-a")]
    again = client.post(
        f"/api/v1/announcements/{wrong['id']}/cancel", headers=_auth(tokens["officer"])
    )
    assert again.status_code == 409 and again.get_json()["error"]["field"] == "broadcast"


def test_cancel_rules(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    commune = _announce(client, tokens["officer"], zones=["xa-test"])
    _wait_sent(service, commune["id"])
    url = f"/api/v1/announcements/{commune['id']}/cancel"
    assert client.post(url, headers=_auth(tokens["viewer"])).status_code == 403
    assert client.post(url, headers=_auth(tokens["head-a"])).status_code == 403
    bad = client.post(url, data="nope", headers=_auth(tokens["officer"]))
    assert bad.status_code == 400
    assert (
        client.post(
            "/api/v1/announcements/999/cancel", headers=_auth(tokens["officer"])
        ).status_code
        == 404
    )
    plain = client.post(url, headers=_auth(tokens["officer"]))  # no body: stop, no correction
    assert plain.status_code == 200 and plain.get_json()["correction"] is None


def test_village_head_reads_only_their_own_receivers_of_a_commune_wide_broadcast(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    commune = _announce(client, tokens["officer"], zones=["xa-test"])
    _wait_sent(service, commune["id"])
    url = f"/api/v1/announcements/{commune['id']}"
    everyone = client.get(url, headers=_auth(tokens["officer"])).get_json()
    assert [d["device"] for d in everyone["deliveries"]] == ["loa-a-01", "loa-b-01"]
    head = client.get(url, headers=_auth(tokens["head-a"]))
    assert head.status_code == 200
    assert [d["device"] for d in head.get_json()["deliveries"]] == ["loa-a-01"]
    listed = client.get("/api/v1/announcements", headers=_auth(tokens["head-a"])).get_json()
    [row] = [row for row in listed if row["id"] == commune["id"]]
    assert row["deliveries_total"] == 1 and row["delivery_counts"] == {"queued": 1}


def test_a_finished_announcement_is_not_stopped_again(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    done = _announce(client, tokens["officer"], zones=["thon-a"])
    _wait_sent(service, done["id"])
    service._on_event(
        protocol.DeviceEvent("loa-a-01", "c", done["id"], protocol.EventKind.FINISHED, time.time())
    )
    wait_for(lambda: broadcast_status(service, done["id"]) == "finished", 30)
    refused = client.post(
        f"/api/v1/announcements/{done['id']}/cancel", headers=_auth(tokens["officer"])
    )
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["error"]["field"] == "broadcast"
    assert "đã kết thúc" in refused.get_json()["error"]["message"]
    assert broadcast_status(service, done["id"]) == "finished"


def test_device_json_shows_the_heartbeat(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    service._on_status(
        DeviceStatus(
            "loa-a-01",
            ReceiverState.IDLE,
            "boot",
            time.time(),
            extra={"cache_complete": 1.0, "clock_offset_s": 0.2},
        )
    )
    devices = client.get("/api/v1/devices", headers=_auth(tokens["officer"])).get_json()
    mine = next(d for d in devices if d["id"] == "loa-a-01")
    assert mine["online"] and mine["status"] == {"cache_complete": 1.0, "clock_offset_s": 0.2}


def test_village_head_does_not_see_other_villages_devices_broadcasts(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    other = _announce(client, tokens["officer"], devices=["loa-b-01"])
    own = _announce(client, tokens["officer"], devices=["loa-a-01"])
    head = _auth(tokens["head-a"])
    assert client.get(f"/api/v1/announcements/{other['id']}", headers=head).status_code == 404
    assert client.get(f"/api/v1/announcements/{own['id']}", headers=head).status_code == 200


def test_a_recorded_announcement_over_the_api(
    client: FlaskClient, tokens: dict[str, str], sent: Any, tmp_path: Path
) -> None:
    recording = tone_wav(tmp_path / "giong-noi.wav", seconds=2.0)
    headers = {"Authorization": f"Bearer {tokens['head-a']}"}

    def post(token_headers: dict[str, str], **fields: Any) -> Any:
        data = {"zones": "thon-a", "repeat": "2", "title": "Thông báo của trưởng thôn", **fields}
        if "recording" not in fields:
            data["recording"] = (recording.open("rb"), "giong-noi.wav")
        return client.post(
            "/api/v1/announcements/recording",
            data=data,
            headers=token_headers,
            content_type="multipart/form-data",
        )

    response = post(headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["repeat"] == 2 and body["zones"] == ["thon-a"]
    assert body["title"] == "Thông báo của trưởng thôn"
    url = f"/api/v1/announcements/{body['id']}"
    sent_body = wait_for(
        lambda: (b := client.get(url, headers=headers).get_json())["status"] != "pending" and b,
        what="the recording dispatched",
    )
    assert sent_body["status"] == "dispatched" and sent_body["media_sha256"]
    refused = post(headers, zones="thon-b")
    assert refused.status_code == 403, refused.get_json()
    viewer = post({"Authorization": f"Bearer {tokens['viewer']}"})
    assert viewer.status_code == 403
    broken = post(headers, recording=(io.BytesIO(b"not audio at all" * 100), "x.wav"))
    assert broken.status_code == 400 and broken.get_json()["error"]["field"] == "recording"
    missing = client.post(
        "/api/v1/announcements/recording",
        data={"zones": "thon-a"},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "recording"


def test_devices_come_a_page_at_a_time_with_the_total_and_the_next_page(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    """A province's thousands of receivers are read page by page; the body stays a list."""
    with service.db.session() as session:
        for n in range(2, 26):
            registry.register_device(
                session, service.settings, service.fleet.public_key_text, f"loa-b-{n:02d}", "thon-b"
            )
    service._on_status(DeviceStatus("loa-b-07", ReceiverState.IDLE, "boot", time.time()))
    officer = _auth(tokens["officer"])
    seen: list[str] = []
    url: str | None = "/api/v1/devices?per_page=10&zone=xa-test"
    for _ in range(5):  # 26 receivers: three pages, then no next link
        if url is None:
            break
        response = client.get(url, headers=officer)
        assert response.status_code == 200 and response.headers["X-Total-Count"] == "26"
        seen += [device["id"] for device in response.get_json()]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert url is None and seen == sorted(seen) and len(seen) == len(set(seen)) == 26

    default = client.get("/api/v1/devices", headers=officer).get_json()
    assert len(default) == 26  # a commune fits in the default page
    # an empty filter is no filter, as in the reports (it was a 400 for a string the
    # document allows: a fuzzer's schema-valid request refused)
    assert client.get("/api/v1/devices?zone=", headers=officer).get_json() == default
    village = client.get("/api/v1/devices?zone=thon-a", headers=officer)
    assert [d["id"] for d in village.get_json()] == ["loa-a-01"]
    online = client.get("/api/v1/devices?online=true", headers=officer)
    assert [d["id"] for d in online.get_json()] == ["loa-b-07"]
    assert online.headers["X-Total-Count"] == "1" and "Link" not in online.headers
    offline = client.get("/api/v1/devices?online=false&per_page=1", headers=officer)
    assert offline.headers["X-Total-Count"] == "25"

    head = _auth(tokens["head-a"])
    refused = client.get("/api/v1/devices?zone=thon-b", headers=head)
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "zone"
    for query, field in (
        ("per_page=0", "per_page"),
        ("page=x", "page"),
        ("page=%C2%B2", "page"),  # "²" is a digit to str.isdigit, not to int()
        ("page=" + "9" * 5000, "page"),
        ("online=yes", "online"),
    ):
        response = client.get(f"/api/v1/devices?{query}", headers=officer)
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_the_announcement_list_counts_deliveries_per_state(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    """A list of broadcasts carries counts, the broadcast itself one record per receiver."""
    body = _announce(client, tokens["officer"], zones=["xa-test"])
    _wait_sent(service, body["id"])
    service._on_event(
        protocol.DeviceEvent("loa-a-01", "c", body["id"], protocol.EventKind.FINISHED, time.time())
    )
    listed = client.get("/api/v1/announcements", headers=_auth(tokens["officer"])).get_json()
    [row] = [row for row in listed if row["id"] == body["id"]]
    assert row["deliveries_total"] == 2 and "deliveries" not in row
    assert row["delivery_counts"] == {"finished": 1, "queued": 1}
    full = client.get(f"/api/v1/announcements/{body['id']}", headers=_auth(tokens["officer"]))
    states = {d["device"]: d["state"] for d in full.get_json()["deliveries"]}
    assert states == {"loa-a-01": "finished", "loa-b-01": "queued"}


def test_zones_of_a_province_carry_their_kind_and_code(
    client: FlaskClient, service: BroadcastService, province: Province
) -> None:
    with service.db.session() as session:
        token = accounts.create_token(session, accounts.get_user(session, "tinh-admin"))
    zones = {z["id"]: z for z in client.get("/api/v1/zones", headers=_auth(token)).get_json()}
    assert set(zones) == {"tinh-thu", "xa-an", "xa-binh", "thon-an-1", "thon-an-2", "thon-binh-1"}
    assert (zones["tinh-thu"]["kind"], zones["tinh-thu"]["code"]) == ("province", "99")
    assert (zones["xa-binh"]["parent"], zones["xa-binh"]["code"]) == ("tinh-thu", "99002")
    assert zones["thon-an-1"]["code"] is None
