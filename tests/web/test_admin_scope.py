"""Administration pages in a province with two communes: a commune admin sees and acts only in
its commune (404 for the other's users, zones, receivers, configs and QR codes; their audit
entries absent), a province admin in both, the installation-wide admin everywhere; the forms
offer exactly what the server accepts; metrics are the installation-wide admin's."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from service_support import Province
from web_support import csrf_token, login

from broadcast.people import accounts
from broadcast.service import BroadcastService
from broadcast.store.models import Device, User, Zone


def _client(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    login(client, username)
    return client


def _page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def _ids(page: str, attribute: str) -> set[str]:
    return set(re.findall(rf'{attribute}="([^"]+)"', page))


def _form(page: str, form_id: str) -> str:
    match = re.search(rf'<form[^>]*id="{form_id}".*?</form>', page, re.S)
    assert match is not None, form_id
    return match.group(0)


def _options(form: str, select_id: str) -> list[tuple[str, str | None]]:
    """(value, data-when) of each option of a select."""
    match = re.search(rf'<select id="{select_id}".*?</select>', form, re.S)
    assert match is not None, select_id
    return [
        (html.unescape(value), when)
        for value, when in re.findall(
            r'<option value="([^"]*)"(?: data-when="([^"]*)")?', match.group(0)
        )
    ]


OTHER_COMMUNE_URLS = (
    "/admin/devices/loa-binh-1-01",
    "/admin/devices/loa-binh-1-01/qr",
    "/admin/devices/loa-binh-1-01/config.json",
    "/admin/devices/loa-binh-1-01/config.svg",
)


def test_a_commune_admin_sees_only_its_commune(app: Flask, province: Province) -> None:
    client = _client(app, "an-admin")
    users = _ids(_page(client, "/admin/users"), "data-user")
    assert users == {"an-admin", "an-officer", "an-head"}
    zones = _ids(_page(client, "/admin/zones"), "data-zone")
    assert zones == {"xa-an", "thon-an-1", "thon-an-2"}
    devices = _page(client, "/admin/devices")
    assert _ids(devices, "data-device") == {"loa-an-1-01"}
    assert {value for value, _ in _options(devices, "filter-zone")} == {"", *zones}
    assert {value for value, _ in _options(devices, "device-zone")} == {"", *zones}
    for url in OTHER_COMMUNE_URLS:
        assert client.get(url).status_code == 404, url
    assert client.get("/admin/devices?zone=xa-binh").status_code == 400


def test_a_commune_admin_cannot_act_in_the_other_commune(
    app: Flask, service: BroadcastService, province: Province
) -> None:
    client = _client(app, "an-admin")
    token = csrf_token(client, "/admin/users")
    other = province.officer_b
    for url, form in (
        (f"/admin/users/{other}/active", {"active": "0"}),
        (f"/admin/users/{other}/password", {}),
        (f"/admin/users/{other}/role", {"role": "viewer", "zone": "xa-an"}),
        ("/admin/zones/thon-binh-1/name", {"name": "Bị đổi"}),
    ):
        response = client.post(url, data={**form, "csrf_token": token})
        assert response.status_code == 404, url
    refused = (
        ("/admin/users", {"username": "spy", "role": "officer", "zone": "xa-binh"}),
        ("/admin/zones", {"kind": "village", "name": "Thôn Lạ", "parent": "xa-binh"}),
        ("/admin/zones", {"kind": "commune", "name": "Xã Lạ", "parent": "tinh-thu"}),
        ("/admin/devices", {"id": "loa-la", "zone": "thon-binh-1"}),
    )
    for url, form in refused:
        response = client.post(url, data={**form, "csrf_token": token})
        assert response.status_code == 400, (url, form)
    with service.db.session() as session:
        officer = session.get(User, other)
        assert officer.active and officer.role == "officer"
        assert session.get(Zone, "thon-binh-1").name == "Thôn Bình 1"
        assert session.get(Device, "loa-la") is None
        assert accounts.authenticate(session, "spy", "x" * 12) is None


def test_the_province_admin_works_in_both_communes(app: Flask, province: Province) -> None:
    client = _client(app, "tinh-admin")
    users = _ids(_page(client, "/admin/users"), "data-user")
    assert {"an-officer", "binh-officer", "tinh-editor"} <= users
    assert "root-admin" not in users and "admin" not in users
    zones = _ids(_page(client, "/admin/zones"), "data-zone")
    assert zones == {"tinh-thu", "xa-an", "xa-binh", "thon-an-1", "thon-an-2", "thon-binh-1"}
    assert _ids(_page(client, "/admin/devices"), "data-device") == {"loa-an-1-01", "loa-binh-1-01"}
    for url in OTHER_COMMUNE_URLS:
        assert client.get(url).status_code == 200, url
    assert "loa-an-1-01" not in _page(client, "/admin/devices?zone=xa-binh").split("<tbody>")[1]


def test_the_installation_admin_sees_everything(app: Flask, province: Province) -> None:
    client = _client(app, "root-admin")
    assert {"admin", "root-admin", "an-officer", "binh-officer"} <= _ids(
        _page(client, "/admin/users"), "data-user"
    )
    assert {"xa-test", "tinh-thu", "thon-binh-1"} <= _ids(
        _page(client, "/admin/zones"), "data-zone"
    )


def test_audit_entries_follow_the_zone(app: Flask, province: Province) -> None:
    an, binh, root = (_client(app, name) for name in ("an-admin", "binh-admin", "root-admin"))
    for client, target in ((an, province.officer_a), (binh, province.officer_b)):
        token = csrf_token(client, "/admin/users")
        assert client.post(f"/admin/users/{target}/password", data={"csrf_token": token})
    token = csrf_token(root, "/admin/users")
    root.post(f"/admin/users/{province.officer_a}/password", data={"csrf_token": token})

    def targets(client: FlaskClient) -> str:
        return _page(client, "/admin/audit").split("<tbody>")[1]

    seen_by_an = targets(an)
    assert f"user:{province.officer_a}" in seen_by_an
    assert f"user:{province.officer_b}" not in seen_by_an and "root-admin" not in seen_by_an
    both = targets(_client(app, "tinh-admin"))
    assert "an-admin" in both and "binh-admin" in both and "root-admin" not in both
    assert "root-admin" in targets(root)


@pytest.mark.parametrize("username", ["an-admin", "tinh-admin", "root-admin"])
def test_the_user_form_offers_what_the_server_accepts(
    app: Flask, province: Province, username: str
) -> None:
    client = _client(app, username)
    form = _form(_page(client, "/admin/users"), "new-user")
    roles = [value for value, _ in _options(form, "role")]
    zones = _options(form, "zone")
    if username == "an-admin":
        assert "province_editor" not in roles
        assert {value for value, _ in zones} == {"xa-an", "thon-an-1", "thon-an-2"}
    else:
        assert "province_editor" in roles
        assert "Biên tập viên tỉnh" in form
    token = csrf_token(client, "/admin/users")
    number = 0
    for role in roles:
        fitting = [value for value, when in zones if role in (when or "").split()]
        assert fitting, role
        for zone in fitting:
            number += 1
            response = client.post(
                "/admin/users",
                data={"username": f"new-{number}", "role": role, "zone": zone, "csrf_token": token},
            )
            assert response.status_code == 200, (role, zone)  # the password, shown once
            assert 'id="new-password"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("username", "kinds"),
    [
        ("an-admin", ["village"]),
        ("tinh-admin", ["commune", "village"]),
        ("root-admin", ["province", "commune", "village"]),
    ],
)
def test_the_zone_form_offers_what_the_server_accepts(
    app: Flask, service: BroadcastService, province: Province, username: str, kinds: list[str]
) -> None:
    client = _client(app, username)
    page = _page(client, "/admin/zones")
    assert "(thôn)" not in page
    form = _form(page, "new-zone")
    assert [value for value, _ in _options(form, "zone-kind")] == kinds
    parents = _options(form, "zone-parent")
    token = csrf_token(client, "/admin/zones")
    number = 0
    for kind in kinds:
        for parent, when in parents:
            if kind not in (when or "").split():
                continue
            number += 1
            response = client.post(
                "/admin/zones",
                data={"kind": kind, "name": f"Mới {number}", "parent": parent, "csrf_token": token},
            )
            assert response.status_code == 302, (kind, parent)
    assert number >= len(kinds)


def test_metrics_are_for_the_installation_admin(
    client: FlaskClient, service: BroadcastService, province: Province
) -> None:
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    with service.db.session() as session:
        tokens = {
            name: accounts.create_token(session, accounts.get_user(session, name))
            for name in ("root-admin", "tinh-admin", "an-admin")
        }
    for name, status in (("root-admin", 200), ("tinh-admin", 403), ("an-admin", 403)):
        response = client.get(
            "/metrics", environ_base=remote, headers={"Authorization": f"Bearer {tokens[name]}"}
        )
        assert response.status_code == status, name
