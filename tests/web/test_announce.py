"""The village head's urgent-notice flow: compose (text, recording, template), confirm, send,
watch each loudspeaker cluster live (Server-Sent Events), stop or correct; roles and layout."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from service_support import RecordingDispatcher, Users, broadcast_status, wait_for
from sqlalchemy import func, select
from support import tone_wav
from web_support import csrf_token, login

from broadcast.people import audit
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Broadcast
from wire import protocol
from wire.protocol import CommandKind, EventKind

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"


# --- helpers ----------------------------------------------------------------------------------


def _broadcast_count(service: BroadcastService) -> int:
    with service.db.session() as session:
        return int(session.scalar(select(func.count(Broadcast.id))) or 0)


def _plays(sent: RecordingDispatcher) -> list[Any]:
    return [s for s in sent.sent if s.command.kind is CommandKind.PLAY]


def _prepare(client: FlaskClient, data: dict[str, Any], files: dict[str, Any] | None = None) -> Any:
    token = csrf_token(client, "/announce/")
    body = {"csrf_token": token, "priority": "emergency", "repeat": "3", **data}
    if files:
        body.update(files)
    return client.post("/announce/", data=body, content_type="multipart/form-data")


def _pending(page: str) -> str:
    match = re.search(r'name="pending" value="([^"]+)"', page)
    assert match is not None, page
    return match.group(1)


def _confirm(client: FlaskClient, page: str, action: str = "send") -> Any:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    return client.post(
        "/announce/confirm",
        data={"csrf_token": token.group(1), "pending": _pending(page), "action": action},
    )


def _sent_id(response: Any) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])


def _webm(source: Path, dest: Path) -> Path:
    """What a phone browser's MediaRecorder gives: WebM with Opus."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-i",
            str(source),
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            str(dest),
        ],
        check=True,
        timeout=60,
    )
    return dest


def _upload(path: Path, name: str) -> dict[str, Any]:
    return {"recording": (path.open("rb"), name)}


# --- text -> confirm -> sent ------------------------------------------------------------------


def test_text_is_sent_only_after_confirmation(
    client: FlaskClient, service: BroadcastService, sent: RecordingDispatcher
) -> None:
    login(client, "head-a")
    form = client.get("/announce/").get_data(as_text=True)
    assert 'name="zones" value="thon-a"' in form and "checked" in form
    assert 'value="emergency" checked' in form and 'value="3"' in form
    response = _prepare(
        client, {"mode": "text", "text": "Cháy ở xóm 2, mọi người tránh xa.", "zones": ["thon-a"]}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'Sẽ phát 3 lần tới 1 cụm loa ở <span lang="vi">Thôn A</span>:' in page
    assert "Cháy ở xóm 2, mọi người tránh xa." in page and "Khẩn cấp" in page
    assert "Xác nhận phát" in page and "Sửa lại" in page
    assert _broadcast_count(service) == 0 and _plays(sent) == []  # nothing before confirmation

    broadcast_id = _sent_id(_confirm(client, page))
    wait_for(lambda: broadcast_status(service, broadcast_id) == "dispatched", 60, "dispatched")
    [play] = _plays(sent)
    assert play.topic == protocol.zone_command_topic("thon-a")
    assert play.command.body.repeat == 3
    assert play.command.body.priority is protocol.Priority.EMERGENCY
    with service.db.session() as session:
        [entry] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.Action.ANNOUNCE.value)
        ).all()
        assert entry.username == "head-a" and entry.target == f"broadcast:{broadcast_id}"
    # a second tap on "Xác nhận phát" (or the back button) does not send it again
    again = _confirm(client, page)
    assert again.status_code == 303 and _broadcast_count(service) == 1


