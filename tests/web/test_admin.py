"""Administration pages: admins only (403 for every other role on every route), passwords
shown once and never cached, receiver configs downloaded and shown as a QR code with audit
entries and no-store headers, the audit log page with its chain verification."""

from __future__ import annotations

import json
import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from piper_voice import make_voice
from service_support import Users
from sqlalchemy import select, update
from support import self_signed_ca_pem
from web_support import csrf_token, login

from broadcast.desks.administration import QR_CA_FILE, compact_config, qr_svg
from broadcast.people import audit
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Device, User, Zone
from tts import normalize
from wire.config import ReceiverConfig

SENTENCE = normalize("Xin chào bà con, đây là giọng đọc thử của đài truyền thanh xã.")

GET_ROUTES = (
    "/admin/",
    "/admin/users",
    "/admin/zones",
    "/admin/devices",
    "/admin/devices/loa-a-01",
    "/admin/devices/loa-a-01/qr",
    "/admin/devices/loa-a-01/config.json",
    "/admin/devices/loa-a-01/config.svg",
    "/admin/audit",
)


def _post_routes(users: Users) -> dict[str, dict[str, str]]:
    return {
        "/admin/users": {"username": "intruder", "role": "admin", "password": "x" * 12},
        f"/admin/users/{users.admin}/active": {"active": "0"},
        f"/admin/users/{users.admin}/password": {},
        f"/admin/users/{users.viewer}/role": {"role": "admin"},
        "/admin/zones": {"id": "thon-x", "name": "Thôn X"},
        "/admin/zones/thon-a/name": {"name": "Bị đổi"},
        "/admin/zones/xa-test/voice": {"voice": ""},
        "/admin/devices": {"id": "loa-x-01", "zone": "thon-a"},
    }


def _audit(service: BroadcastService, action: audit.Action) -> list[AuditEntry]:
    with service.db.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action.value).order_by(AuditEntry.seq)
            )
        )


def test_every_admin_route_is_forbidden_to_other_roles(
    app: Flask, service: BroadcastService, users: Users
) -> None:
    for username in ("officer", "head-a", "viewer", "leader"):
        client = app.test_client()
        login(client, username)
        for url in GET_ROUTES:
            assert client.get(url).status_code == 403, (username, url)
        token = csrf_token(client, "/")
        for url, form in _post_routes(users).items():
            response = client.post(url, data={**form, "csrf_token": token})
            assert response.status_code == 403, (username, url)
        assert "/admin/" not in client.get("/").get_data(as_text=True)  # no nav link
    assert not _audit(service, audit.Action.DEVICE_CONFIG)
    assert not _audit(service, audit.Action.USER_CREATE)
    with service.db.session() as session:
        assert session.get(Zone, "thon-a").name == "Thôn A"
        assert session.get(Zone, "thon-x") is None
        assert session.get(User, users.viewer).role == "viewer"
        assert session.get(User, users.admin).active


def test_anonymous_is_sent_to_login(client: FlaskClient) -> None:
    for url in GET_ROUTES:
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_admin_pages_open(client: FlaskClient) -> None:
    login(client, "admin")
    assert client.get("/admin/").status_code == 302
    for url in GET_ROUTES[1:]:
        assert client.get(url).status_code == 200, url
    assert 'href="/admin/users"' in client.get("/").get_data(as_text=True)


def test_forms_need_csrf(client: FlaskClient, users: Users) -> None:
    login(client, "admin")
    for url, form in _post_routes(users).items():
        assert client.post(url, data=form).status_code == 400, url


# --- users --------------------------------------------------------------------------------


