"""Sign-in limits, session cookies, security headers, and where audited actions came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from service_support import PASSWORD
from sqlalchemy import select
from web_support import csrf_token, login
from werkzeug.test import TestResponse

from broadcast.people import accounts, audit
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, LoginAttempt, utcnow
from web import auth, create_app

STRANGER, OWNER = "203.0.113.66", "198.51.100.7"


def _post_login(
    client: FlaskClient, username: str, password: str, address: str = OWNER
) -> TestResponse:
    token = csrf_token(client, "/auth/login")
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def _try(client: FlaskClient, username: str, password: str, address: str = OWNER) -> int:
    return _post_login(client, username, password, address).status_code


def _wind_back(service: BroadcastService, by: timedelta) -> None:
    """Time passes for the sign-in limits: every recorded attempt becomes `by` older."""
    with service.db.session() as session:
        for row in session.scalars(select(LoginAttempt)):
            row.at -= by


class _CountingHasher:
    """The tests' password hasher, counting what it is asked to do."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        self.calls += 1
        return getattr(self._hasher, name)


def _attempts(service: BroadcastService) -> int:
    with service.db.session() as session:
        return len(session.scalars(select(LoginAttempt)).all())


def test_a_strangers_failures_do_not_block_the_owners_password(
    app: Flask, service: BroadcastService
) -> None:
    stranger, owner = app.test_client(), app.test_client()
    for _ in range(accounts.FREE_FAILURES):
        assert _try(stranger, "head-a", "wrong password!", STRANGER) == 200
    assert _try(stranger, "head-a", "wrong password!", STRANGER) == 429  # the stranger waits
    for index in range(10):  # and from other networks too, a few each
        for _ in range(accounts.FREE_FAILURES):
            assert _try(stranger, "head-a", "wrong password!", f"192.0.2.{index + 1}") == 200
    assert _try(owner, "head-a", PASSWORD, OWNER) == 302  # never seen before, still let in


