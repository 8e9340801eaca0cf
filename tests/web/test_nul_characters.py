"""A NUL character is refused before anything stores it: PostgreSQL's text columns cannot hold
one (it answered a server error there), and no notice, name or id needs one."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from web_support import csrf_token, login


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_names_the_field_holding_a_nul(client: FlaskClient, tokens: dict[str, str]) -> None:
    officer = _auth(tokens["officer"])
    cases = [
        ("/api/v1/announcements", {"text": "Mất điện\x00 từ 14h", "zones": ["thon-a"]}, "text"),
        ("/api/v1/announcements", {"text": "Điện", "zones": ["thon-a"], "title": "\x00"}, "title"),
        ("/api/v1/announcements", {"text": "Mất điện", "zones": ["thon-\x00a"]}, "zones"),
        ("/api/v1/bulletins", {"text": "Họp dân\x00"}, "text"),
        ("/api/v1/announcements/1/cancel", {"correction": "Đính chính\x00"}, "correction"),
    ]  # fmt: skip
    for url, body, field in cases:
        response = client.post(url, json=body, headers=officer)
        assert response.status_code == 400, (body, response.get_json())
        error = response.get_json()["error"]
        assert error["field"] == field and "NUL" in error["message"], (body, error)
    response = client.get("/api/v1/reports/broadcasts?zone=thon%00a", headers=officer)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "zone"


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    body = json.dumps({"text": "Mã \\u0000 trong văn bản", "zones": ["thon-a"]})
    assert "\\\\u0000" in body  # on the wire: an escaped backslash, then "u0000"
    response = client.post(
        "/api/v1/announcements",
        data=body,
        content_type="application/json",
        headers=_auth(tokens["officer"]),
    )
    assert response.status_code == 201, response.get_json()


def test_a_page_refuses_a_nul_with_a_400_page(client: FlaskClient) -> None:
    login(client, "officer")
    body = {
        "csrf_token": csrf_token(client, "/announce/"),
        "text": "Mất điện\x00 từ 14h",
        "zones": "thon-a",
        "priority": "emergency",
        "repeat": "1",
    }
    response = client.post("/announce/", data=body, content_type="multipart/form-data")
    assert response.status_code == 400 and "<html" in response.get_data(as_text=True)


def test_a_form_part_without_a_name_is_not_a_server_error(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    """Schemathesis sent a recording whose file part had no name (werkzeug keys it None): the
    NUL check read it as text and answered 500."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="zones"\r\n\r\nthon-a\r\n'
        b'--b\r\nContent-Disposition: form-data; filename="r.png"\r\n\r\n\x89PNG\r\n'
        b"--b--\r\n"
    )
    response = client.post(
        "/api/v1/announcements/recording",
        data=body,
        content_type="multipart/form-data; boundary=b",
        headers=_auth(tokens["officer"]),
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["field"] == "recording"
