"""Sign-in limits, session cookies, security headers, and where audited actions came from."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from service_support import PASSWORD
from sqlalchemy import select
from web_support import csrf_token, login

from broadcast import accounts, audit
from broadcast.models import AuditEntry, LoginAttempt, utcnow
from broadcast.service import BroadcastService


def _try(client: FlaskClient, username: str, password: str, address: str = "198.51.100.7") -> int:
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code


def test_repeated_wrong_passwords_lock_the_user_name_for_a_while(
    client: FlaskClient, service: BroadcastService
) -> None:
    for _ in range(accounts.MAX_FAILURES_PER_USER):
        assert _try(client, "officer", "wrong password!") == 200  # the form again, with an error
    assert _try(client, "officer", PASSWORD) == 429  # even the right password waits
    assert _try(client, "head-a", PASSWORD) == 302  # other people are not locked out
    with service.db.session() as session:  # the window passes
        for row in session.scalars(select(LoginAttempt)):
            row.at -= accounts.FAILURE_WINDOW + timedelta(seconds=1)
    assert _try(client, "officer", PASSWORD) == 302


def test_one_address_trying_many_names_is_limited(client: FlaskClient) -> None:
    for index in range(accounts.MAX_FAILURES_PER_ADDRESS):
        assert _try(client, f"guess-{index}", "wrong password!", "203.0.113.9") == 200
    assert _try(client, "officer", PASSWORD, "203.0.113.9") == 429
    assert _try(client, "officer", PASSWORD, "203.0.113.10") == 302


def test_the_limit_response_says_when_to_retry(client: FlaskClient) -> None:
    for _ in range(accounts.MAX_FAILURES_PER_USER):
        _try(client, "viewer", "wrong password!")
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 429
    assert "thử lại sau" in response.get_data(as_text=True)
    assert 0 < int(response.headers["Retry-After"]) <= accounts.FAILURE_WINDOW.total_seconds() + 1


def test_sign_ins_and_failures_are_audited_with_the_client_address(
    client: FlaskClient, service: BroadcastService
) -> None:
    assert _try(client, "officer", "wrong password!", "192.0.2.44") == 200
    assert _try(client, "officer", PASSWORD, "192.0.2.44") == 302
    with service.db.session() as session:
        entries = [(e.action, e.target, e.origin) for e in audit.recent(session, 10)]
        assert entries[:2] == [
            ("login", entries[0][1], "web 192.0.2.44"),
            ("login.failed", "username:officer", "web 192.0.2.44"),
        ]
        assert audit.verify(session).ok


def test_api_actions_are_audited_as_api(
    client: FlaskClient, service: BroadcastService, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/announcements",
        json={"text": "Họp thôn lúc 19 giờ.", "zones": ["thon-a"]},
        headers={"Authorization": f"Bearer {tokens['officer']}"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 201, response.get_json()
    with service.db.session() as session:
        [entry] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.Action.ANNOUNCE.value)
        ).all()
        assert entry.username == "officer" and entry.origin == "api 10.1.2.3"
        assert entry.target == f"broadcast:{response.get_json()['id']}"
    assert audit.current_origin() == audit.SYSTEM  # reset after the request


def test_session_cookie_and_headers(app: Flask, client: FlaskClient) -> None:
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    login(client, "officer")
    response = client.get("/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_old_attempts_are_forgotten(service: BroadcastService) -> None:
    with service.db.session() as session:
        old = utcnow() - accounts.FAILURE_WINDOW - timedelta(minutes=1)
        accounts.record_login(session, "x", "192.0.2.1", success=False, now=old)
        accounts.record_login(session, "y", "192.0.2.1", success=False)
    with service.db.session() as session:
        assert [a.username for a in session.scalars(select(LoginAttempt))] == ["y"]


def test_user_text_is_escaped_on_every_page_that_shows_it(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    response = client.post(
        "/api/v1/announcements",
        json={"text": f"Họp thôn {payload}", "title": payload, "zones": ["thon-a"]},
        headers={"Authorization": f"Bearer {tokens['officer']}"},
    )
    assert response.status_code == 201, response.get_json()
    broadcast_id = response.get_json()["id"]
    login(client, "officer")
    for url in ("/", f"/announce/{broadcast_id}"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;alert" in page, url


def test_error_pages_speak_the_users_language(client: FlaskClient) -> None:
    login(client, "head-a")
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "Bạn không có quyền" in response.get_data(as_text=True)
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Không tìm thấy" in response.get_data(as_text=True)
    response = client.get("/no/such/page?lang=en")
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)
    api = client.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.is_json
