"""The Flask app over a service whose MQTT messages are recorded, with tokens for each role.

The test client checks every `/api/v1` response against the OpenAPI document
(`openapi_check.CheckedClient`)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_check import CheckedClient
from service_support import PASSWORD, RecordingDispatcher, Users, seed_commune

from broadcast.const import Role
from broadcast.fleet import registry
from broadcast.people import accounts
from broadcast.service import BroadcastService
from web import create_app


@pytest.fixture
def users(service: BroadcastService) -> Users:
    seeded = seed_commune(service)
    with service.db.session() as session:
        for device_id, zone in (("loa-a-01", "thon-a"), ("loa-b-01", "thon-b")):
            registry.register_device(
                session, service.settings, service.fleet.public_key_text, device_id, zone
            )
    return seeded


@pytest.fixture
def sent(service: BroadcastService) -> RecordingDispatcher:
    """What the service published (signed and numbered as on the wire)."""
    recorder = RecordingDispatcher(service)
    service.dispatcher = recorder
    return recorder


@pytest.fixture
def app(service: BroadcastService, users: Users, sent: RecordingDispatcher) -> Flask:
    app = create_app(service, {"TESTING": True})
    app.test_client_class = CheckedClient
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tokens(service: BroadcastService, users: Users) -> dict[str, str]:
    with service.db.session() as session:
        source = accounts.create_user(session, "nguon", PASSWORD, Role.SOURCE)
        return {
            **{
                name: accounts.create_token(session, accounts.get_user(session, name))
                for name in ("admin", "officer", "head-a", "viewer", "leader")
            },
            "source": accounts.create_token(session, source),  # an HTTT nguồn: the API only
        }
