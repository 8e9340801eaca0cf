"""Nghe lại over the API (`web.api.replay`): a commune's switch, what is internal, feedback and
its moderation, for whoever may manage the commune's replay (MANAGE_REPLAY over its zone; the
role boundaries are tests/web/test_role_boundaries.py's); and the internal choice when an
announcement or a bulletin is made, which keeps it off the public page and the podcast.

Every answer is checked against the OpenAPI document (`openapi_check.CheckedClient`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from media_support import silent_mp3
from service_support import Province, broadcast_status, wait_for
from support import tone_wav

from broadcast.people import accounts
from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Bulletin, Feedback, Zone, utcnow


@pytest.fixture
def tokens(service: BroadcastService, province: Province) -> dict[str, str]:
    """Tokens of the province's accounts, by user name."""
    names = ("an-officer", "binh-officer", "an-head", "tinh-editor", "tinh-admin", "an-admin")
    with service.db.session() as session:
        return {
            name: accounts.create_token(session, accounts.get_user(session, name)) for name in names
        }


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _item(service: BroadcastService, title: str, zone: str, **fields: object) -> int:
    """A broadcast that sounded two hours ago, with media (what the public page lists)."""
    sha = service.media.put_bytes(silent_mp3())
    with service.db.session() as session:
        row = Broadcast(
            title=title,
            text=f"Nội dung {title}.",
            priority="normal",
            zone_ids=[zone],
            source="announcement",
            status="finished",
            play_at=utcnow() - timedelta(hours=2),
            media_sha256=sha,
            **fields,
        )
        session.add(row)
        session.flush()
        return row.id


def _open(service: BroadcastService, commune: str) -> None:
    with service.db.session() as session:
        session.get(Zone, commune).replay_public = True  # type: ignore[union-attr]


def _public(client: FlaskClient, commune: str) -> str:
    """The public page and the podcast together, as one text to look in."""
    page = client.get(f"/nghe-lai/{commune}/")
    feed = client.get(f"/nghe-lai/{commune}/podcast.xml")
    assert page.status_code == 200 and feed.status_code == 200
    return page.get_data(as_text=True) + feed.get_data(as_text=True)


def _refused(response: object, status: int, field: str | None = None) -> None:
    code = response.status_code  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert code == status, body
    if field is not None:
        assert body["error"]["field"] == field, body


# --- the commune's switch ---------------------------------------------------------------------


def test_the_officer_reads_and_switches_the_commune_page(
    client: FlaskClient, tokens: dict[str, str], province: Province
) -> None:
    officer = _auth(tokens["an-officer"])
    listed = client.get("/api/v1/replay/communes", headers=officer).get_json()
    assert [(c["id"], c["public"], c["pending"]) for c in listed] == [("xa-an", False, 0)]
    assert listed[0]["page_url"].endswith("/nghe-lai/xa-an/")
    assert listed[0]["podcast_url"].endswith("/nghe-lai/xa-an/podcast.xml")
    assert client.get("/nghe-lai/xa-an/").status_code == 404

    url = "/api/v1/replay/communes/xa-an"
    opened = client.patch(url, json={"public": True}, headers=officer)
    assert opened.status_code == 200 and opened.get_json()["public"] is True
    assert client.get(url, headers=officer).get_json()["public"] is True
    assert client.get("/nghe-lai/xa-an/").status_code == 200
    closed = client.patch(url, json={"public": False}, headers=officer).get_json()
    assert closed["public"] is False and client.get("/nghe-lai/xa-an/").status_code == 404

    province_wide = client.get("/api/v1/replay/communes", headers=_auth(tokens["tinh-admin"]))
    assert {c["id"] for c in province_wide.get_json()} == {"xa-an", "xa-binh"}


@pytest.mark.parametrize(
    "body",
    [{}, {"public": None}, {"public": "true"}, {"public": 1}, {"public": [True]}],
    ids=["missing", "null", "string", "one", "list"],
)
def test_the_switch_is_json_true_or_false(
    client: FlaskClient, tokens: dict[str, str], body: dict[str, object]
) -> None:
    response = client.patch(
        "/api/v1/replay/communes/xa-an", json=body, headers=_auth(tokens["an-officer"])
    )
    _refused(response, 400, "public")


