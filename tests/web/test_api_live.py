"""Live broadcasts over the API, without a streaming engine running: who may go live where,
the signed PLAY of the stream (its token, its maximum duration, `live`), Icecast's listener
check, "Kết thúc" and the audit log. The stream itself is in tests/e2e/test_live.py."""

from __future__ import annotations

import hashlib
import urllib.parse

import pytest
from flask.testing import FlaskClient
from service_support import RecordingDispatcher, wait_for
from sqlalchemy import func, select

import audio
from broadcast.fleet import streaming
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Broadcast
from wire import protocol

STREAM_PORT = 18010


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def live(service: BroadcastService) -> BroadcastService:
    service.settings.stream_port = STREAM_PORT  # read at each call: an engine is "running"
    return service


def _plays(sent: RecordingDispatcher, zone: str) -> list[protocol.PlayBody]:
    return [
        s.command.body  # type: ignore[misc]
        for s in sent.on(protocol.zone_command_topic(zone))
        if s.command.kind is protocol.CommandKind.PLAY
    ]


def _go_live(client: FlaskClient, token: str, **body: object) -> dict[str, object]:
    response = client.post("/api/v1/live", json=body, headers=_auth(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _admitted(client: FlaskClient, mount: str) -> bool:
    response = client.post("/live/listeners", data={"action": "listener_add", "mount": mount})
    assert response.status_code == 200
    return response.headers.get("icecast-auth-user") == "1"


def test_without_a_streaming_engine_going_live_is_refused(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/live", json={"zones": ["thon-a"]}, headers=_auth(tokens["head-a"])
    )
    assert response.status_code == 409  # the server's set-up: never a 5xx
    assert response.get_json()["error"]["field"] == "live"
    # the role is checked first: a viewer learns nothing about the engine
    response = client.post(
        "/api/v1/live", json={"zones": ["thon-a"]}, headers=_auth(tokens["viewer"])
    )
    assert response.status_code == 403


def test_a_village_head_goes_live_to_their_village_and_ends_it(
    client: FlaskClient,
    tokens: dict[str, str],
    live: BroadcastService,
    sent: RecordingDispatcher,
) -> None:
    refused = client.post(
        "/api/v1/live", json={"zones": ["thon-b"]}, headers=_auth(tokens["head-a"])
    )
    assert refused.status_code in (400, 403)
    body = _go_live(client, tokens["head-a"], zones=["thon-a"], minutes=5, priority="emergency")
    assert body["source"] == "live" and body["content"] == "relay"
    assert body["duration_s"] == 300 and body["priority"] == "emergency"
    assert body["relay_url"].endswith(streaming.mount_for(body["id"]))  # no token shown
    (play,) = wait_for(lambda: _plays(sent, "thon-a"), 30, "the PLAY of the stream")
    assert play.live and play.content is protocol.ContentType.RELAY
    assert play.duration_s == 300 and play.priority is protocol.Priority.EMERGENCY
    # it carries the opening chime to play first: a file of the media store, served as any
    chime = client.get(urllib.parse.urlsplit(play.media_url).path)
    assert chime.status_code == 200
    assert hashlib.sha256(chime.data).hexdigest() == play.media_sha256
    assert 1.5 < audio.probe_duration_s(chime.data) < 4  # the chime, not a whole notice
    url = urllib.parse.urlsplit(play.relay_url)
    assert url.port == STREAM_PORT and url.path == streaming.mount_for(body["id"])  # type: ignore[arg-type]
    assert not _plays(sent, "thon-b")

    requested = f"{url.path}?{url.query}"
    assert _admitted(client, requested)
    assert not _admitted(client, url.path)
    assert not _admitted(client, f"{url.path}?token={'0' * 32}")
    other = streaming.mount_for(body["id"] + 1)  # type: ignore[operator]
    assert not _admitted(client, f"{other}?{url.query}")
    response = client.post("/live/listeners", data={"action": "mount_add", "mount": requested})
    assert "icecast-auth-user" not in response.headers

    # only the speaker feeds it
    fed = client.post(
        f"/api/v1/live/{body['id']}/feed",
        data=b"\x00" * 10,
        content_type="audio/webm",
        headers=_auth(tokens["officer"]),
    )
    assert fed.status_code == 403

    ended = client.post(f"/api/v1/live/{body['id']}/end", headers=_auth(tokens["head-a"]))
    assert ended.status_code == 200 and ended.get_json()["status"] == "cancelled"
    stops = [s for s in sent.sent if s.command.kind is protocol.CommandKind.STOP]
    assert [s.topic for s in stops] == [protocol.zone_command_topic("thon-a")]
    assert not _admitted(client, requested)  # Icecast lets no one in any more
    again = client.post(f"/api/v1/live/{body['id']}/end", headers=_auth(tokens["head-a"]))
    assert again.status_code == 409
    fed = client.post(
        f"/api/v1/live/{body['id']}/feed",
        data=b"\x00",
        content_type="audio/webm",
        headers=_auth(tokens["head-a"]),
    )
    assert fed.status_code == 409

    with live.db.session() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.target == f"broadcast:{body['id']}")
        ).all()
        actions = [(entry.username, entry.action) for entry in entries]
        assert actions == [("head-a", "broadcast.live_start"), ("head-a", "broadcast.live_end")]
        assert entries[0].detail["zones"] == ["thon-a"]