def test_create_user_shows_the_password_once(
    app: Flask, client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "admin")
    token = csrf_token(client, "/admin/users")
    response = client.post(
        "/admin/users",
        data={
            "username": "thu-ha",
            "full_name": "Nguyễn Thu Hà",
            "role": "village_head",
            "zone": "thon-b",
            "password": "",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    match = re.search(r'<code id="new-password">([^<]+)</code>', page)
    assert match is not None, page
    password = match.group(1)
    assert "chỉ hiện một lần" in page
    assert password not in client.get("/admin/users").get_data(as_text=True)
    assert password not in client.get("/admin/audit").get_data(as_text=True)
    other = app.test_client()
    login(other, "thu-ha", password)
    assert _audit(service, audit.Action.USER_CREATE)[-1].username == "admin"


def test_create_user_mistake_is_explained(client: FlaskClient) -> None:
    login(client, "admin")
    token = csrf_token(client, "/admin/users")
    response = client.post(
        "/admin/users",
        data={"username": "lan", "role": "officer", "password": "short", "csrf_token": token},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "ít nhất 10 ký tự" in page and 'value="lan"' in page


def test_typed_password_is_not_shown(client: FlaskClient, app: Flask) -> None:
    login(client, "admin")
    token = csrf_token(client, "/admin/users")
    response = client.post(
        "/admin/users",
        data={
            "username": "lan",
            "role": "officer",
            "password": "một mật khẩu dài",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "một mật khẩu dài" not in page and "Đã tạo tài khoản lan" in page
    login(app.test_client(), "lan", "một mật khẩu dài")


def test_disable_logs_the_user_out_and_reset_password(
    app: Flask, client: FlaskClient, service: BroadcastService, users: Users
) -> None:
    viewer = app.test_client()
    login(viewer, "viewer")
    assert viewer.get("/reports/").status_code == 200
    login(client, "admin")
    token = csrf_token(client, "/admin/users")
    response = client.post(
        f"/admin/users/{users.viewer}/active", data={"active": "0", "csrf_token": token}
    )
    assert response.status_code == 302
    assert viewer.get("/reports/").status_code == 302  # signed out at once
    assert _audit(service, audit.Action.USER_UPDATE)[-1].detail["active"] is False
    client.post(f"/admin/users/{users.viewer}/active", data={"active": "1", "csrf_token": token})
    response = client.post(f"/admin/users/{users.viewer}/password", data={"csrf_token": token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    match = re.search(r'<code id="new-password">([^<]+)</code>', response.get_data(as_text=True))
    assert match is not None
    login(app.test_client(), "viewer", match.group(1))
    assert _audit(service, audit.Action.USER_PASSWORD)[-1].target == f"user:{users.viewer}"


def test_admin_cannot_lock_themself(client: FlaskClient, users: Users) -> None:
    login(client, "admin")
    token = csrf_token(client, "/admin/users")
    response = client.post(
        f"/admin/users/{users.admin}/active",
        data={"active": "0", "csrf_token": token},
        follow_redirects=True,
    )
    assert "không thể tự khóa" in response.get_data(as_text=True)
    assert client.get("/admin/users").status_code == 200


def test_change_role(client: FlaskClient, service: BroadcastService, users: Users) -> None:
    login(client, "admin")
    token = csrf_token(client, "/admin/users")
    client.post(
        f"/admin/users/{users.officer}/role",
        data={"role": "village_head", "zone": "thon-b", "csrf_token": token},
    )
    with service.db.session() as session:
        officer = session.get(User, users.officer)
        assert (officer.role, officer.zone_id) == ("village_head", "thon-b")
    response = client.post(
        f"/admin/users/{users.officer}/role",
        data={"role": "village_head", "zone": "", "csrf_token": token},
        follow_redirects=True,
    )
    assert "trưởng thôn phải được gán một thôn" in response.get_data(as_text=True)


# --- zones --------------------------------------------------------------------------------


def test_create_and_rename_zone(client: FlaskClient, service: BroadcastService) -> None:
    login(client, "admin")
    token = csrf_token(client, "/admin/zones")
    response = client.post(
        "/admin/zones",
        data={
            "kind": "village",
            "id": "thon-c",
            "name": "Thôn C",
            "parent": "xa-test",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    client.post(
        "/admin/zones/thon-c/name", data={"name": "<script>x</script>", "csrf_token": token}
    )
    page = client.get("/admin/zones").get_data(as_text=True)
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    assert [e.target for e in _audit(service, audit.Action.ZONE_CREATE)] == ["zone:thon-c"]
    assert [e.target for e in _audit(service, audit.Action.ZONE_UPDATE)] == ["zone:thon-c"]
    response = client.post(
        "/admin/zones",
        data={"kind": "village", "id": "Thôn D", "name": "Thôn D", "parent": "xa-test",
              "csrf_token": token},
    )  # fmt: skip
    assert response.status_code == 400 and "mã khu vực" in response.get_data(as_text=True)
    assert (
        client.post("/admin/zones/thon-z/name", data={"name": "Z", "csrf_token": token}).status_code
        == 404
    )


# --- devices ------------------------------------------------------------------------------


def test_register_device(client: FlaskClient, service: BroadcastService) -> None:
    login(client, "admin")
    token = csrf_token(client, "/admin/devices")
    response = client.post(
        "/admin/devices",
        data={"id": "loa-a-02", "name": "Cụm loa chợ", "zone": "thon-a", "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/devices/loa-a-02")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Cụm loa chợ" in page and "loa mqtt-config" in page
    entry = _audit(service, audit.Action.DEVICE_REGISTER)[-1]
    assert (entry.username, entry.target) == ("admin", "device:loa-a-02")
    response = client.post(
        "/admin/devices", data={"id": "loa-a-02", "zone": "thon-a", "csrf_token": token}
    )
    assert response.status_code == 400 and "đã có" in response.get_data(as_text=True)


def test_the_device_list_comes_a_page_at_a_time_and_by_zone(
    client: FlaskClient, service: BroadcastService
) -> None:
    """A province registers thousands of receivers: the admin's list is paged and filtered."""
    with service.db.session() as session:
        for n in range(120):
            session.add(Device(id=f"loa-b-{n + 2:03d}", zone_id="thon-b", mqtt_password_hash="-"))
    login(client, "admin")

    def listed(url: str) -> tuple[list[str], str]:
        page = client.get(url).get_data(as_text=True)
        return re.findall(r'<tr data-device="([^"]+)"', page), page

    first, page = listed("/admin/devices")
    assert len(first) == 100 and first[0] == "loa-a-01" and "122 cụm loa" in page
    assert "Trang 1 / 2" in page and 'href="/admin/devices?page=2" rel="next"' in page
    second, page = listed("/admin/devices?page=2")
    assert len(second) == 22 and not set(first) & set(second) and 'rel="next"' not in page
    assert listed("/admin/devices?page=99")[0] == second  # past the end: the last page
    village, page = listed("/admin/devices?zone=thon-a")
    assert village == ["loa-a-01"] and "Trang 1 /" not in page
    commune, _page = listed("/admin/devices?zone=xa-test&page=2")
    assert commune == second
    unknown = client.get("/admin/devices?zone=thon-z")
    assert unknown.status_code == 400 and "thon-z" in unknown.get_data(as_text=True)


def test_the_qr_page_says_where_to_copy_a_ca_left_out_of_the_code(
    client: FlaskClient, service: BroadcastService
) -> None:
    login(client, "admin")
    page = client.get("/admin/devices/loa-a-01/qr").get_data(as_text=True)
    assert 'id="qr-ca-file"' not in page  # plain MQTT: nothing to copy
    path = service.settings.devices_dir / "loa-a-01.json"
    config = json.loads(path.read_bytes())
    config["mqtt"]["tls"] = {"ca_pem": self_signed_ca_pem(rsa_bits=3072)}  # too large
    path.write_text(json.dumps(config))
    page = client.get("/admin/devices/loa-a-01/qr").get_data(as_text=True)
    assert 'id="qr-ca-file"' in page and QR_CA_FILE in page
    english = client.get("/admin/devices/loa-a-01/qr?lang=en").get_data(as_text=True)
    assert f"copy the CA file to {QR_CA_FILE} on the receiver" in english


def test_config_download(client: FlaskClient, service: BroadcastService) -> None:
    login(client, "admin")
    response = client.get("/admin/devices/loa-a-01/config.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="loa-a-01.json"'
    config = ReceiverConfig.from_dict(json.loads(response.data))
    assert config.device_id == "loa-a-01" and config.mqtt.password
    entry = _audit(service, audit.Action.DEVICE_CONFIG)[-1]
    assert (entry.username, entry.target, entry.detail) == (
        "admin",
        "device:loa-a-01",
        {"form": "file"},
    )
    assert entry.origin.startswith("web ")
    assert client.get("/admin/devices/loa-nope/config.json").status_code == 404


def test_qr_code_is_segno_svg_of_the_config(client: FlaskClient, service: BroadcastService) -> None:
    login(client, "admin")
    page = client.get("/admin/devices/loa-a-01").get_data(as_text=True)
    assert "config.svg" not in page  # shown only when asked (each showing is audited)
    response = client.get("/admin/devices/loa-a-01/qr")
    assert response.headers["Cache-Control"] == "no-store"
    assert '<img src="/admin/devices/loa-a-01/config.svg"' in response.get_data(as_text=True)
    response = client.get("/admin/devices/loa-a-01/config.svg")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert response.headers["Cache-Control"] == "no-store"
    data = (service.settings.devices_dir / "loa-a-01.json").read_bytes()
    payload = compact_config(data)
    assert response.data == qr_svg(payload).svg
    assert b'class="segno"' in response.data
    entry = _audit(service, audit.Action.DEVICE_CONFIG)[-1]
    assert entry.detail["form"] == "qr"


# --- the audit log ------------------------------------------------------------------------


def test_audit_page_verifies_the_chain(client: FlaskClient, service: BroadcastService) -> None:
    login(client, "admin")
    client.get("/admin/devices/loa-a-01/config.json")
    page = client.get("/admin/audit").get_data(as_text=True)
    assert 'data-ok="1"' in page and "Nhật ký toàn vẹn" in page
    seqs = [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', page)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) >= 2  # newest first
    with service.db.session() as session:
        session.execute(
            update(AuditEntry).where(AuditEntry.seq == seqs[-1]).values(target="user:999")
        )
    page = client.get("/admin/audit").get_data(as_text=True)
    assert 'data-ok="0"' in page and f'data-broken="{seqs[-1]}"' in page
    assert f"mục số {seqs[-1]} đã bị sửa" in page


def test_audit_page_is_paginated(client: FlaskClient, service: BroadcastService) -> None:
    with service.db.session() as session:
        for number in range(60):
            audit.record(session, None, audit.Action.TOKEN_CREATE, f"user:{number}")
    login(client, "admin")
    first = client.get("/admin/audit").get_data(as_text=True)
    assert "Trang 1 / 2" in first and 'href="/admin/audit?page=2"' in first
    second = client.get("/admin/audit?page=2").get_data(as_text=True)
    assert second.count("<tr data-seq=") == 61 - 50  # 60 + the login entry


def test_no_inline_scripts_or_styles(client: FlaskClient) -> None:
    login(client, "admin")
    for url in ("/admin/users", "/admin/zones", "/admin/devices", "/admin/audit"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>" not in page and "style=" not in page and "<style" not in page


def test_a_password_reset_ends_old_sessions_and_tokens(
    app: Flask, client: FlaskClient, service: BroadcastService, users: Users, tokens: dict[str, str]
) -> None:
    officer = app.test_client()
    login(officer, "officer")
    assert officer.get("/reports/").status_code == 200
    bearer = {"Authorization": f"Bearer {tokens['officer']}"}
    assert client.get("/api/v1/zones", headers=bearer).status_code == 200
    login(client, "admin")
    token = csrf_token(client, "/admin/users")
    response = client.post(f"/admin/users/{users.officer}/password", data={"csrf_token": token})
    assert response.status_code == 200
    assert officer.get("/reports/").status_code == 302  # the old session is over
    assert client.get("/api/v1/zones", headers=bearer).status_code == 401  # so is the token
    entry = _audit(service, audit.Action.USER_PASSWORD)[-1]
    assert entry.detail["tokens_revoked"] == 1


# --- voices ----------------------------------------------------------------------------------


def test_a_commune_chooses_its_voice_on_the_zones_page(
    client: FlaskClient, service: BroadcastService, tmp_path: Path
) -> None:
    login(client, "admin")
    page = client.get("/admin/zones").get_data(as_text=True)
    assert 'id="voices"' in page and "loa voice add" in page  # none installed yet: says how
    name, _check = service.voices.add(make_voice(tmp_path / "voice", [SENTENCE]), "giong-thu")
    page = client.get("/admin/zones").get_data(as_text=True)
    assert f'<option value="{name}">{name}</option>' in page
    assert 'id="voice-thon-a"' not in page  # villages follow their commune
    token = csrf_token(client, "/admin/zones")
    saved = client.post("/admin/zones/xa-test/voice", data={"voice": name, "csrf_token": token})
    assert saved.status_code == 302
    page = client.get("/admin/zones").get_data(as_text=True)
    assert "Đã lưu giọng đọc." in page and f'<option value="{name}" selected>' in page
    for zone, voice, problem in (
        ("xa-test", "khong-co", "không có giọng đọc"),
        ("thon-a", name, "thôn theo xã"),
    ):
        client.post(f"/admin/zones/{zone}/voice", data={"voice": voice, "csrf_token": token})
        assert problem in client.get("/admin/zones").get_data(as_text=True)
    assert (
        client.post(
            "/admin/zones/khong-co/voice", data={"voice": name, "csrf_token": token}
        ).status_code
        == 404
    )
    with service.db.session() as session:
        assert session.get(Zone, "xa-test").voice == name
