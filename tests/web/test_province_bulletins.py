"""The province's page (write, send down, each commune's state) and the commune's inbox
("Bản tin từ tỉnh": place, decline, reorder), on pages and over the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_check import CheckedClient
from send_down_support import SendDownProvince, seed_send_down
from service_support import recording_service
from web_support import csrf_token, login

from broadcast import clock
from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.people import accounts
from broadcast.store.models import utcnow
from web import create_app
from wire.protocol import Priority


@pytest.fixture
def province(tmp_path: Path) -> Iterator[SendDownProvince]:
    service, recorder = recording_service(tmp_path / "data", require_approval=False)
    seeded = seed_send_down(service)
    seeded.sent = recorder
    yield seeded
    service.stop()


@pytest.fixture
def app(province: SendDownProvince) -> Flask:
    app = create_app(province.service, {"TESTING": True})
    app.test_client_class = CheckedClient
    return app


def _client(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    login(client, username)
    return client


def _local(after: timedelta) -> str:
    moment = clock.to_local(utcnow() + after)
    assert moment is not None
    return moment.strftime("%Y-%m-%dT%H:%M")


def _token(province: SendDownProvince, username: str) -> dict[str, str]:
    with province.service.db.session() as session:
        token = accounts.create_token(session, accounts.get_user(session, username))
    return {"Authorization": f"Bearer {token}"}


def test_the_province_writes_sends_and_reads_each_communes_decision(app: Flask) -> None:
    editor = _client(app, "editor")
    page = editor.get("/province-bulletins/").get_data(as_text=True)
    assert "Xã A" in page and "Xã B" in page and "Tất cả các xã" in page
    token = csrf_token(editor, "/province-bulletins/")
    response = editor.post(
        "/province-bulletins/",
        data={
            "csrf_token": token,
            "title": "Tiêm phòng dại",
            "text": "Ngày 10/12 tiêm phòng dại cho chó mèo.",
            "communes": "all",
            "priority": "normal",
            "action": "send",
        },
    )
    assert response.status_code == 302
    detail = editor.get(response.headers["Location"]).get_data(as_text=True)
    assert detail.count("Đã nhận, chờ xếp lịch") == 2

    officer_a = _client(app, "officer-a")
    inbox = officer_a.get("/province-bulletins/inbox").get_data(as_text=True)
    assert "Tiêm phòng dại" in inbox and "Thôn B1" not in inbox  # its own commune only
    forward_a = int(re.search(r'id="forward-(\d+)"', inbox).group(1))  # type: ignore[union-attr]
    token_a = csrf_token(officer_a, "/province-bulletins/inbox")
    placed = officer_a.post(
        f"/province-bulletins/inbox/{forward_a}/place",
        data={"csrf_token": token_a, "run_at": _local(timedelta(hours=3)), "zones": "thon-a1"},
    )
    assert placed.status_code == 302
    assert "Đã xếp bản tin vào lịch phát." in officer_a.get("/province-bulletins/inbox").get_data(
        as_text=True
    )

    officer_b = _client(app, "officer-b")
    inbox_b = officer_b.get("/province-bulletins/inbox").get_data(as_text=True)
    forward_b = int(re.search(r'id="forward-(\d+)"', inbox_b).group(1))  # type: ignore[union-attr]
    token_b = csrf_token(officer_b, "/province-bulletins/inbox")
    # Xã B's officer cannot touch Xã A's copy
    assert (
        officer_b.post(
            f"/province-bulletins/inbox/{forward_a}/decline",
            data={"csrf_token": token_b, "reason": "Không."},
        ).status_code
        == 404
    )
    officer_b.post(
        f"/province-bulletins/inbox/{forward_b}/decline",
        data={"csrf_token": token_b, "reason": "Xã đã phát tin này hôm qua."},
    )
    detail = editor.get(response.headers["Location"]).get_data(as_text=True)
    assert "Đã xếp lịch" in detail and "officer-a" in detail
    assert "Xã đã phát tin này hôm qua." in detail
    english = editor.get(response.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "Declined" in english


def test_the_script_step_turns_a_document_into_what_is_read(app: Flask) -> None:
    editor = _client(app, "editor")
    token = csrf_token(editor, "/province-bulletins/")
    page = editor.post(
        "/province-bulletins/",
        data={"csrf_token": token, "text": "THÔNG BÁO\nVề việc tiêm phòng\nNgày 10/12.",
              "action": "script"},
    )  # fmt: skip
    assert page.status_code == 200
    assert "mười tháng mười hai" in page.get_data(as_text=True) or "10/12" in page.get_data(
        as_text=True
    )


def test_the_provinces_unsent_bulletins_are_listed_to_send(
    app: Flask, province: SendDownProvince
) -> None:
    written = province.service.bulletins.create_bulletin(
        province.editor, "Viết ở bàn biên tập", "Nội dung."
    )
    editor = _client(app, "editor")
    page = editor.get("/province-bulletins/").get_data(as_text=True)
    assert f'href="/province-bulletins/{written}"' in page
    token = csrf_token(editor, f"/province-bulletins/{written}")
    sent = editor.post(
        f"/province-bulletins/{written}/send",
        data={"csrf_token": token, "communes": "xa-b", "priority": "normal"},
    )
    assert sent.status_code == 302
    page = editor.get("/province-bulletins/").get_data(as_text=True)
    assert 'id="unsent"' not in page and "Viết ở bàn biên tập" in page


def test_pages_refuse_whoever_may_not(app: Flask) -> None:
    assert _client(app, "officer-a").get("/province-bulletins/").status_code == 403
    assert _client(app, "leader-a").get("/province-bulletins/inbox").status_code == 403
    assert _client(app, "editor").get("/province-bulletins/inbox").status_code == 403


def test_the_api_sends_down_and_the_commune_places_declines_and_reorders(
    app: Flask, province: SendDownProvince
) -> None:
    client = app.test_client()
    editor, officer_a = _token(province, "editor"), _token(province, "officer-a")
    service = province.service
    run_at = _local(timedelta(hours=2))
    own = service.bulletins.create_bulletin(province.officer_a, "Bản tin xã", "Tin xã A.")
    service.scheduling.schedule(
        province.officer_a,
        ScheduleRequest(
            bulletin_id=own, kind=ScheduleKind.ONCE, zone_ids=["thon-a1"],
            priority=Priority.NORMAL, run_at=run_at,
        ),
    )  # fmt: skip
    first = client.post(
        "/api/v1/province-bulletins",
        json={"text": "Ưu tiên một.", "communes": ["xa-a"], "priority": "priority"},
        headers=editor,
    )
    assert first.status_code == 201, first.get_json()
    [status] = first.get_json()["communes"]
    assert status["state"] == "placed" and status["position"] == 0
    second = client.post(
        "/api/v1/province-bulletins",
        json={"text": "Ưu tiên hai.", "communes": ["xa-a"], "priority": "priority"},
        headers=editor,
    ).get_json()["communes"][0]
    normal = client.post(
        "/api/v1/province-bulletins",
        json={"title": "Thường", "text": "Tin thường.", "communes": "all"},
        headers=editor,
    )
    assert normal.status_code == 201 and len(normal.get_json()["communes"]) == 2
    again = client.post(
        "/api/v1/province-bulletins",
        json={"bulletin": normal.get_json()["bulletin"], "communes": ["xa-a"]},
        headers=editor,
    )
    assert again.status_code == 409
    assert (
        client.post(
            "/api/v1/province-bulletins",
            json={"text": "Thử.", "communes": "all"},
            headers=officer_a,
        ).status_code
        == 403
    )

    inbox = client.get("/api/v1/province-bulletins/inbox", headers=officer_a).get_json()
    [run] = inbox["runs"]
    assert [item["title"] for item in run["items"]] == ["Ưu tiên một.", "Ưu tiên hai."]
    assert run["run_at"].startswith(clock.iso_utc(clock.parse_local(run_at, "run_at"))[:16])
    order = [second["id"], status["id"]]
    reordered = client.post(
        "/api/v1/province-bulletins/inbox/reorder", json={"order": order}, headers=officer_a
    )
    assert reordered.status_code == 200
    assert [i["id"] for i in reordered.get_json()["runs"][0]["items"]] == order
    assert client.post(
        "/api/v1/province-bulletins/inbox/reorder", json={"order": [second["id"]]},
        headers=officer_a,
    ).status_code == 400  # fmt: skip

    [waiting] = inbox["waiting"]
    refused = client.post(
        f"/api/v1/province-bulletins/inbox/{waiting['id']}/decline",
        json={"reason": ""},
        headers=officer_a,
    )
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "reason"
    placed = client.post(
        f"/api/v1/province-bulletins/inbox/{waiting['id']}/place",
        json={"run_at": _local(timedelta(hours=6))},
        headers=officer_a,
    )
    assert placed.status_code == 200 and placed.get_json()["state"] == "placed"
    assert client.post(
        f"/api/v1/province-bulletins/inbox/{waiting['id']}/decline",
        json={"reason": "Muộn rồi."}, headers=officer_a,
    ).status_code == 409  # fmt: skip

    waiting_b = client.post(
        "/api/v1/province-bulletins",
        json={"text": "Ưu tiên cho xã B.", "communes": ["xa-b"], "priority": "priority"},
        headers=editor,
    ).get_json()["communes"][0]
    assert waiting_b["state"] == "received"  # Xã B has no run
    officer_b = _token(province, "officer-b")
    headed = client.post(
        f"/api/v1/province-bulletins/inbox/{waiting_b['id']}/head", headers=officer_b
    )
    assert headed.status_code == 409
    listed = client.get("/api/v1/province-bulletins", headers=editor).get_json()
    assert len(listed) == 4
    one = client.get(f"/api/v1/province-bulletins/{normal.get_json()['bulletin']}", headers=editor)
    states = {row["commune"]: row["state"] for row in one.get_json()["communes"]}
    assert states == {"xa-a": "placed", "xa-b": "received"}
    assert client.post(
        f"/api/v1/province-bulletins/inbox/{waiting['id']}/place",
        json={"run_at": _local(timedelta(hours=7))}, headers=officer_b,
    ).status_code == 404  # fmt: skip


def test_the_officer_reorders_the_priority_items_heading_a_run_on_the_page(
    app: Flask, province: SendDownProvince
) -> None:
    service = province.service
    own = service.bulletins.create_bulletin(province.officer_a, "Bản tin xã", "Tin xã A.")
    service.scheduling.schedule(
        province.officer_a,
        ScheduleRequest(
            bulletin_id=own, kind=ScheduleKind.ONCE, zone_ids=["xa-a"],
            priority=Priority.NORMAL, run_at=_local(timedelta(hours=2)),
        ),
    )  # fmt: skip
    for title in ("Ưu tiên một", "Ưu tiên hai"):
        bulletin = service.bulletins.create_bulletin(province.editor, title, f"{title}.")
        service.source_bulletins.send_down(province.editor, bulletin, ["xa-a"], "priority")
    officer = _client(app, "officer-a")
    page = officer.get("/province-bulletins/inbox").get_data(as_text=True)
    assert page.index("Ưu tiên một") < page.index("Ưu tiên hai")
    second = int(re.findall(r'id="head-(\d+)"', page)[1])
    token = csrf_token(officer, "/province-bulletins/inbox")
    moved = officer.post(
        f"/province-bulletins/inbox/{second}/move", data={"csrf_token": token, "direction": "up"}
    )
    assert moved.status_code == 302
    page = officer.get("/province-bulletins/inbox").get_data(as_text=True)
    assert page.index("Ưu tiên hai") < page.index("Ưu tiên một")
    assert "Đã đổi thứ tự phát." in page