def test_a_commune_out_of_reach_or_unknown_is_not_found(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    officer = _auth(tokens["an-officer"])
    for commune in ("xa-binh", "thon-an-1", "tinh-thu", "khong-co", "x" * 300):
        for method in ("GET", "PATCH"):
            url = f"/api/v1/replay/communes/{commune}"
            response = client.open(url, method=method, json={"public": True}, headers=officer)
            _refused(response, 404)
        _refused(client.get(f"/api/v1/replay/communes/{commune}/items", headers=officer), 404)
    with service.db.session() as session:
        assert not session.get(Zone, "xa-binh").replay_public  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/v1/replay/communes//items"),
        ("PATCH", "/api/v1/replay/communes//"),
        ("POST", "/api/v1/replay/broadcasts//internal"),
        ("GET", "/api/v1//replay/communes"),
    ],
)
def test_an_empty_path_segment_is_a_json_404(
    client: FlaskClient, tokens: dict[str, str], method: str, url: str
) -> None:
    """An empty commune (`communes//items`) was an HTML 308 to `communes/items`: werkzeug
    merged the slashes. The document has no 308; the API answers what names nothing with 404."""
    response = client.open(url, method=method, json={}, headers=_auth(tokens["an-officer"]))
    _refused(response, 404)
    assert "Location" not in response.headers


