"""The fleet desk: receivers registered by an admin or the CLI, and the public key their config
files carry following a key rotation (what receivers then do is in test_key_rotation.py)."""

from __future__ import annotations

import json

import pytest
from service_support import Users

from broadcast.errors import PermissionDenied
from broadcast.service import BroadcastService


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
