"""The "Phát trực tiếp" page without a streaming engine running: offered only with one, the
start answered in JSON for the page's script, the microphone's pieces taken once each in order,
"Kết thúc" back to the broadcast's page, which never shows the stream's token. The browser and
the stream are in tests/browser/test_live.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from service_support import PASSWORD, RecordingDispatcher, broadcast_status, wait_for
from sqlalchemy import select
from web_support import csrf_token, login

import audio
from broadcast.const import Role
from broadcast.desks.live import LiveDesk
from broadcast.people import accounts
from broadcast.service import BroadcastService
from broadcast.store.locks import FileLock
from broadcast.store.models import Broadcast, User


@pytest.fixture
def live(service: BroadcastService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """An engine "runs"; no feeder starts (the spool is what is checked): the broadcasts a
    feeder would have fed."""
    service.settings.stream_port = 18012
    fed: list[int] = []

    def feeder(_desk: LiveDesk, _user_id: int, broadcast_id: int, lock: FileLock) -> None:
        lock.release()  # first: once it is counted, the next piece finds no feeder
        fed.append(broadcast_id)

    monkeypatch.setattr(LiveDesk, "_feed_from_spool", feeder)
    return fed


def test_without_an_engine_the_page_offers_no_button(client: FlaskClient) -> None:
    login(client, "head-a")
    assert 'id="go-live"' not in client.get("/announce/").get_data(as_text=True)
    page = client.get("/live/").get_data(as_text=True)
    assert 'id="live-off"' in page and 'id="live-form"' not in page
    login(client, "viewer")
    assert client.get("/live/").status_code == 403


def test_a_village_head_goes_live_feeds_pieces_and_ends(
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    live: list[int],
) -> None:
    login(client, "head-a")
    assert 'id="go-live"' in client.get("/announce/").get_data(as_text=True)
    token = csrf_token(client, "/live/")
    page = client.get("/live/").get_data(as_text=True)
    assert 'value="thon-a"' in page and 'value="thon-b"' not in page
    headers = {"X-CSRFToken": token}
    refused = client.post("/live/", data={"zones": "thon-b"}, headers=headers)
    assert refused.status_code in (400, 403) and refused.get_json()["error"]
    assert client.post("/live/", data={"zones": "thon-a"}).status_code == 400  # no CSRF token
    started = client.post("/live/", data={"zones": "thon-a", "minutes": "5"}, headers=headers)
    assert started.status_code == 201, started.get_json()
    answer = started.get_json()
    piece_url = answer["piece_url"]

    def piece(offset: int, data: bytes) -> tuple[int, dict[str, object]]:
        response = client.post(f"{piece_url}?offset={offset}", data=data, headers=headers)
        return response.status_code, response.get_json()

    # each piece finds the last one's feeder gone (the fake one ends at once, on a thread of
    # its own): waiting for it to end keeps the count from racing it
    assert piece(0, b"abc") == (200, {"size": 3})
    wait_for(lambda: len(live) == 1, what="the first feeder")
    assert piece(0, b"abc") == (200, {"size": 3})  # sent again: taken once
    wait_for(lambda: len(live) == 2, what="the second feeder")
    assert piece(2, b"cdef") == (200, {"size": 6})  # overlapping: only what is new
    wait_for(lambda: len(live) == 3, what="the third feeder")
    status, body = piece(9, b"x")
    assert status == 409 and body["error"]
    assert piece(-1, b"x")[0] == 400
    spool = service.settings.data_dir / "live" / f"{answer['id']}.feed"
    assert spool.read_bytes() == b"abcdef"
    assert live == [answer["id"]] * 3  # each piece found no feeder and "started" one

    ended = client.post(answer["end_url"], data={"csrf_token": token})
    assert ended.status_code == 302 and ended.headers["Location"].endswith(answer["page_url"])
    detail = client.get(answer["page_url"]).get_data(as_text=True)
    assert "token=" not in detail and "tối đa 5 phút" in detail
    assert piece(6, b"g")[0] == 409  # it has ended
    again = client.post(answer["end_url"], data={"csrf_token": token})
    assert again.status_code == 302  # ended already: its page says so


def test_ending_without_the_broker_says_so_on_the_broadcast_page(
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    live: list[int],
) -> None:
    login(client, "head-a")
    token = csrf_token(client, "/live/")
    started = client.post("/live/", data={"zones": "thon-a"}, headers={"X-CSRFToken": token})
    answer = started.get_json()
    service.dispatcher = None  # the broker went away
    ended = client.post(answer["end_url"], data={"csrf_token": token}, follow_redirects=True)
    assert ended.status_code == 200
    assert "Chưa kết thúc được" in ended.get_data(as_text=True)


def test_a_live_recording_is_sent_again_as_a_recording(
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    live: list[int],
    tmp_path: Path,
) -> None:
    """ "Phát lại bản ghi": the recording of a live broadcast opens the announcement form in
    recording mode, aimed where it went; confirmed, it goes out as any phone recording."""
    login(client, "head-a")
    token = csrf_token(client, "/live/")
    started = client.post("/live/", data={"zones": "thon-a"}, headers={"X-CSRFToken": token})
    answer = started.get_json()
    live_id = answer["id"]
    assert 'id="replay"' not in client.get(answer["page_url"]).get_data(as_text=True)
    assert client.get(f"/announce/?replay={live_id}").status_code == 404  # nothing recorded yet
    client.post(answer["end_url"], data={"csrf_token": token})
    spoken = tmp_path / "spoken.mp3"
    spoken.write_bytes(audio.render_chime())  # stands for the speaker's voice
    with service.db.session() as session:
        head = session.scalars(select(User).where(User.username == "head-a")).one()
    recording = service.live._keep_recording(head.id, live_id, spoken, 2.6)
    assert recording

    detail = client.get(answer["page_url"]).get_data(as_text=True)
    assert f'href="/announce/?replay={live_id}"' in detail
    form = client.get(f"/announce/?replay={live_id}").get_data(as_text=True)
    assert f"/media/{recording}.mp3" in form and 'name="kept"' in form
    assert re.search(r'value="thon-a"\s+checked', form)
    kept = re.search(r'name="kept" value="([^"]+)"', form)
    assert kept is not None
    confirm = client.post(
        "/announce/",
        data={"csrf_token": token, "mode": "record", "zones": ["thon-a"], "priority": "priority",
              "repeat": "1", "kept": kept.group(1)},
        content_type="multipart/form-data",
    )  # fmt: skip
    page = confirm.get_data(as_text=True)
    pending = re.search(r'name="pending" value="([^"]+)"', page)
    assert confirm.status_code == 200 and pending is not None, page
    sent_page = client.post(
        "/announce/confirm",
        data={"csrf_token": token, "pending": pending.group(1), "action": "send"},
    )
    assert sent_page.status_code == 303
    again = int(sent_page.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    wait_for(lambda: broadcast_status(service, again) == "dispatched", 60, "dispatched")
    with service.db.session() as session:
        replayed = session.get(Broadcast, again)
        assert replayed is not None and replayed.recording_sha256 == recording
        assert replayed.zone_ids == ["thon-a"] and replayed.source != "live"

    # only what the person may see and announce: no viewer, no other commune, no other kind
    assert client.get(f"/announce/?replay={again}").status_code == 404  # not a live broadcast
    assert client.get("/announce/?replay=99999").status_code == 404
    assert client.get("/announce/?replay=1e9").status_code == 404
    login(client, "viewer")
    assert 'id="replay"' not in client.get(answer["page_url"]).get_data(as_text=True)
    assert client.get(f"/announce/?replay={live_id}").status_code == 403
    with service.db.session() as session:
        accounts.create_user(session, "head-b", PASSWORD, Role.VILLAGE_HEAD, "thon-b")
    login(client, "head-b")
    assert client.get(f"/announce/?replay={live_id}").status_code == 404


def test_an_internal_live_broadcast_and_its_recording_sent_again_stay_internal(
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    live: list[int],
    tmp_path: Path,
) -> None:
    """Nội bộ ticked on the live page: the broadcast is internal, and "Phát lại bản ghi" opens
    the form with the box still ticked (the person may untick it)."""
    login(client, "head-a")
    form = client.get("/live/").get_data(as_text=True)
    assert "Nội bộ (không đăng lên trang Nghe lại)" in form
    token = csrf_token(client, "/live/")
    started = client.post(
        "/live/", data={"zones": "thon-a", "internal": "1"}, headers={"X-CSRFToken": token}
    )
    answer = started.get_json()
    client.post(answer["end_url"], data={"csrf_token": token})
    with service.db.session() as session:
        assert session.get(Broadcast, answer["id"]).internal is True  # type: ignore[union-attr]
        head = session.scalars(select(User).where(User.username == "head-a")).one()
    spoken = tmp_path / "spoken.mp3"
    spoken.write_bytes(audio.render_chime())
    assert service.live._keep_recording(head.id, answer["id"], spoken, 2.6)
    again = client.get(f"/announce/?replay={answer['id']}").get_data(as_text=True)
    assert re.search(r'name="internal" value="1"\s+checked', again)