def test_edit_goes_back_to_the_filled_form_and_sends_nothing(
    client: FlaskClient, service: BroadcastService, sent: RecordingDispatcher
) -> None:
    login(client, "officer")
    page = _prepare(
        client, {"mode": "text", "text": "Họp thôn lúc 19 giờ.", "zones": ["thon-b"], "repeat": "2",
                 "priority": "priority"},
    ).get_data(as_text=True)  # fmt: skip
    assert 'Sẽ phát 2 lần tới 1 cụm loa ở <span lang="vi">Thôn B</span>:' in page
    assert "Ưu tiên" in page
    form = _confirm(client, page, "edit").get_data(as_text=True)
    assert "Họp thôn lúc 19 giờ.</textarea>" in form
    assert 'value="thon-b"\n        checked' in form or re.search(r'value="thon-b"\s+checked', form)
    assert 'value="priority" checked' in form and 'value="2"' in form
    assert _broadcast_count(service) == 0 and sent.sent == []


def test_refusals_name_the_field_in_vietnamese(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "head-a")
    for data, message in (
        ({"text": "  "}, "Nội dung thông báo: chưa nhập nội dung"),
        ({"text": "Tin", "repeat": "11"}, "Số lần phát: phải là một số từ 1 đến 10"),
        ({"text": "Tin", "repeat": "ba"}, "Số lần phát: phải là một số từ 1 đến 10"),
        ({"text": "Tin", "zones": []}, "Phát tới: hãy chọn ít nhất một khu vực hoặc cụm loa"),
        ({"text": "Tin", "priority": "loud"}, "Mức ưu tiên: hãy chọn Khẩn cấp hoặc Ưu tiên"),
    ):
        body = {"mode": "text", "zones": ["thon-a"], **data}
        response = _prepare(client, body)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert message in page, data
        assert "Traceback" not in page
    assert _broadcast_count(service) == 0


def test_a_stale_or_forged_confirmation_is_refused(
    app: Flask, client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "head-a")
    page = _prepare(client, {"mode": "text", "text": "Tin", "zones": ["thon-a"]}).get_data(
        as_text=True
    )
    forged = page.replace(_pending(page), _pending(page)[:-4] + "AAAA")
    assert _confirm(client, forged).status_code == 400
    assert _broadcast_count(service) == 0


# --- templates --------------------------------------------------------------------------------


def test_templates_are_offered_and_filled(
    client: FlaskClient, service: BroadcastService, sent: RecordingDispatcher
) -> None:
    login(client, "head-a")
    listing = client.get("/announce/?mode=template").get_data(as_text=True)
    for title in ("Bão", "Lũ, ngập lụt", "Cháy", "Mất điện", "Tiêm chủng", "Họp thôn",
                  "Sạt lở đất", "Nắng nóng"):  # fmt: skip
        assert f">{title}</a>" in listing, title
    form = client.get("/announce/?template=hop_thon").get_data(as_text=True)
    assert 'name="f_thoi_gian"' in form and 'name="f_dia_diem"' in form
    assert 'name="template" value="hop_thon"' in form
    assert 'value="priority" checked' in form  # the template's suggestion
    page = _prepare(
        client,
        {
            "mode": "template",
            "template": "hop_thon",
            "f_thoi_gian": "19 giờ 30 tối nay",
            "f_dia_diem": "Nhà văn hóa thôn.",
            "zones": ["thon-a"],
        },
    ).get_data(as_text=True)
    assert "vào 19 giờ 30 tối nay tại Nhà văn hóa thôn. Đề nghị" in page
    assert _plays(sent) == []
    broadcast_id = _sent_id(_confirm(client, page))
    with service.db.session() as session:
        text = session.get(Broadcast, broadcast_id).text
        assert session.get(Broadcast, broadcast_id).title == "Họp thôn"
    assert text.startswith("Thông báo: thôn tổ chức họp toàn thể nhân dân vào 19 giờ 30")
    assert "{" not in text and "[" not in text