def test_repeated_failures_from_one_address_wait_longer_each_time_and_are_refused_quickly(
    client: FlaskClient, service: BroadcastService, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(accounts.FREE_FAILURES):
        assert _try(client, "officer", "wrong password!", STRANGER) == 200
    waits = []
    for _ in range(4):
        refused = _post_login(client, "officer", PASSWORD, STRANGER)  # even the right one
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        _wind_back(service, timedelta(seconds=waits[-1]))
        assert _try(client, "officer", "wrong password!", STRANGER) == 200  # tried, and wrong
    assert waits == [5, 10, 20, 40]

    hasher = _CountingHasher(accounts._HASHER)  # a refused attempt hashes nothing, counts not
    monkeypatch.setattr(accounts, "_HASHER", hasher)
    counted = _attempts(service)
    for _ in range(20):
        assert _try(client, "officer", PASSWORD, STRANGER) == 429
    assert hasher.calls == 0 and _attempts(service) == counted

    assert accounts.backoff_delay(10_000) == accounts.MAX_DELAY  # capped, however many
    _wind_back(service, accounts.FAILURE_MEMORY)  # a day later it is forgotten
    monkeypatch.undo()
    assert _try(client, "officer", PASSWORD, STRANGER) == 302


def test_the_refusal_says_when_to_retry_in_the_users_words(
    client: FlaskClient, service: BroadcastService
) -> None:
    for _ in range(accounts.FREE_FAILURES):
        _try(client, "viewer", "wrong password!")
    response = _post_login(client, "viewer", PASSWORD)
    assert response.status_code == 429 and response.headers["Retry-After"] == "5"
    assert "thử lại sau 5 giây" in response.get_data(as_text=True)
    for _ in range(6):  # 5 s, then 10, 20, 40, 80, 160, 320: minutes
        _wind_back(service, accounts.MAX_DELAY)
        assert _try(client, "viewer", "wrong password!") == 200
    response = _post_login(client, "viewer", PASSWORD)
    assert response.status_code == 429 and "thử lại sau 6 phút" in response.get_data(as_text=True)


def test_a_device_the_user_signed_in_on_before_is_not_blocked_by_anyone_else(
    app: Flask, service: BroadcastService
) -> None:
    phone = app.test_client()
    assert _try(phone, "head-a", PASSWORD, OWNER) == 302
    cookie = phone.get_cookie(auth.KNOWN_DEVICE_COOKIE, path="/auth/")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert cookie.expires is not None
    assert cookie.expires - datetime.now(UTC) > timedelta(days=300)
    phone.delete_cookie("session")  # signed out; the device cookie stays

    # a stranger on the same mobile network (one shared address) and on a hundred others
    stranger = app.test_client()
    for _ in range(accounts.FREE_FAILURES):
        _try(stranger, "head-a", "wrong password!", OWNER)
    with service.db.session() as session:
        for index in range(accounts.MAX_FAILURES_PER_NAME):
            source = accounts.login_source(session, "head-a", f"2001:db8:{index:x}::1")
            accounts.record_login(session, "head-a", source, success=False)
    assert _try(stranger, "head-a", PASSWORD, OWNER) == 429
    assert _try(app.test_client(), "head-a", PASSWORD, "192.0.2.200") == 429  # name's ceiling

    assert _try(phone, "head-a", PASSWORD, OWNER) == 302  # the known phone passes
    assert _try(phone, "head-a", PASSWORD, "192.0.2.201") == 302  # from any network


def test_a_known_device_still_backs_off_after_its_own_failures(app: Flask) -> None:
    stolen = app.test_client()
    assert _try(stolen, "officer", PASSWORD) == 302
    stolen.delete_cookie("session")
    for _ in range(accounts.FREE_FAILURES):
        assert _try(stolen, "officer", "wrong password!") == 200
    assert _try(stolen, "officer", PASSWORD) == 429


def test_a_forged_or_borrowed_known_device_cookie_does_not_pass(
    app: Flask, service: BroadcastService
) -> None:
    for _ in range(accounts.FREE_FAILURES):
        _try(app.test_client(), "officer", "wrong password!", OWNER)
    with service.db.session() as session:
        officer = accounts.get_user(session, "officer").id
    payload = {"device": "forged", "users": [officer]}
    forged = {
        "another key": URLSafeTimedSerializer("not the app's key", salt="loa-known-device"),
        "another salt": URLSafeTimedSerializer(app.secret_key, salt="something else"),
    }
    for why, serializer in forged.items():
        client = app.test_client()
        client.set_cookie(auth.KNOWN_DEVICE_COOKIE, serializer.dumps(payload), path="/auth/")
        assert _try(client, "officer", PASSWORD, OWNER) == 429, why

    genuine = app.test_client()  # a real cookie, but of someone else's device
    assert _try(genuine, "head-a", PASSWORD, "192.0.2.9") == 302
    borrowed = genuine.get_cookie(auth.KNOWN_DEVICE_COOKIE, path="/auth/")
    assert borrowed is not None
    client = app.test_client()
    client.set_cookie(auth.KNOWN_DEVICE_COOKIE, borrowed.value, path="/auth/")
    assert _try(client, "officer", PASSWORD, OWNER) == 429
    data, signature = borrowed.value.rsplit(".", 1)  # the users list edited: signature broken
    tampered = URLSafeTimedSerializer(app.secret_key, salt="x").dumps(payload).split(".")[0]
    client.set_cookie(auth.KNOWN_DEVICE_COOKIE, f"{tampered}.{data.split('.')[-1]}.{signature}")
    assert _try(client, "officer", PASSWORD, OWNER) == 429


def test_one_address_trying_many_names_is_limited(client: FlaskClient) -> None:
    for index in range(accounts.MAX_FAILURES_PER_ADDRESS):
        assert _try(client, f"guess-{index}", "wrong password!", "203.0.113.9") == 200
    assert _try(client, "officer", PASSWORD, "203.0.113.9") == 429
    assert _try(client, "officer", PASSWORD, "203.0.113.10") == 302


def test_an_ipv6_client_counts_as_its_whole_network(client: FlaskClient) -> None:
    for host in range(accounts.FREE_FAILURES):
        assert _try(client, "officer", "wrong password!", f"2001:db8:7:7::{host + 1}") == 200
    assert _try(client, "officer", PASSWORD, "2001:db8:7:7:ffff::9") == 429  # same /64
    assert _try(client, "officer", PASSWORD, "2001:db8:7:8::1") == 302  # another one


def test_x_forwarded_for_counts_only_from_trusted_proxies(
    service: BroadcastService, users: object
) -> None:
    direct = create_app(service, {"TESTING": True}).test_client()
    for index in range(accounts.FREE_FAILURES + 1):  # a forged header changes nothing
        forwarded = {"X-Forwarded-For": f"192.0.2.{index + 1}"}
        token = csrf_token(direct, "/auth/login")
        status = direct.post(
            "/auth/login",
            data={"username": "officer", "password": "wrong password!", "csrf_token": token},
            headers=forwarded,
            environ_base={"REMOTE_ADDR": STRANGER},
        ).status_code
        assert status == (200 if index < accounts.FREE_FAILURES else 429)

    service.settings.trusted_proxies = 1  # nginx in front, on this machine
    proxied = create_app(service, {"TESTING": True}).test_client()
    for client_address, expected in (("192.0.2.50", 200), ("192.0.2.51", 302)):
        token = csrf_token(proxied, "/auth/login")
        password = PASSWORD if expected == 302 else "wrong password!"
        response = proxied.post(
            "/auth/login",
            data={"username": "viewer", "password": password, "csrf_token": token},
            headers={"X-Forwarded-For": f"10.9.9.9, {client_address}"},  # the proxy appended
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        assert response.status_code == expected
    with service.db.session() as session:
        sources = {
            a.source for a in session.scalars(select(LoginAttempt)) if a.username == "viewer"
        }
        assert sources == {"192.0.2.50", "192.0.2.51"}
        assert audit.recent(session, 1)[0].origin == "web 192.0.2.51"


def test_a_failed_sign_in_keeps_the_user_name_escaped(client: FlaskClient) -> None:
    name = '"><script>alert(1)</script>'
    page = _post_login(client, name, "wrong password!").get_data(as_text=True)
    assert "Sai tên đăng nhập hoặc mật khẩu." in page
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert "<script>alert(1)" not in page
    for _ in range(accounts.FREE_FAILURES):
        response = _post_login(client, "officer", "wrong password!")
    response = _post_login(client, "officer", PASSWORD)
    assert response.status_code == 429
    assert 'value="officer"' in response.get_data(as_text=True)  # the refusal keeps it too
    assert 'value=""' in client.get("/auth/login").get_data(as_text=True)


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
        source = accounts.login_source(session, "x", "192.0.2.1")
        old = utcnow() - accounts.FAILURE_MEMORY - timedelta(minutes=1)
        accounts.record_login(session, "x", source, success=False, now=old)
        accounts.record_login(session, "y", source, success=False)
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
