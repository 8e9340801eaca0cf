"""Bulletins, approval and reports over the API: what a provincial system needs to push
content down and read back what played."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient

from broadcast.people import audit
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry
from wire import protocol

DOCUMENT = """ỦY BAN NHÂN DÂN XÃ THỬ
Số: 12/TB-UBND
THÔNG BÁO
Về việc tiêm phòng dại đợt 2 năm 2026
Ngày 05/12/2026 trạm y tế tiêm phòng dại cho chó, mèo tại nhà văn hóa các thôn.
Nơi nhận:
- Các thôn;
- Lưu VT.
"""


def _call(
    client: FlaskClient, method: str, url: str, token: str, body: Any = None
) -> tuple[int, Any]:
    response = client.open(
        url, method=method, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.get_json(silent=True)


def test_push_approve_and_send_a_bulletin(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str]
) -> None:
    status, created = _call(
        client,
        "POST",
        "/api/v1/bulletins",
        tokens["officer"],
        {"title": "Tiêm phòng dại", "text": DOCUMENT, "make_script": True, "submit": True},
    )
    assert status == 201, created
    assert created["status"] == "submitted" and created["source_name"] == "api"
    assert "Nơi nhận" not in created["text"] and "tiêm phòng dại" in created["text"]
    assert [step["action"] for step in created["history"]] == ["bulletin.create", "bulletin.submit"]
    bulletin = created["id"]

    status, waiting = _call(client, "GET", "/api/v1/bulletins?status=submitted", tokens["leader"])
    assert status == 200 and [b["id"] for b in waiting] == [bulletin]
    status, error = _call(
        client,
        "POST",
        f"/api/v1/bulletins/{bulletin}/send",
        tokens["officer"],
        {"zones": ["thon-a"]},
    )
    assert status == 409 and error["error"]["field"] == "bulletin"  # not approved yet
    status, error = _call(
        client, "POST", f"/api/v1/bulletins/{bulletin}/reject", tokens["leader"], {}
    )
    assert status == 400 and error["error"]["field"] == "comment"
    status, rejected = _call(
        client, "POST", f"/api/v1/bulletins/{bulletin}/reject", tokens["leader"],
        {"comment": "Ghi rõ giờ tiêm."},
    )  # fmt: skip
    assert status == 200 and rejected["status"] == "rejected"
    assert rejected["review_comment"] == "Ghi rõ giờ tiêm." and rejected["reviewed_by"] == "leader"
    status, edited = _call(
        client, "PATCH", f"/api/v1/bulletins/{bulletin}", tokens["officer"],
        {"title": "Tiêm phòng dại (7 giờ 30)", "text": created["text"] + " Bắt đầu lúc 7 giờ 30."},
    )  # fmt: skip
    assert status == 200 and edited["status"] == "draft"
    _call(client, "POST", f"/api/v1/bulletins/{bulletin}/submit", tokens["officer"])
    status, error = _call(
        client, "POST", f"/api/v1/bulletins/{bulletin}/approve", tokens["officer"]
    )
    assert status == 403  # officers do not approve
    status, approved = _call(
        client, "POST", f"/api/v1/bulletins/{bulletin}/approve", tokens["leader"], {"comment": "OK"}
    )
    assert status == 200 and approved["status"] == "approved"
    for method, step, body in (
        ("POST", "approve", None),
        ("POST", "reject", {"comment": "Muộn rồi."}),
        ("POST", "submit", None),
        ("PATCH", "", {"title": "Sửa sau khi duyệt", "text": "Tin khác."}),
    ):
        url = f"/api/v1/bulletins/{bulletin}/{step}".rstrip("/")
        token = tokens["officer" if step in ("submit", "") else "leader"]
        status, error = _call(client, method, url, token, body)
        assert status == 409 and error["error"]["field"] == "status", (step, error)

    status, sent = _call(
        client, "POST", f"/api/v1/bulletins/{bulletin}/send", tokens["officer"],
        {"zones": ["thon-a"], "priority": "priority", "repeat": 2},
    )  # fmt: skip
    assert status == 201, sent
    assert sent["priority"] == "priority" and sent["repeat"] == 2 and sent["zones"] == ["thon-a"]
    with service.db.session() as session:
        actions = [
            e.action
            for e in session.query(AuditEntry).filter(AuditEntry.target == f"bulletin:{bulletin}")
        ]
        assert actions == [
            "bulletin.create", "bulletin.submit", "bulletin.reject", "bulletin.edit",
            "bulletin.submit", "bulletin.approve",
        ]  # fmt: skip
        assert audit.verify(session).ok


def test_bulletin_errors_name_the_field(client: FlaskClient, tokens: dict[str, str]) -> None:
    officer = tokens["officer"]
    status, error = _call(client, "POST", "/api/v1/bulletins", officer, {"title": "Trống"})
    assert status == 400 and error["error"]["field"] == "text"
    status, error = _call(
        client, "POST", "/api/v1/bulletins", officer, {"text": "Tin.", "submit": "yes"}
    )
    assert status == 400 and error["error"]["field"] == "submit"
    status, error = _call(client, "GET", "/api/v1/bulletins?status=lost", officer)
    assert status == 400 and error["error"]["field"] == "status"
    status, _ = _call(client, "GET", "/api/v1/bulletins/999", officer)
    assert status == 404


def test_reports_over_the_api(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str]
) -> None:
    for zone in ("thon-a", "thon-b"):
        status, created = _call(
            client, "POST", "/api/v1/announcements", tokens["officer"],
            {"text": f"Thông báo cho {zone}.", "zones": [zone]},
        )  # fmt: skip
        assert status == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, listed = _call(client, "GET", "/api/v1/announcements", tokens["officer"])
        if all(b["status"] != "pending" for b in listed):
            break
        time.sleep(0.1)
    service._on_event(
        protocol.DeviceEvent(
            "loa-a-01", "c", created["id"] - 1, protocol.EventKind.FINISHED, time.time()
        )
    )
    status, log = _call(client, "GET", "/api/v1/reports/broadcasts?zone=thon-a", tokens["viewer"])
    assert status == 200 and log["total"] == 1
    [row] = log["broadcasts"]
    assert row["zones"] == ["thon-a"] and row["deliveries"]["finished"] == 1
    status, own = _call(client, "GET", "/api/v1/reports/broadcasts", tokens["head-a"])
    assert status == 200 and {tuple(r["zones"]) for r in own["broadcasts"]} == {("thon-a",)}
    status, _ = _call(client, "GET", "/api/v1/reports/broadcasts?zone=thon-b", tokens["head-a"])
    assert status == 403
    status, error = _call(
        client, "GET", "/api/v1/reports/broadcasts?from=31-12-2026", tokens["viewer"]
    )
    assert status == 400 and error["error"]["field"] == "from"

    month = time.strftime("%Y-%m", time.gmtime(time.time() + 7 * 3600))
    status, summary = _call(
        client, "GET", f"/api/v1/reports/monthly?month={month}", tokens["leader"]
    )
    assert status == 200 and summary["month"] == month
    by_zone = {zone["zone"]: zone for zone in summary["zones"]}
    assert by_zone["thon-a"]["broadcasts"] == 1 and by_zone["thon-a"]["deliveries_finished"] == 1
    assert by_zone["thon-a"]["delivery_rate"] == 1.0
    assert {d["device"] for d in summary["devices"]} == {"loa-a-01", "loa-b-01"}
    status, error = _call(client, "GET", "/api/v1/reports/monthly?month=2026-13", tokens["leader"])
    assert status == 400 and error["error"]["field"] == "month"