def test_template_with_a_blank_left_empty_is_refused(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "head-a")
    response = _prepare(
        client,
        {"mode": "template", "template": "hop_thon", "f_thoi_gian": "19 giờ", "f_dia_diem": " ",
         "zones": ["thon-a"]},
    )  # fmt: skip
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Chưa điền “Địa điểm” của mẫu “Họp thôn”" in page
    assert re.search(r'name="f_dia_diem"[^>]*aria-invalid="true"', page, re.S)
    assert 'value="19 giờ"' in page  # what was typed stays
    unknown = _prepare(client, {"mode": "template", "template": "dong-dat", "zones": ["thon-a"]})
    assert "Mẫu thông báo: không có mẫu thông báo “dong-dat”" in unknown.get_data(as_text=True)
    assert _broadcast_count(service) == 0


def test_templates_in_english_keep_the_notice_in_vietnamese(
    client: FlaskClient, service: BroadcastService
) -> None:
    """Titles and labels follow the page's language; the notice is read aloud to villagers,
    so its text stays Vietnamese, and the English page says so."""
    login(client, "head-a")
    listing = client.get("/announce/?mode=template&lang=en").get_data(as_text=True)
    titles = re.findall(r'<li><a href="/announce/\?template=[^"]+">([^<]+)</a></li>', listing)
    assert {"Storm", "Flood", "Fire", "Power cut", "Village meeting"} <= set(titles), titles
    assert "Bão" not in titles and len(titles) == 10
    form = client.get("/announce/?template=bao").get_data(as_text=True)  # English remembered
    labels = [label.strip() for label in re.findall(r'<label for="f_[^"]+">([^<]+)', form)]
    assert labels == ["Name or number of the storm", "When the storm hits", "Evacuation place"]
    assert "Template: Storm" in form
    assert re.search(r'id="spoken-language">[^<]*read aloud to the villagers in Vietnamese', form)
    preview = re.search(r'id="template-preview"[^>]*>([^<]+)<', form)
    assert preview is not None
    assert preview.group(1).startswith("Thông báo khẩn về cơn bão")
    assert "«When the storm hits»" in preview.group(1)
    refused = _prepare(client, {"mode": "template", "template": "bao", "zones": ["thon-a"]})
    assert "“When the storm hits” of the template “Storm” is not filled in" in refused.get_data(
        as_text=True
    )
    page = _prepare(
        client,
        {"mode": "template", "template": "bao", "f_thoi_gian": "chiều nay", "zones": ["thon-a"]},
    ).get_data(as_text=True)
    assert "Bão dự kiến ảnh hưởng trực tiếp đến địa phương từ chiều nay." in page
    assert "Confirm" in page  # the page around it is English
    vietnamese = client.get("/announce/?template=bao&lang=vi").get_data(as_text=True)
    assert "Thời gian bão ảnh hưởng" in vietnamese and 'id="spoken-language"' not in vietnamese
    assert _broadcast_count(service) == 0


# --- recordings -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wav", "webm"])
def test_recording_is_checked_confirmed_and_sent(
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    tmp_path: Path,
    kind: str,
) -> None:
    wav = tone_wav(tmp_path / "tone.wav")
    path = wav if kind == "wav" else _webm(wav, tmp_path / "ghi-am.webm")
    login(client, "head-a")
    response = _prepare(
        client, {"mode": "record", "zones": ["thon-a"]}, _upload(path, f"ghi-am.{kind}")
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert 'Sẽ phát 3 lần tới 1 cụm loa ở <span lang="vi">Thôn A</span>:' in page
    assert "Bản ghi âm dài 0:02" in page
    match = re.search(r'src="/media/([0-9a-f]{64})\.mp3"', page)
    assert match is not None
    recording = match.group(1)
    assert service.media.exists(recording)
    assert _broadcast_count(service) == 0 and _plays(sent) == []

    # "Sửa lại" keeps the recording: changing the repeat does not upload it again
    form = _confirm(client, page, "edit").get_data(as_text=True)
    assert 'name="kept"' in form and recording in form
    kept = re.search(r'name="kept" value="([^"]+)"', form)
    assert kept is not None
    wrong = _prepare(
        client, {"mode": "record", "zones": ["thon-a"], "repeat": "0", "kept": kept.group(1)}
    ).get_data(as_text=True)
    assert "Số lần phát: phải là một số từ 1 đến 10" in wrong
    assert 'name="kept"' in wrong and recording in wrong  # still kept
    page = _prepare(
        client, {"mode": "record", "zones": ["thon-a"], "repeat": "1", "kept": kept.group(1)}
    ).get_data(as_text=True)
    assert 'Sẽ phát 1 lần tới 1 cụm loa ở <span lang="vi">Thôn A</span>:' in page
    assert recording in page

    broadcast_id = _sent_id(_confirm(client, page))
    wait_for(lambda: broadcast_status(service, broadcast_id) == "dispatched", 60, "dispatched")
    with service.db.session() as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast.recording_sha256 == recording
        assert broadcast.tts_engine == "recording"
        media = broadcast.media_sha256
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.Action.ANNOUNCE.value)
        ).one()
        assert entry.detail["recording"] == recording and entry.username == "head-a"
    [play] = _plays(sent)
    assert play.command.body.media_sha256 == media and service.media.exists(media)
    assert play.command.body.repeat == 1