def test_an_announcement_is_no_live_broadcast(
    client: FlaskClient, tokens: dict[str, str], live: BroadcastService
) -> None:
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Mất điện.", "zones": ["thon-a"]},
        headers=_auth(tokens["officer"]),
    )
    announcement = response.get_json()["id"]
    ended = client.post(f"/api/v1/live/{announcement}/end", headers=_auth(tokens["officer"]))
    assert ended.status_code == 404
    bad = client.post(
        "/api/v1/live", json={"zones": ["thon-a"], "minutes": 0}, headers=_auth(tokens["officer"])
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "minutes"


@pytest.mark.parametrize(
    "raw",
    [
        '{"zones": ["thon-a"], "minutes": 99999999999999999999999}',
        '{"zones": ["thon-a"], "minutes": 1e999}',
        '{"zones": ["thon-a"], "minutes": Infinity}',
        '{"zones": ["thon-a"], "title": "\\ud800"}',
        '{"zones": ["thon-a"], "title": "a\\u0000b"}',
        '{"zones": ' + "[" * 200 + "]" * 200 + "}",
        '{"zones": ["thon-a"], "minutes": "30"}',
        '{"zones": ["thon-a"], "at": "9999-12-31T23:59:59Z"}',
    ],
)
def test_edge_values_are_a_400_naming_the_field_before_anything_starts(
    client: FlaskClient, tokens: dict[str, str], live: BroadcastService, raw: str
) -> None:
    """Going live reads its body through the one input reader: an edge value is a 400 that
    names the field, and no broadcast is made."""
    with live.db.session() as session:
        before = session.scalar(select(func.count(Broadcast.id)))
    response = client.post(
        "/api/v1/live",
        data=raw,
        headers={**_auth(tokens["head-a"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["message"]
    with live.db.session() as session:
        assert session.scalar(select(func.count(Broadcast.id))) == before


def test_a_live_broadcast_may_be_internal(
    client: FlaskClient, tokens: dict[str, str], live: BroadcastService
) -> None:
    """Nội bộ: its recording stays off the commune's replay page (the broadcast row carries it);
    the default is public, and anything but JSON true or false is a 400 naming it."""
    hidden = _go_live(client, tokens["head-a"], zones=["thon-a"], minutes=5, internal=True)
    assert hidden["internal"] is True
    client.post(f"/api/v1/live/{hidden['id']}/end", headers=_auth(tokens["head-a"]))
    plain = _go_live(client, tokens["head-a"], zones=["thon-a"], minutes=5)
    assert plain["internal"] is False
    client.post(f"/api/v1/live/{plain['id']}/end", headers=_auth(tokens["head-a"]))
    refused = client.post(
        "/api/v1/live",
        json={"zones": ["thon-a"], "internal": "yes"},
        headers=_auth(tokens["head-a"]),
    )
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "internal"
