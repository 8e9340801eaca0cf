"""Zones, reach of each role, accounts and tokens."""

from __future__ import annotations

import pytest
from service_support import PASSWORD, Users

from broadcast.errors import PermissionDenied, ValidationError
from broadcast.fleet import registry
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.store.models import User
from wire.config import ReceiverConfig


def test_village_head_reaches_only_own_village(service: BroadcastService, users: Users) -> None:
    with service.db.session() as session:
        head = session.get(User, users.head_1)
        assert [z.id for z in zones.reachable_zones(session, head)] == ["thon-a"]
        with pytest.raises(PermissionDenied):
            zones.check_can_target(session, head, zones.resolve_zones(session, ["thon-b"]))
        with pytest.raises(PermissionDenied):
            zones.check_can_target(session, head, zones.resolve_zones(session, ["xa-test"]))
        officer = session.get(User, users.officer)
        zones.check_can_target(session, officer, zones.resolve_zones(session, ["xa-test"]))


def test_unknown_zone_is_named(service: BroadcastService, users: Users) -> None:
    with service.db.session() as session, pytest.raises(ValidationError) as info:
        zones.resolve_zones(session, ["thon-a", "thon-z"])
    assert info.value.field == "zones"
    assert "thon-z" in info.value.message


def test_password_and_token(service: BroadcastService, users: Users) -> None:
    with service.db.session() as session:
        assert accounts.authenticate(session, "officer", PASSWORD) is not None
        assert accounts.authenticate(session, "officer", PASSWORD + "x") is None
        assert accounts.authenticate(session, "nobody", PASSWORD) is None
        officer = accounts.get_user(session, "officer")
        token = accounts.create_token(session, officer)
        assert token not in officer.password_hash
    with service.db.session() as session:
        assert accounts.user_for_token(session, token).username == "officer"
        assert accounts.user_for_token(session, token + "x") is None


def test_short_password_rejected(service: BroadcastService, users: Users) -> None:
    with service.db.session() as session, pytest.raises(ValidationError) as info:
        accounts.create_user(session, "x", "short", accounts.Role.OFFICER)
    assert info.value.field == "password"


def test_register_device_writes_config_and_acl(service: BroadcastService, users: Users) -> None:
    with service.db.session() as session:
        _device, path = registry.register_device(
            session, service.settings, service.fleet.public_key_text, "loa-a-01", "thon-a"
        )
        access = registry.broker_access(session, service.secrets.mqtt_password)
    config = ReceiverConfig.load(path)
    assert config.zones == ["thon-a", "xa-test"]
    assert config.server_public_key == service.fleet.public_key_text
    assert path.stat().st_mode & 0o077 == 0
    user = access.user("loa-a-01")
    assert user is not None
    assert user.may_subscribe("loa/v1/zone/thon-a/cmd")
    assert not user.may_subscribe("loa/v1/zone/thon-b/cmd")
    assert not user.may_publish("loa/v1/zone/thon-a/cmd")
    with service.db.session() as session, pytest.raises(ValidationError):
        registry.register_device(
            session, service.settings, service.fleet.public_key_text, "loa-a-01", "thon-a"
        )