def test_bad_uploads_are_refused_clearly_and_nothing_is_sent(
    app: Flask,
    client: FlaskClient,
    service: BroadcastService,
    sent: RecordingDispatcher,
    tmp_path: Path,
) -> None:
    login(client, "head-a")
    not_audio = tmp_path / "thong-bao.mp3"
    not_audio.write_bytes(b"this is a text file, not a recording\n" * 20)
    silent = tone_wav(tmp_path / "silent.wav", peak=0.0)
    for files, message in (
        (_upload(not_audio, "thong-bao.mp3"), "Ghi âm: tệp này không phải bản ghi âm"),
        (_upload(silent, "im-lang.wav"), "Ghi âm: bản ghi im lặng"),
        (None, "Ghi âm: không tìm thấy tệp"),
    ):
        response = _prepare(client, {"mode": "record", "zones": ["thon-a"]}, files)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and message in page, message
        assert "Traceback" not in page
    huge = tmp_path / "huge.webm"
    huge.write_bytes(b"\0" * (app.config["MAX_CONTENT_LENGTH"] + 1))
    response = _prepare(client, {"mode": "record", "zones": ["thon-a"]}, _upload(huge, "x.webm"))
    assert response.status_code == 303
    assert "mode=record" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ghi âm: tệp quá lớn (tối đa 2 MB)" in page
    assert _broadcast_count(service) == 0 and sent.sent == []


# --- who may announce -------------------------------------------------------------------------


