"""Pages: login, CSRF on every form, role limits, escaped output."""

from __future__ import annotations

import re
import time

from flask import Flask
from flask.testing import FlaskClient
from service_support import (
    PASSWORD,
    RecordingDispatcher,
    approved_bulletin,
    broadcast_status,
    wait_for,
)
from web_support import csrf_token, login
from werkzeug.test import TestResponse

from broadcast.desks.overview import FULL_LIST_UP_TO
from broadcast.sending import broadcasts
from broadcast.service import BroadcastService
from broadcast.store.models import Device
from wire import protocol
from wire.protocol import DeviceStatus, ReceiverState


def test_pages_needlogin(client: FlaskClient) -> None:
    for url in ("/", "/announce/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/auth/login" in response.headers["Location"]


def test_wrong_password(client: FlaskClient) -> None:
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login", data={"username": "admin", "password": "nope", "csrf_token": token}
    )
    assert response.status_code == 200
    assert "Sai tên đăng nhập" in response.get_data(as_text=True)


def test_login_without_csrf_token_is_rejected(client: FlaskClient) -> None:
    response = client.post("/auth/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400


def test_dashboard_lists_devices(client: FlaskClient) -> None:
    login(client, "officer")
    page = client.get("/").get_data(as_text=True)
    assert "loa-a-01" in page and "loa-b-01" in page
    assert "Mất kết nối" in page
    assert "Hôm nay không có chương trình nào" in page


def test_village_head_form_offers_only_own_village(client: FlaskClient) -> None:
    login(client, "head-a")
    page = client.get("/announce/").get_data(as_text=True)
    assert 'value="thon-a"' in page
    assert 'value="thon-b"' not in page
    assert 'value="xa-test"' not in page
    assert "loa-b-01" not in client.get("/").get_data(as_text=True)


def test_village_head_post_to_other_village_is_forbidden(client: FlaskClient) -> None:
    login(client, "head-a")
    token = csrf_token(client, "/announce/")
    response = client.post(
        "/announce/",
        data={
            "text": "Cháy",
            "zones": ["thon-b"],
            "priority": "emergency",
            "repeat": "3",
            "csrf_token": token,
        },
    )
    assert response.status_code == 403


def test_viewer_cannot_open_announce_form(client: FlaskClient) -> None:
    login(client, "viewer")
    assert client.get("/announce/").status_code == 403


def test_empty_text_is_reported_not_lost(client: FlaskClient) -> None:
    login(client, "officer")
    token = csrf_token(client, "/announce/")
    response = client.post(
        "/announce/",
        data={
            "text": "  ",
            "zones": ["thon-a"],
            "priority": "emergency",
            "repeat": "3",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert "text" in response.get_data(as_text=True)


def test_output_is_escaped(app: Flask, client: FlaskClient, service: BroadcastService) -> None:
    login(client, "officer")
    token = csrf_token(client, "/announce/")
    evil = "<script>alert(1)</script> Họp thôn"
    response = client.post(
        "/announce/",
        data={
            "text": evil,
            "zones": ["thon-a"],
            "priority": "normal",
            "repeat": "1",
            "csrf_token": token,
        },
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.get_data(as_text=True)
    response = _send(client, response)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _send(client: FlaskClient, confirmation: TestResponse) -> TestResponse:
    """Nothing is sent before the confirmation page's "Xác nhận phát"."""
    page = confirmation.get_data(as_text=True)
    assert confirmation.status_code == 200 and "Xác nhận phát" in page, page
    fields = dict(re.findall(r'name="(csrf_token|pending)" value="([^"]+)"', page))
    return client.post("/announce/confirm", data={**fields, "action": "send"})


def test_media_rejects_bad_names(client: FlaskClient) -> None:
    assert client.get("/media/../../secrets.json").status_code == 404
    assert client.get("/media/" + "a" * 64 + ".mp3").status_code == 404


def _announced(client: FlaskClient, service: BroadcastService, text: str = "Cháy rừng") -> str:
    token = csrf_token(client, "/announce/")
    response = client.post(
        "/announce/",
        data={
            "text": text,
            "zones": ["thon-a"],
            "devices": ["loa-b-01"],
            "priority": "emergency",
            "repeat": "1",
            "csrf_token": token,
        },
    )
    response = _send(client, response)
    assert response.status_code == 303, response.get_data(as_text=True)
    url = response.headers["Location"]
    broadcast_id = int(url.rstrip("/").rsplit("/", 1)[-1])
    wait_for(lambda: broadcast_status(service, broadcast_id) == "dispatched", 30)
    return url


def test_announce_form_offers_devices(client: FlaskClient) -> None:
    login(client, "officer")
    page = client.get("/announce/").get_data(as_text=True)
    assert 'name="devices" value="loa-a-01"' in page and 'name="devices" value="loa-b-01"' in page


def test_stop_and_correct_from_the_detail_page(
    client: FlaskClient, service: BroadcastService, sent: RecordingDispatcher
) -> None:
    login(client, "officer")
    url = _announced(client, service)
    page = client.get(url).get_data(as_text=True)
    assert "Dừng / Đính chính" in page
    assert 'data-confirm="Dừng lượt phát này trên mọi cụm loa ngay bây giờ?"' in page
    assert "confirm.js" in page
    token = csrf_token(client, url)
    response = client.post(
        f"{url}/cancel", data={"csrf_token": token, "correction": "Đính chính: chỉ là diễn tập."}
    )
    assert response.status_code == 302
    correction_url = response.headers["Location"]
    assert correction_url != url
    correction = client.get(correction_url).get_data(as_text=True)
    assert "Đính chính cho:" in correction and "Cháy rừng" in correction
    original = client.get(url).get_data(as_text=True)
    assert "Đã dừng" in original and "Đã đính chính:" in original
    assert "Dừng / Đính chính</button>" not in original  # nothing left to stop
    assert sum(s.command.kind is protocol.CommandKind.STOP for s in sent.sent) == 2


def test_stop_without_a_correction_and_role_limits(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "officer")
    url = _announced(client, service, "Tin sai")
    token = csrf_token(client, url)
    response = client.post(f"{url}/cancel", data={"csrf_token": token}, follow_redirects=True)
    assert "Đã dừng lượt phát trên mọi cụm loa." in response.get_data(as_text=True)
    again = client.post(f"{url}/cancel", data={"csrf_token": token}, follow_redirects=True)
    assert "Chưa dừng được. " in again.get_data(as_text=True)  # a conflict, said on the page
    client.post("/auth/logout", data={"csrf_token": token})
    login(client, "viewer")
    page = client.get(url).get_data(as_text=True)
    assert "Dừng / Đính chính</button>" not in page
    assert (
        client.post(f"{url}/cancel", data={"csrf_token": csrf_token(client, url)}).status_code
        == 403
    )


def test_dashboard_shows_receiver_health(client: FlaskClient, service: BroadcastService) -> None:
    service._on_status(
        DeviceStatus(
            "loa-a-01",
            ReceiverState.IDLE,
            "boot",
            time.time(),
            extra={
                "cache_complete": 0.5,
                "manifest_items": 4,
                "clock_offset_s": 12.3,
                "cpu_temp_c": 61.5,
                "disk_free_mb": 812.0,
            },
        )
    )
    login(client, "officer")
    page = client.get("/").get_data(as_text=True)
    row = re.search(r'<tr class="state-idle" data-device="loa-a-01">(.*?)</tr>', page, re.S)
    assert row is not None, page
    cells = row.group(1)
    assert '<td class="cache warn"' in cells and "50 % (4 mục)" in cells
    assert '<td class="clock warn" data-label="Lệch đồng hồ">+12,3 s</td>' in cells
    assert "62 °C · trống 812 MB" in cells
    other = re.search(r'data-device="loa-b-01">(.*?)</tr>', page, re.S)
    assert other is not None and "—" in other.group(1)


def test_a_large_fleet_is_summarised_by_zone_with_only_receivers_needing_attention(
    client: FlaskClient, service: BroadcastService
) -> None:
    """Above FULL_LIST_UP_TO receivers the page lists zones, then only the receivers that are
    offline, missing audio or off in clock: a province's thousand rows help nobody."""
    healthy = {"cache_complete": 1.0, "manifest_items": 3, "clock_offset_s": 0.1}
    with service.db.session() as session:
        for n in range(FULL_LIST_UP_TO + 10):
            session.add(
                Device(id=f"loa-b-{n + 2:02d}", name=f"Cụm {n}", zone_id="thon-b",
                       mqtt_password_hash="-")
            )  # fmt: skip
        session.flush()
        for n in range(FULL_LIST_UP_TO + 10):  # each heartbeat as the server records it
            extra = {**healthy, "clock_offset_s": 9.0} if n == 5 else healthy
            state = ReceiverState.OFFLINE if n == 3 else ReceiverState.IDLE
            heartbeat = DeviceStatus(f"loa-b-{n + 2:02d}", state, "boot", time.time(), extra=extra)
            broadcasts.apply_status(session, heartbeat)
    login(client, "officer")
    page = client.get("/").get_data(as_text=True)
    listed = set(re.findall(r'data-device="([^"]+)"', page))
    # loa-a-01 and loa-b-01 have never reported: offline too
    assert listed == {"loa-a-01", "loa-b-01", "loa-b-05", "loa-b-07"}, listed
    zone_b = re.search(r'<tr data-zone="thon-b">(.*?)</tr>', page, re.S)
    assert zone_b is not None, page
    assert re.findall(r"<td[^>]*>([^<]*)</td>", zone_b.group(1)) == ["69/71", "0", "3"]
    assert "4 trên 72 cụm loa" in page
    english = client.get("/?lang=en").get_data(as_text=True)
    assert "Loudspeaker clusters needing attention" in english and "4 of 72" in english


def test_village_head_dashboard_lists_the_commune_wide_bulletins(
    client: FlaskClient, service: BroadcastService
) -> None:
    """The commune's daily bulletin plays on a village's loudspeakers: its village head sees it
    in today's programme, under the commune's name; another village's bulletin is not there."""
    from datetime import timedelta

    from broadcast.const import ScheduleKind
    from broadcast.desks.scheduling import ScheduleRequest
    from broadcast.store.models import Schedule, User, utcnow

    with service.db.session() as session:
        officer = session.query(User).filter(User.username == "officer").one().id
    made = []
    for title, zone_id, time_of_day in (
        ("Bản tin toàn xã", "xa-test", "00:00"),
        ("Bản tin thôn B", "thon-b", "00:30"),
    ):
        bulletin = approved_bulletin(service, officer, title, "Tin.")
        request = ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=[zone_id],
            priority="normal",
            time_of_day=time_of_day,
        )
        made.append(service.scheduling.schedule(officer, request))
    with service.db.session() as session:  # made before today: today's runs count
        for schedule_id in made:
            session.get(Schedule, schedule_id).created_at = utcnow() - timedelta(days=2)
    login(client, "head-a")
    today = client.get("/").get_data(as_text=True).split('id="today"')[1].split("</ul>")[0]
    assert "Bản tin toàn xã" in today and "Xã Thử" in today, today
    assert "Bản tin thôn B" not in today
    assert "Hôm nay không có chương trình nào" not in today


def test_dashboard_lists_todays_programme(client: FlaskClient, service: BroadcastService) -> None:
    from datetime import timedelta

    from broadcast.const import ScheduleKind
    from broadcast.desks.scheduling import ScheduleRequest
    from broadcast.store.models import Schedule, User, utcnow

    with service.db.session() as session:
        officer = session.query(User).filter(User.username == "officer").one().id
    bulletin = approved_bulletin(service, officer, "Bản tin nửa đêm", "Tin.")
    schedule_id = service.scheduling.schedule(
        officer,
        ScheduleRequest(
            bulletin_id=bulletin,
            kind=ScheduleKind.DAILY,
            zone_ids=["thon-a"],
            device_ids=["loa-b-01"],
            priority="normal",
            time_of_day="00:00",
        ),
    )
    with service.db.session() as session:  # made before today: today's 00:00 run counts
        session.get(Schedule, schedule_id).created_at = utcnow() - timedelta(days=2)
    login(client, "officer")
    today = client.get("/").get_data(as_text=True).split('id="today"')[1].split("</ul>")[0]
    assert "<strong>00:00</strong>" in today and "Bản tin nửa đêm" in today
    assert '<span lang="vi">Thôn A</span>, loa-b-01' in today


def test_the_icon_is_served(client: FlaskClient) -> None:
    """Browsers ask for /favicon.ico on a session's first page; a 404 there is a console error."""
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    icon = client.get(response.headers["Location"])
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.get_data(as_text=True).startswith("<svg")
    page = client.get("/auth/login").get_data(as_text=True)
    assert f'<link rel="icon" href="{response.headers["Location"]}"' in page
