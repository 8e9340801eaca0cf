"""The fleet desk: receivers registered by an admin or the CLI, and the public key their config
files carry following a key rotation (what receivers then do is in test_key_rotation.py)."""

from __future__ import annotations

import json

import pytest
from service_support import Users

from broadcast.errors import PermissionDenied
from broadcast.fleet import registry
from broadcast.fleet.brokers import bcrypt_hash, verify_bcrypt
from broadcast.service import BroadcastService
from broadcast.store.models import Device
from wire.config import ReceiverConfig


def test_only_an_admin_or_the_cli_registers_a_receiver(
    service: BroadcastService, users: Users
) -> None:
    desk = service.fleet
    with pytest.raises(PermissionDenied):
        desk.register_device("loa-a-09", "thon-a", user_id=users.officer)
    by_admin = desk.register_device("loa-a-09", "thon-a", user_id=users.admin)
    by_cli = desk.register_device("loa-b-09", "thon-b")
    for path, device in ((by_admin, "loa-a-09"), (by_cli, "loa-b-09")):
        config = json.loads(path.read_text())
        assert config["device_id"] == device
        assert config["server_public_key"] == desk.public_key_text


def test_configs_written_after_a_new_key_carry_it(service: BroadcastService, users: Users) -> None:
    desk = service.fleet
    path = desk.register_device("loa-a-09", "thon-a")
    before = desk.public_key_text
    kept = desk.rotate_keys(new_key=False)
    assert not kept.new_key and kept.public_key == before == desk.public_key_text
    rotated = desk.rotate_keys()
    assert rotated.new_key and rotated.epoch > kept.epoch
    assert rotated.public_key == desk.public_key_text != before
    [refreshed] = desk.refresh_device_configs(["loa-a-09"])
    assert refreshed.path == path and not refreshed.new_password
    assert json.loads(path.read_text())["server_public_key"] == rotated.public_key


def test_receivers_get_secret_client_ids_and_refresh_gives_old_ones_theirs(
    service: BroadcastService, users: Users
) -> None:
    """A registered receiver's config names `<device id>-<128-bit token>`, the broker's access
    list lets that login (only) use it; a receiver registered before tokens (none stored, none
    in its config) gets one at `loa device refresh`, and a refresh keeps a token it has."""
    desk = service.fleet
    path = desk.register_device("loa-a-09", "thon-a")
    desk.register_device("loa-b-09", "thon-b")
    client_id = ReceiverConfig.load(path).mqtt.client_id
    token = client_id.removeprefix("loa-a-09-")
    assert client_id.startswith("loa-a-09-") and len(token) == 32 and int(token, 16) >= 0
    with service.db.session() as session:
        access = registry.broker_access(session, "server-pw")
        assert access.client_id_refusal("loa-a-09", client_id) is None
        assert access.client_id_refusal("loa-b-09", client_id) is not None
        session.get(Device, "loa-a-09").mqtt_client_token = ""  # as migration 0008 leaves it
    old = json.loads(path.read_text())
    del old["mqtt"]["client_id"]
    path.write_text(json.dumps(old))
    assert ReceiverConfig.load(path).mqtt.client_id_of("loa-a-09") == "loa-a-09"
    [refreshed] = desk.refresh_device_configs(["loa-a-09"])
    assert not refreshed.new_password
    renewed = ReceiverConfig.load(path).mqtt
    assert renewed.client_id.startswith("loa-a-09-") and renewed.client_id != client_id
    assert renewed.password == old["mqtt"]["password"]
    desk.refresh_device_configs(["loa-a-09"])
    assert ReceiverConfig.load(path).mqtt.client_id == renewed.client_id


def test_receivers_get_a_bcrypt_hash_for_nats_and_refresh_gives_old_ones_theirs(
    service: BroadcastService, users: Users
) -> None:
    """Registering keeps a bcrypt hash of the receiver's password beside its `$7$` one (what
    nats-server verifies); a receiver registered before (migration 0012 leaves it none) is
    named by `devices_needing_refresh`, and a refresh makes its hash from the password it keeps."""
    desk = service.fleet
    path = desk.register_device("loa-a-09", "thon-a")
    password = ReceiverConfig.load(path).mqtt.password
    with service.db.session() as session:
        device = session.get(Device, "loa-a-09")
        assert verify_bcrypt(password, device.mqtt_password_bcrypt)
        access = registry.broker_access(session, "server-pw", bcrypt_hash("server-pw"))
        assert access.user("loa-a-09").bcrypt_hash == device.mqtt_password_bcrypt
        assert verify_bcrypt("server-pw", access.user("loa-server").bcrypt_hash)
        assert registry.devices_needing_refresh(session) == []
        device.mqtt_password_bcrypt = ""
    with service.db.session() as session:
        assert registry.devices_needing_refresh(session) == ["loa-a-09"]
    [refreshed] = desk.refresh_device_configs(["loa-a-09"])
    assert not refreshed.new_password
    assert ReceiverConfig.load(path).mqtt.password == password
    with service.db.session() as session:
        assert verify_bcrypt(password, session.get(Device, "loa-a-09").mqtt_password_bcrypt)
        assert registry.devices_needing_refresh(session) == []
    made = registry.server_bcrypt(service.secrets)
    assert verify_bcrypt(service.secrets.mqtt_password, made)
    assert registry.server_bcrypt(service.secrets) == made  # kept in secrets.json