def test_village_head_cannot_target_another_village(
    app: Flask, client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    login(client, "head-a")
    form = client.get("/announce/").get_data(as_text=True)
    assert 'value="thon-b"' not in form and 'value="loa-b-01"' not in form
    for target in ({"zones": ["thon-b"]}, {"zones": [], "devices": ["loa-b-01"]},
                   {"zones": ["xa-test"]}):  # fmt: skip
        response = _prepare(client, {"mode": "text", "text": "Cháy", **target})
        assert response.status_code == 403, target
    # even a correctly signed confirmation for thon-b is refused by the domain
    nonce_page = _prepare(client, {"mode": "text", "text": "Cháy", "zones": ["thon-a"]})
    data = URLSafeTimedSerializer(app.secret_key, salt="loa.announce.pending").loads(
        _pending(nonce_page.get_data(as_text=True))
    )
    data["zones"] = ["thon-b"]
    forged = URLSafeTimedSerializer(app.secret_key, salt="loa.announce.pending").dumps(data)
    token = csrf_token(client, "/announce/")
    response = client.post(
        "/announce/confirm", data={"csrf_token": token, "pending": forged, "action": "send"}
    )
    assert response.status_code == 403
    assert _broadcast_count(service) == 0


@pytest.mark.parametrize("role", ["viewer", "leader"])
def test_viewer_and_leader_cannot_announce(
    client: FlaskClient, service: BroadcastService, role: str
) -> None:
    login(client, role)
    assert client.get("/announce/").status_code == 403
    assert "Phát thông báo khẩn" not in client.get("/").get_data(as_text=True)
    token = csrf_token(client, "/")
    response = client.post(
        "/announce/",
        data={"csrf_token": token, "mode": "text", "text": "Tin", "zones": ["thon-a"]},
    )
    assert response.status_code == 403
    assert _broadcast_count(service) == 0


def test_dashboard_links_village_heads_to_the_flow(client: FlaskClient) -> None:
    login(client, "head-a")
    page = client.get("/").get_data(as_text=True)
    assert 'class="button urgent" href="/announce/"' in page
    assert "Phát thông báo khẩn tới thôn" in page


# --- live delivery ----------------------------------------------------------------------------


def _announced(service: BroadcastService, user_id: int, zone: str = "thon-a") -> int:
    broadcast_id = service.announcements.announce(user_id, "Cháy rừng", [zone], "emergency", 1)
    wait_for(lambda: broadcast_status(service, broadcast_id) == "dispatched", 60, "dispatched")
    return broadcast_id


def _answer(service: BroadcastService, broadcast_id: int, kind: EventKind, device: str) -> None:
    service._on_event(protocol.DeviceEvent(device, "cmd", broadcast_id, kind, time.time()))


class EventReader:
    """Reads an event stream chunk by chunk (each chunk one event or comment), bounded."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.ended = False

    def next(self, max_chunks: int = 50, timeout_s: float = 10.0) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout_s
        for _ in range(max_chunks):
            assert time.monotonic() < deadline, "no event in time"
            chunk = next(self.chunks, None)
            if chunk is None:
                self.ended = True
                return "", None
            text = chunk.decode()
            if text.startswith(":"):
                return "comment", text
            fields = dict(line.split(": ", 1) for line in text.strip().splitlines() if ": " in line)
            if "event" in fields:
                return fields["event"], json.loads(fields["data"])
        raise AssertionError("too many chunks without an event")


def test_event_stream_sends_state_then_changes_then_ends(
    app: Flask, client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    app.config.update(LOA_EVENTS_POLL_S=0.02, LOA_EVENTS_KEEPALIVE_S=5, LOA_EVENTS_MAX_S=20)
    broadcast_id = _announced(service, users.head_1)
    login(client, "head-a")
    response = client.get(f"/announce/{broadcast_id}/events", buffered=False)
    try:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        reader = EventReader(iter(response.response))
        kind, first = reader.next()
        assert kind == "state"
        assert first["total"] == 1 and first["final"] is False
        assert [(d["device"], d["name"], d["state"]) for d in first["deliveries"]] == [
            ("loa-a-01", "loa-a-01", "queued")
        ]
        _answer(service, broadcast_id, EventKind.RECEIVED, "loa-a-01")
        kind, received = reader.next()
        assert kind == "state" and received["deliveries"][0]["state"] == "received"
        assert received["deliveries"][0]["at"] is not None
        _answer(service, broadcast_id, EventKind.STARTED, "loa-a-01")
        assert reader.next()[1]["deliveries"][0]["state"] == "playing"
        _answer(service, broadcast_id, EventKind.FINISHED, "loa-a-01")
        kind, finished = reader.next()
        assert kind == "state" and finished["final"] is True
        assert finished["counts"] == {"finished": 1} and finished["status"] == "finished"
        assert reader.next() == ("end", {"final": True})
        assert reader.next() == ("", None) and reader.ended  # the stream closed by itself
    finally:
        response.close()


def test_event_stream_keeps_alive_and_ends_after_its_time(
    app: Flask, client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    app.config.update(LOA_EVENTS_POLL_S=0.02, LOA_EVENTS_KEEPALIVE_S=0.1, LOA_EVENTS_MAX_S=0.5)
    broadcast_id = _announced(service, users.officer)
    login(client, "officer")
    started = time.monotonic()
    response = client.get(f"/announce/{broadcast_id}/events", buffered=False)
    try:
        reader = EventReader(iter(response.response))
        assert reader.next()[0] == "state"
        assert reader.next() == ("comment", ": keep-alive\n\n")
        seen = [reader.next() for _ in range(10)]
        assert ("end", {"final": False}) in seen  # not final: the page opens a new stream
        assert reader.ended or ("", None) in seen
    finally:
        response.close()
    assert time.monotonic() - started < 5


def test_event_stream_is_only_for_those_who_may_see_the_broadcast(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    other = _announced(service, users.officer, "thon-b")
    login(client, "head-a")
    assert client.get(f"/announce/{other}/events").status_code == 404
    assert client.get(f"/announce/{other}/status.json").status_code == 404
    assert client.get("/announce/9999/events").status_code == 404
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})
    assert client.get(f"/announce/{other}/events").status_code == 302  # to the login page


def test_delivery_page_summary_and_fallback(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    broadcast_id = _announced(service, users.officer, "xa-test")
    _answer(service, broadcast_id, EventKind.FINISHED, "loa-a-01")
    login(client, "officer")
    page = client.get(f"/announce/{broadcast_id}").get_data(as_text=True)
    assert "1/2 cụm loa đã phát xong" in page
    assert 'data-done="{done}/{total} cụm loa đã phát xong"' in page  # delivery.js fills it
    assert re.search(
        r'data-device="loa-a-01">\s*<span class="name" lang="vi">loa-a-01</span>', page
    )
    assert f'data-events-url="/announce/{broadcast_id}/events"' in page
    status = client.get(f"/announce/{broadcast_id}/status.json").get_json()
    assert status["progress"]["counts"] == {"finished": 1, "queued": 1}
    assert status["deliveries"][0]["device"] == "loa-a-01"  # the API's shape is unchanged


def test_stop_and_correction_from_the_delivery_page(
    client: FlaskClient, service: BroadcastService, sent: RecordingDispatcher, users: Users
) -> None:
    login(client, "head-a")
    first = _announced(service, users.head_1)
    url = f"/announce/{first}"
    page = client.get(url).get_data(as_text=True)
    assert "Dừng phát</button>" in page and "Đính chính</button>" in page
    token = csrf_token(client, url)
    # the correction button needs a text: nothing is stopped without one
    response = client.post(
        f"{url}/cancel", data={"csrf_token": token, "action": "correct", "correction": " "},
        follow_redirects=True,
    )  # fmt: skip
    assert "Lời đính chính: chưa nhập nội dung" in response.get_data(as_text=True)
    assert broadcast_status(service, first) == "dispatched"
    response = client.post(f"{url}/cancel", data={"csrf_token": token, "action": "stop"})
    assert response.status_code == 302 and response.headers["Location"].endswith(url)
    assert broadcast_status(service, first) == "cancelled"
    assert "Đã dừng lượt phát trên mọi cụm loa." in client.get(url).get_data(as_text=True)

    second = _announced(service, users.head_1)
    url = f"/announce/{second}"
    response = client.post(
        f"{url}/cancel",
        data={"csrf_token": token, "action": "correct", "correction": "Chỉ là diễn tập."},
    )
    assert response.status_code == 302
    correction = int(response.headers["Location"].rsplit("/", 1)[-1])
    assert correction != second and broadcast_status(service, second) == "cancelled"
    with service.db.session() as session:
        row = session.get(Broadcast, correction)
        assert row.corrects_id == second and row.text == "Chỉ là diễn tập."
    stops = [s for s in sent.sent if s.command.kind is CommandKind.STOP]
    assert len(stops) == 2


def test_a_village_head_sees_their_own_clusters_of_a_commune_wide_broadcast(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    """Only their village's loudspeaker clusters, named with the village, and no button that
    would end in a refusal: they may not stop what reaches other villages."""
    commune_wide = _announced(service, users.officer, "xa-test")
    login(client, "officer")
    page = client.get(f"/announce/{commune_wide}").get_data(as_text=True)
    assert re.search(r'data-device="loa-b-01">\s*<span class="name" lang="vi">[^<]*</span>\s*'
                     r'<span class="zone" lang="vi">Thôn B</span>', page)  # fmt: skip
    assert "Dừng phát</button>" in page
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/")})

    login(client, "head-a")
    url = f"/announce/{commune_wide}"
    page = client.get(url).get_data(as_text=True)
    assert set(re.findall(r'<li class="delivery[^"]*" data-device="([^"]+)"', page)) == {"loa-a-01"}
    assert '<span class="zone" lang="vi">Thôn A</span>' in page
    assert "Xã Thử" in page  # the commune by its name, not its id
    assert "Dừng phát</button>" not in page and "Đính chính</button>" not in page
    assert 'id="cancel-form"' not in page and 'id="correct-form"' not in page
    status = client.get(f"{url}/status.json").get_json()
    assert [d["device"] for d in status["deliveries"]] == ["loa-a-01"]
    assert [(d["device"], d["zone"]) for d in status["progress"]["deliveries"]] == [
        ("loa-a-01", "Thôn A")
    ]
    assert status["progress"]["total"] == 1


def test_a_finished_notice_offers_no_stop_and_keeps_its_status(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    login(client, "head-a")
    done = _announced(service, users.head_1)
    url = f"/announce/{done}"
    assert "Dừng phát</button>" in client.get(url).get_data(as_text=True)
    token = csrf_token(client, url)
    _answer(service, done, EventKind.FINISHED, "loa-a-01")
    wait_for(lambda: broadcast_status(service, done) == "finished", 30, "finished")
    page = client.get(url).get_data(as_text=True)
    assert "Dừng phát</button>" not in page and 'id="cancel-form"' not in page
    assert "Đính chính</button>" in page  # a correction can still go out
    assert client.get(f"{url}/status.json").get_json()["progress"]["ended"] is True
    # a stop posted anyway (a page opened before the end) is refused and changes nothing
    response = client.post(
        f"{url}/cancel", data={"csrf_token": token, "action": "stop"}, follow_redirects=True
    )
    assert "lượt phát này đã kết thúc, không còn gì để dừng" in response.get_data(as_text=True)
    assert broadcast_status(service, done) == "finished"


# --- phone layout -----------------------------------------------------------------------------


def _length_px(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))  # type: ignore[union-attr]
    return number * 16 if value.endswith(("rem", "em")) else number


def test_pages_fit_a_360px_phone_and_obey_the_csp(
    client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    login(client, "head-a")
    broadcast_id = _announced(service, users.head_1)
    confirm_page = _prepare(client, {"mode": "text", "text": "Tin", "zones": ["thon-a"]})
    pages = {
        "form": client.get("/announce/").get_data(as_text=True),
        "record": client.get("/announce/?mode=record").get_data(as_text=True),
        "template": client.get("/announce/?template=bao").get_data(as_text=True),
        "confirm": confirm_page.get_data(as_text=True),
        "detail": client.get(f"/announce/{broadcast_id}").get_data(as_text=True),
    }
    for name, page in pages.items():
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        assert " style=" not in page, name
        assert not re.search(r"<[^>]+\son[a-z]+=", page), name  # no inline handlers
        for script in re.findall(r"<script([^>]*)>", page):
            assert "src=" in script or 'type="application/json"' in script, (name, script)
    assert 'id="recorder"' in pages["record"] and 'type="file"' in pages["record"]
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    block = css.split("/* announce: begin")[1].split("/* announce: end */")[0]
    assert "announce-page" in block and ".delivery" in block
    lengths = re.findall(r"(?<![-\w])(?:min-)?width:\s*([\d.]+(?:px|rem|em))", block)
    lengths += re.findall(r"flex:\s*\d+\s+\d+\s+([\d.]+(?:px|rem|em))", block)
    lengths += re.findall(r"minmax\(\s*([\d.]+(?:px|rem|em))", block)
    assert lengths, "the check found nothing to check"
    assert all(_length_px(value) <= 360 for value in lengths), lengths
    for name in ("announce.js", "record.js", "delivery.js", "confirm.js"):
        assert (STATIC / name).is_file()
