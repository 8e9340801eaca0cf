"""Administration: admins only, every change audited in its own transaction, passwords shown
once and never logged, receiver configs audited when read, their QR code a compact form that
reads back to the same config."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import segno
from service_support import PASSWORD, Users
from sqlalchemy import select

from broadcast.desks.administration import MAX_QR_VERSION, compact_config, qr_svg
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.people import accounts, audit
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Device, User, Zone
from wire.config import ReceiverConfig


def _entries(service: BroadcastService) -> list[AuditEntry]:
    with service.db.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _last(service: BroadcastService) -> AuditEntry:
    return _entries(service)[-1]


def _can_log_in(service: BroadcastService, username: str, password: str) -> bool:
    with service.db.session() as session:
        return accounts.authenticate(session, username, password) is not None


def _register(service: BroadcastService, users: Users, device_id: str = "loa-a-09") -> None:
    service.admin.register_device(users.admin, device_id, "thon-a", "Cụm loa chợ")


ACTIONS: dict[str, Callable[[BroadcastService, int, Users], Any]] = {
    "list_users": lambda s, u, users: s.admin.list_users(u),
    "create_user": lambda s, u, users: s.admin.create_user(u, "newbie", "viewer"),
    "set_active": lambda s, u, users: s.admin.set_active(u, users.viewer, False),
    "reset_password": lambda s, u, users: s.admin.reset_password(u, users.viewer),
    "change_role": lambda s, u, users: s.admin.change_role(u, users.viewer, "admin"),
    "list_zones": lambda s, u, users: s.admin.list_zones(u),
    "zone_form": lambda s, u, users: s.admin.zone_form(u),
    "user_zone_choices": lambda s, u, users: s.admin.user_zone_choices(u),
    "create_zone": lambda s, u, users: s.admin.create_zone(u, "village", "Thôn C", "xa-test"),
    "edit_zone": lambda s, u, users: s.admin.edit_zone(u, "thon-a", "Thôn Mới"),
    "device_page": lambda s, u, users: s.admin.device_page(u),
    "get_device": lambda s, u, users: s.admin.get_device(u, "loa-a-09"),
    "register_device": lambda s, u, users: s.admin.register_device(u, "loa-x", "thon-a"),
    "register_via_service": lambda s, u, users: s.fleet.register_device(
        "loa-y", "thon-a", user_id=u
    ),
    "device_config": lambda s, u, users: s.admin.device_config(u, "loa-a-09"),
    "device_config_qr": lambda s, u, users: s.admin.device_config_qr(u, "loa-a-09"),
    "audit_page": lambda s, u, users: s.admin.audit_page(u),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_only_admins(service: BroadcastService, users: Users, action: str) -> None:
    _register(service, users)
    before = len(_entries(service))
    for role in ("officer", "leader", "head_1", "viewer"):
        with pytest.raises(PermissionDenied):
            ACTIONS[action](service, getattr(users, role), users)
    assert len(_entries(service)) == before  # nothing happened, nothing logged
    with service.db.session() as session:
        assert session.get(User, users.viewer).active
        assert session.get(Zone, "thon-a").name == "Thôn A"
        assert session.get(Device, "loa-x") is None


def test_disabled_admin_is_refused(service: BroadcastService, users: Users) -> None:
    second = service.admin.create_user(users.admin, "admin2", "admin").user_id
    service.admin.set_active(users.admin, second, False)
    with pytest.raises(PermissionDenied):
        service.admin.list_users(second)


# --- users --------------------------------------------------------------------------------


def test_create_user_with_a_generated_password(service: BroadcastService, users: Users) -> None:
    created = service.admin.create_user(
        users.admin, " thu-ha ", "village_head", zone_id="thon-b", full_name="Nguyễn Thu Hà"
    )
    assert created.username == "thu-ha" and created.password
    assert len(created.password) >= accounts.MIN_PASSWORD_LENGTH
    assert _can_log_in(service, "thu-ha", created.password)
    row = next(u for u in service.admin.list_users(users.admin) if u.username == "thu-ha")
    assert (row.role, row.zone_id, row.zone_name, row.full_name) == (
        "village_head",
        "thon-b",
        "Thôn B",
        "Nguyễn Thu Hà",
    )
    entry = _last(service)
    assert (entry.action, entry.username, entry.target) == (
        audit.Action.USER_CREATE.value,
        "admin",
        f"user:{created.user_id}",
    )
    assert entry.detail == {
        "username": "thu-ha",
        "role": "village_head",
        "zone": "thon-b",
        "password": "generated",
    }
    assert all(created.password not in json.dumps(e.detail) for e in _entries(service))


def test_create_user_with_a_typed_password(service: BroadcastService, users: Users) -> None:
    created = service.admin.create_user(users.admin, "lan", "officer", password="mật khẩu dài")
    assert created.password is None  # nothing to show: the admin knows it
    assert _can_log_in(service, "lan", "mật khẩu dài")
    assert _last(service).detail["password"] == "typed"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"username": "", "role": "viewer"}, "username"),
        ({"username": "has space", "role": "viewer"}, "username"),
        ({"username": "officer", "role": "viewer"}, "username"),
        ({"username": "x", "role": "king"}, "role"),
        ({"username": "x", "role": "village_head"}, "zone"),
        ({"username": "x", "role": "village_head", "zone_id": "xa-test"}, "zone"),
        ({"username": "x", "role": "viewer", "password": "short"}, "password"),
    ],
)
def test_create_user_mistakes(
    service: BroadcastService, users: Users, args: dict[str, str], field: str
) -> None:
    before = len(_entries(service))
    with pytest.raises(ValidationError) as info:
        service.admin.create_user(users.admin, **args)
    assert info.value.field == field
    assert info.value.message and info.value.message.isascii() is False  # Vietnamese
    assert len(_entries(service)) == before


def test_disable_and_enable(service: BroadcastService, users: Users) -> None:
    service.admin.set_active(users.admin, users.officer, False)
    assert not _can_log_in(service, "officer", PASSWORD)
    entry = _last(service)
    assert (entry.action, entry.target, entry.detail) == (
        audit.Action.USER_UPDATE.value,
        f"user:{users.officer}",
        {"username": "officer", "active": False},
    )
    service.admin.set_active(users.admin, users.officer, True)
    assert _can_log_in(service, "officer", PASSWORD)
    assert _last(service).detail["active"] is True
    count = len(_entries(service))
    service.admin.set_active(users.admin, users.officer, True)  # no change, no entry
    assert len(_entries(service)) == count


def test_admin_cannot_lock_or_demote_themself(service: BroadcastService, users: Users) -> None:
    with pytest.raises(ValidationError) as info:
        service.admin.set_active(users.admin, users.admin, False)
    assert info.value.field == "user"
    with pytest.raises(ValidationError):
        service.admin.change_role(users.admin, users.admin, "viewer")
    with pytest.raises(NotFound):
        service.admin.set_active(users.admin, 9999, False)


def test_reset_password(service: BroadcastService, users: Users) -> None:
    result = service.admin.reset_password(users.admin, users.leader)
    assert result.username == "leader" and result.password
    assert _can_log_in(service, "leader", result.password)
    assert not _can_log_in(service, "leader", PASSWORD)
    entry = _last(service)
    assert (entry.action, entry.target, entry.username) == (
        audit.Action.USER_PASSWORD.value,
        f"user:{users.leader}",
        "admin",
    )
    assert result.password not in json.dumps(entry.detail)


def test_change_role(service: BroadcastService, users: Users) -> None:
    service.admin.change_role(users.admin, users.officer, "village_head", "thon-b")
    entry = _last(service)
    assert entry.action == audit.Action.USER_UPDATE.value
    assert entry.detail == {
        "username": "officer",
        "role": "village_head",
        "zone": "thon-b",
        "previous_role": "officer",
        "previous_zone": None,
    }
    with pytest.raises(ValidationError) as info:  # a village only for heads
        service.admin.change_role(users.admin, users.officer, "leader", "thon-b")
    assert info.value.field == "zone"
    service.admin.change_role(users.admin, users.officer, "leader", "")
    with service.db.session() as session:
        officer = session.get(User, users.officer)
        assert (officer.role, officer.zone_id) == ("leader", None)
    with pytest.raises(ValidationError) as info:
        service.admin.change_role(users.admin, users.officer, "village_head")
    assert info.value.field == "zone"


# --- zones --------------------------------------------------------------------------------


def test_create_and_edit_a_village(service: BroadcastService, users: Users) -> None:
    row = service.admin.create_zone(users.admin, "village", "  Thôn   C ", "xa-test", "", "thon-c")
    assert (row.id, row.name, row.kind, row.parent_id) == ("thon-c", "Thôn C", "village", "xa-test")
    entry = _last(service)
    assert (entry.action, entry.target, entry.detail) == (
        audit.Action.ZONE_CREATE.value,
        "zone:thon-c",
        {"name": "Thôn C", "kind": "village", "parent": "xa-test", "code": None},
    )
    service.admin.edit_zone(users.admin, "thon-c", "Thôn Cầu")
    entry = _last(service)
    assert (entry.action, entry.detail) == (
        audit.Action.ZONE_UPDATE.value,
        {"name": "Thôn Cầu", "previous_name": "Thôn C"},
    )
    zones = {zone.id: zone for zone in service.admin.list_zones(users.admin)}
    assert zones["thon-c"].name == "Thôn Cầu" and zones["thon-c"].parent_name == "Xã Thử"
    assert list(zones) == ["xa-test", "thon-a", "thon-b", "thon-c"]
    assert [zone.depth for zone in zones.values()] == [0, 1, 1, 1]


def test_create_every_level_with_codes(service: BroadcastService, users: Users) -> None:
    province = service.admin.create_zone(users.admin, "province", "Tỉnh Mới", code="98")
    assert (province.kind, province.code, province.parent_id) == ("province", "98", None)
    commune = service.admin.create_zone(users.admin, "xã", "Xã Mới", province.id, "98001")
    assert (commune.kind, commune.code, commune.parent_name) == ("commune", "98001", "Tỉnh Mới")
    village = service.admin.create_zone(users.admin, "village", "Thôn 1", commune.id)
    assert village.id == f"{commune.id}-thon-1"  # made from the name, under its commune's id
    service.admin.edit_zone(users.admin, commune.id, "Xã Mới", "98002")
    assert _last(service).detail == {"zone_code": "98002", "previous_code": "98001"}
    with pytest.raises(ValidationError) as info:
        service.admin.edit_zone(users.admin, commune.id, "Xã Mới", "123")
    assert info.value.field == "code"
    with pytest.raises(ValidationError) as info:
        service.admin.edit_zone(users.admin, "xa-test", "Xã Thử", "98002")  # taken
    assert info.value.field == "code"
    rows = {row.id: row for row in service.admin.list_zones(users.admin)}
    assert (rows[village.id].depth, rows[commune.id].code) == (2, "98002")


@pytest.mark.parametrize(
    ("kind", "zone_id", "name", "parent", "code", "field"),
    [
        ("village", "Thôn C", "Thôn C", "xa-test", "", "id"),
        ("village", "thon-a", "Thôn A2", "xa-test", "", "id"),
        ("village", "thon-c", "   ", "xa-test", "", "name"),
        ("village", "thon-c", "Thôn A", "xa-test", "", "name"),
        ("village", "thon-c", "Thôn C", "thon-a", "", "parent"),
        ("village", "thon-c", "Thôn C", "xa-khac", "", "parent"),
        ("village", "thon-c", "Thôn C", "", "", "parent"),
        ("village", "thon-c", "Thôn C", "xa-test", "12345", "code"),
        ("commune", "xa-c", "Xã C", "", "1", "code"),
        ("castle", "x", "X", "", "", "kind"),
    ],
)
def test_zone_mistakes(
    service: BroadcastService,
    users: Users,
    kind: str,
    zone_id: str,
    name: str,
    parent: str,
    code: str,
    field: str,
) -> None:
    before = len(_entries(service))
    with pytest.raises(ValidationError) as info:
        service.admin.create_zone(users.admin, kind, name, parent, code, zone_id)
    assert info.value.field == field
    assert len(_entries(service)) == before


def test_edit_unknown_zone(service: BroadcastService, users: Users) -> None:
    with pytest.raises(NotFound):
        service.admin.edit_zone(users.admin, "thon-z", "Thôn Z")
    with pytest.raises(ValidationError):
        service.admin.edit_zone(users.admin, "thon-a", "")


# --- devices ------------------------------------------------------------------------------


def test_register_device_is_audited_as_the_admin(service: BroadcastService, users: Users) -> None:
    _register(service, users)
    entry = _last(service)
    assert (entry.action, entry.username, entry.target, entry.detail) == (
        audit.Action.DEVICE_REGISTER.value,
        "admin",
        "device:loa-a-09",
        {"zone": "thon-a"},
    )
    row = service.admin.get_device(users.admin, "loa-a-09")
    assert (row.name, row.zone_name, row.online, row.has_config) == (
        "Cụm loa chợ",
        "Thôn A",
        False,
        True,
    )


@pytest.mark.parametrize(
    ("device_id", "zone_id", "field"),
    [("Loa 1", "thon-a", "id"), ("loa-a-09", "thon-a", "id"), ("loa-z", "thon-z", "zone")],
)
def test_register_device_mistakes(
    service: BroadcastService, users: Users, device_id: str, zone_id: str, field: str
) -> None:
    _register(service, users)
    with pytest.raises(ValidationError) as info:
        service.admin.register_device(users.admin, device_id, zone_id)
    assert info.value.field == field


def test_reading_the_config_is_audited(service: BroadcastService, users: Users) -> None:
    _register(service, users)
    data = service.admin.device_config(users.admin, "loa-a-09")
    config = ReceiverConfig.from_dict(json.loads(data))
    assert config.device_id == "loa-a-09" and config.mqtt.password
    entry = _last(service)
    assert (entry.action, entry.username, entry.target, entry.detail) == (
        audit.Action.DEVICE_CONFIG.value,
        "admin",
        "device:loa-a-09",
        {"form": "file"},
    )
    assert config.mqtt.password not in json.dumps([e.detail for e in _entries(service)])
    with pytest.raises(NotFound):
        service.admin.device_config(users.admin, "loa-nope")
    (service.settings.devices_dir / "loa-a-09.json").unlink()
    with pytest.raises(NotFound):
        service.admin.device_config(users.admin, "loa-a-09")


def test_qr_code_holds_the_compact_config(service: BroadcastService, users: Users) -> None:
    _register(service, users)
    data = (service.settings.devices_dir / "loa-a-09.json").read_bytes()
    code = service.admin.device_config_qr(users.admin, "loa-a-09")
    full = ReceiverConfig.from_dict(json.loads(data))
    assert ReceiverConfig.from_dict(json.loads(code.payload)) == full
    assert len(code.payload) < len(data) / 2
    assert code.version <= MAX_QR_VERSION
    expected = segno.make(code.payload, error="m", micro=False, boost_error=False)
    assert code.version == expected.version
    assert code.svg == qr_svg(code.payload).svg
    assert code.svg.startswith(b"<?xml") and b'class="segno"' in code.svg
    entry = _last(service)
    assert entry.action == audit.Action.DEVICE_CONFIG.value
    assert entry.detail == {"form": "qr", "version": code.version}


def test_compact_config_keeps_every_setting_that_differs(
    service: BroadcastService, users: Users
) -> None:
    _register(service, users)
    data = json.loads((service.settings.devices_dir / "loa-a-09.json").read_bytes())
    data["heartbeat_s"] = 10.0
    data["player"] = {"kind": "command", "dir": "", "argv": ["aplay", "{file}"]}
    data["amplifier"]["pin"] = 17
    payload = json.loads(compact_config(json.dumps(data).encode()))
    assert payload["heartbeat_s"] == 10.0
    assert payload["amplifier"] == {"pin": 17}
    assert "mixer" not in payload and "cache_limit_mb" not in payload
    assert ReceiverConfig.from_dict(payload) == ReceiverConfig.from_dict(data)
    with pytest.raises(ValidationError):
        compact_config(b"{not json")


def test_too_big_for_a_qr_code() -> None:
    with pytest.raises(ValidationError) as info:
        qr_svg("x" * 3000)
    assert info.value.field == "config"