def test_who_may_not_manage_the_replay_is_refused(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    for name in ("an-head", "tinh-editor"):
        headers = _auth(tokens[name])
        _refused(client.get("/api/v1/replay/communes", headers=headers), 403)
        _refused(client.get("/api/v1/replay/feedback", headers=headers), 403)
        patch = client.patch(
            "/api/v1/replay/communes/xa-an", json={"public": True}, headers=headers
        )
        _refused(patch, 403)


# --- internal items ---------------------------------------------------------------------------


def test_marking_a_broadcast_internal_takes_it_off_the_page_and_feed(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService, province: Province
) -> None:
    _open(service, "xa-an")
    shown = _item(service, "Tin họp thôn", province.village_a)
    officer = _auth(tokens["an-officer"])
    assert "Tin họp thôn" in _public(client, "xa-an")
    url = f"/api/v1/replay/broadcasts/{shown}/internal"
    answer = client.post(url, json={"internal": True}, headers=officer)
    assert answer.status_code == 200 and answer.get_json() == {"id": shown, "internal": True}
    assert "Tin họp thôn" not in _public(client, "xa-an")
    [item] = client.get("/api/v1/replay/communes/xa-an/items", headers=officer).get_json()
    assert (item["broadcast"], item["internal"], item["public"]) == (shown, True, False)
    assert client.get(f"/api/v1/announcements/{shown}", headers=officer).get_json()["internal"]

    client.post(url, json={"internal": False}, headers=officer)
    assert "Tin họp thôn" in _public(client, "xa-an")


@pytest.mark.parametrize(
    "body",
    [{}, {"internal": None}, {"internal": "true"}, {"internal": 0}, {"internal": {}}],
    ids=["missing", "null", "string", "zero", "object"],
)
def test_the_internal_flag_is_json_true_or_false(
    client: FlaskClient,
    tokens: dict[str, str],
    service: BroadcastService,
    province: Province,
    body: dict[str, object],
) -> None:
    shown = _item(service, "Tin họp thôn", province.village_a)
    bulletin = service.bulletins.create_bulletin(province.officer_a, "Tin", "Họp dân.")
    officer = _auth(tokens["an-officer"])
    for url in (
        f"/api/v1/replay/broadcasts/{shown}/internal",
        f"/api/v1/replay/bulletins/{bulletin}/internal",
    ):
        _refused(client.post(url, json=body, headers=officer), 400, "internal")


def test_another_communes_items_are_refused(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService, province: Province
) -> None:
    """Another commune's broadcast or bulletin is not found (404), like an id that names
    nothing (a 403 told the officer that it exists); a broadcast that sounds in the commune but
    was aimed beyond it (the province's) is refused (403)."""
    theirs = _item(service, "Tin xã Bình", province.village_b)
    province_wide = _item(service, "Tin của tỉnh", province.province)
    bulletin = service.bulletins.create_bulletin(province.officer_b, "Tin Bình", "Họp dân.")
    officer = _auth(tokens["an-officer"])
    for broadcast, status in ((theirs, 404), (province_wide, 403)):
        url = f"/api/v1/replay/broadcasts/{broadcast}/internal"
        _refused(client.post(url, json={"internal": True}, headers=officer), status)
    url = f"/api/v1/replay/bulletins/{bulletin}/internal"
    _refused(client.post(url, json={"internal": True}, headers=officer), 404)
    missing = "/api/v1/replay/broadcasts/999999/internal"
    _refused(client.post(missing, json={"internal": True}, headers=officer), 404)
    with service.db.session() as session:
        assert not session.get(Broadcast, theirs).internal  # type: ignore[union-attr]
        assert not session.get(Broadcast, province_wide).internal  # type: ignore[union-attr]
        assert not session.get(Bulletin, bulletin).internal  # type: ignore[union-attr]


def test_marking_a_bulletin_internal_hides_its_runs(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService, province: Province
) -> None:
    _open(service, "xa-an")
    bulletin = service.bulletins.create_bulletin(province.officer_a, "Tin", "Họp dân.")
    officer = _auth(tokens["an-officer"])
    url = f"/api/v1/replay/bulletins/{bulletin}/internal"
    answer = client.post(url, json={"internal": True}, headers=officer)
    assert answer.get_json() == {"id": bulletin, "internal": True}
    read = client.get(f"/api/v1/bulletins/{bulletin}", headers=officer).get_json()
    assert read["internal"] is True


# --- the internal choice when sending -----------------------------------------------------------


def _announce(client: FlaskClient, token: str, text: str, **body: object) -> dict[str, object]:
    response = client.post(
        "/api/v1/announcements",
        json={"text": text, "zones": ["thon-an-1"], "priority": "emergency", **body},
        headers=_auth(token),
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_an_announcement_sent_internal_never_reaches_the_page_nor_the_feed(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService, province: Province
) -> None:
    """Sent internal, it is stored so, goes out like any other, and stays off the commune's
    page and podcast; the one sent normally after it appears there (once it has played)."""
    officer = _auth(tokens["an-officer"])
    client.patch("/api/v1/replay/communes/xa-an", json={"public": True}, headers=officer)
    hidden = _announce(client, tokens["an-head"], "Họp chi bộ lúc 19 giờ.", internal=True)
    shown = _announce(client, tokens["an-head"], "Mất điện từ 14 giờ.", internal=False)
    assert hidden["internal"] is True and shown["internal"] is False
    for broadcast in (hidden, shown):
        wait_for(lambda b=broadcast: broadcast_status(service, b["id"]) != "pending", 30)
        assert broadcast_status(service, broadcast["id"]) == "dispatched"
    wait_for(lambda: "Mất điện từ 14 giờ" in _public(client, "xa-an"), 30, "the normal one listed")
    public = _public(client, "xa-an")
    assert "Họp chi bộ" not in public and f"#b{hidden['id']}" not in public
    items = client.get("/api/v1/replay/communes/xa-an/items", headers=officer).get_json()
    assert {(i["broadcast"], i["public"]) for i in items} == {
        (hidden["id"], False),
        (shown["id"], True),
    }


def test_an_announcement_is_public_unless_told(client: FlaskClient, tokens: dict[str, str]) -> None:
    assert _announce(client, tokens["an-head"], "Mất điện.")["internal"] is False
    for value in ("true", 1, None):
        response = client.post(
            "/api/v1/announcements",
            json={"text": "Mất điện.", "zones": ["thon-an-1"], "internal": value},
            headers=_auth(tokens["an-head"]),
        )
        if value is None:  # null: the default
            assert response.status_code == 201
            continue
        _refused(response, 400, "internal")


def test_the_correction_of_an_internal_announcement_stays_internal(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService
) -> None:
    hidden = _announce(client, tokens["an-officer"], "Họp chi bộ lúc 19 giờ.", internal=True)
    wait_for(lambda: broadcast_status(service, hidden["id"]) != "pending", 30)
    response = client.post(
        f"/api/v1/announcements/{hidden['id']}/cancel",
        json={"correction": "Họp chi bộ lúc 20 giờ."},
        headers=_auth(tokens["an-officer"]),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["correction"]["internal"] is True


def test_a_recorded_announcement_may_be_internal(
    client: FlaskClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    recording = tone_wav(tmp_path / "giong-noi.wav", seconds=2.0)

    def send(internal: str) -> Any:
        data = {
            "recording": (recording.open("rb"), "giong-noi.wav"),
            "zones": "thon-an-1",
            "internal": internal,
        }
        return client.post(
            "/api/v1/announcements/recording",
            data=data,
            content_type="multipart/form-data",
            headers=_auth(tokens["an-head"]),
        )

    sent = send("true")
    assert sent.status_code == 201, sent.get_json()
    assert sent.get_json()["internal"] is True
    _refused(send("yes"), 400, "internal")


def test_a_bulletin_may_be_made_internal(client: FlaskClient, tokens: dict[str, str]) -> None:
    """Whoever writes it may keep it internal (it only hides); the default is public."""
    headers = _auth(tokens["tinh-editor"])
    made = client.post(
        "/api/v1/bulletins", json={"text": "Họp dân.", "internal": True}, headers=headers
    )
    assert made.status_code == 201 and made.get_json()["internal"] is True
    plain = client.post("/api/v1/bulletins", json={"text": "Họp dân."}, headers=headers)
    assert plain.get_json()["internal"] is False
    bad = client.post(
        "/api/v1/bulletins", json={"text": "Họp dân.", "internal": "no"}, headers=headers
    )
    _refused(bad, 400, "internal")


# --- feedback ---------------------------------------------------------------------------------


def _feedback(service: BroadcastService, broadcast: int, commune: str, text: str) -> int:
    with service.db.session() as session:
        row = Feedback(broadcast_id=broadcast, zone_id=commune, text=text, client_key="0" * 64)
        session.add(row)
        session.flush()
        return row.id


def test_feedback_is_listed_and_moderated(
    client: FlaskClient, tokens: dict[str, str], service: BroadcastService, province: Province
) -> None:
    _open(service, "xa-an")
    item = _item(service, "Tin họp thôn", province.village_a)
    given = service.replay.give_feedback(
        "xa-an", item, "Bà Lan", "Xin phát lại tối nay.", "10.0.0.1"
    )
    theirs = _feedback(
        service, _item(service, "Tin Bình", province.village_b), "xa-binh", "Ở Bình."
    )
    officer = _auth(tokens["an-officer"])
    listed = client.get("/api/v1/replay/feedback", headers=officer).get_json()
    assert [(f["id"], f["status"], f["name"]) for f in listed] == [(given, "pending", "Bà Lan")]
    assert listed[0]["item_title"] == "Tin họp thôn" and listed[0]["commune"] == "xa-an"
    assert client.get("/api/v1/replay/communes/xa-an", headers=officer).get_json()["pending"] == 1

    url = f"/api/v1/replay/feedback/{given}/moderate"
    approved = client.post(url, json={"decision": "approved"}, headers=officer).get_json()
    assert approved["status"] == "approved" and approved["moderated_at"]
    assert "Xin phát lại tối nay." in client.get("/nghe-lai/xa-an/").get_data(as_text=True)
    pending = client.get("/api/v1/replay/feedback?status=pending", headers=officer).get_json()
    assert pending == []
    by_status = client.get("/api/v1/replay/feedback?status=approved", headers=officer)
    assert [f["id"] for f in by_status.get_json()] == [given]

    hidden = client.post(url, json={"decision": "hidden"}, headers=officer).get_json()
    assert hidden["status"] == "hidden"
    assert "Xin phát lại tối nay." not in client.get("/nghe-lai/xa-an/").get_data(as_text=True)

    other = f"/api/v1/replay/feedback/{theirs}/moderate"
    _refused(client.post(other, json={"decision": "approved"}, headers=officer), 404)
    both = client.get("/api/v1/replay/feedback", headers=_auth(tokens["tinh-admin"])).get_json()
    assert {f["id"] for f in both} == {given, theirs}


@pytest.mark.parametrize("decision", ["pending", "APPROVED", "", None, 1, ["approved"]])
def test_a_decision_is_approved_or_hidden(
    client: FlaskClient,
    tokens: dict[str, str],
    service: BroadcastService,
    province: Province,
    decision: object,
) -> None:
    given = _feedback(service, _item(service, "Tin", province.village_a), "xa-an", "Hay.")
    url = f"/api/v1/replay/feedback/{given}/moderate"
    response = client.post(url, json={"decision": decision}, headers=_auth(tokens["an-officer"]))
    _refused(response, 400, "decision")
    with service.db.session() as session:
        assert session.get(Feedback, given).status == "pending"  # type: ignore[union-attr]


def test_an_unknown_status_filter_is_a_400(client: FlaskClient, tokens: dict[str, str]) -> None:
    for status in ("bogus", "", "x" * 300):
        response = client.get(
            f"/api/v1/replay/feedback?status={status}", headers=_auth(tokens["an-officer"])
        )
        _refused(response, 400, "status")
