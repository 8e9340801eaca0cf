"""Pages: login, CSRF on every form, role limits, escaped output."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from service_support import PASSWORD

from broadcast.service import BroadcastService


def _csrf(client: FlaskClient, url: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True))
    assert match is not None
    return match.group(1)


def _login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    token = _csrf(client, "/auth/login")
    response = client.post(
        "/auth/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def test_pages_need_login(client: FlaskClient) -> None:
    for url in ("/", "/announce/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/auth/login" in response.headers["Location"]


def test_wrong_password(client: FlaskClient) -> None:
    token = _csrf(client, "/auth/login")
    response = client.post(
        "/auth/login", data={"username": "admin", "password": "nope", "csrf_token": token}
    )
    assert response.status_code == 200
    assert "Sai tên đăng nhập" in response.get_data(as_text=True)


def test_login_without_csrf_token_is_rejected(client: FlaskClient) -> None:
    response = client.post("/auth/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400


def test_dashboard_lists_devices(client: FlaskClient) -> None:
    _login(client, "officer")
    page = client.get("/").get_data(as_text=True)
    assert "loa-a-01" in page and "loa-b-01" in page
    assert "Mất kết nối" in page
    assert "Hôm nay không có chương trình nào" in page


def test_village_head_form_offers_only_own_village(client: FlaskClient) -> None:
    _login(client, "head-a")
    page = client.get("/announce/").get_data(as_text=True)
    assert 'value="thon-a"' in page
    assert 'value="thon-b"' not in page
    assert 'value="xa-test"' not in page
    assert "loa-b-01" not in client.get("/").get_data(as_text=True)


def test_village_head_post_to_other_village_is_forbidden(client: FlaskClient) -> None:
    _login(client, "head-a")
    token = _csrf(client, "/announce/")
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
    _login(client, "viewer")
    assert client.get("/announce/").status_code == 403


def test_empty_text_is_reported_not_lost(client: FlaskClient) -> None:
    _login(client, "officer")
    token = _csrf(client, "/announce/")
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
    _login(client, "officer")
    token = _csrf(client, "/announce/")
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
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_media_rejects_bad_names(client: FlaskClient) -> None:
    assert client.get("/media/../../secrets.json").status_code == 404
    assert client.get("/media/" + "a" * 64 + ".mp3").status_code == 404
