"""Helpers for tests that need a broadcast service: a test commune and users of every role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broadcast import accounts, zones
from broadcast.const import Role, ZoneKind
from broadcast.service import BroadcastService
from broadcast.settings import Settings

PASSWORD = "correct horse battery"


@dataclass
class Users:
    admin: int
    officer: int
    head_1: int
    viewer: int


def seed_commune(service: BroadcastService) -> Users:
    with service.db.session() as session:
        zones.create_zone(session, "xa-test", "Xã Thử", ZoneKind.COMMUNE)
        zones.create_zone(session, "thon-a", "Thôn A", ZoneKind.VILLAGE, "xa-test")
        zones.create_zone(session, "thon-b", "Thôn B", ZoneKind.VILLAGE, "xa-test")
        ids = [
            accounts.create_user(session, name, PASSWORD, role, zone).id
            for name, role, zone in (
                ("admin", Role.ADMIN, None),
                ("officer", Role.OFFICER, None),
                ("head-a", Role.VILLAGE_HEAD, "thon-a"),
                ("viewer", Role.VIEWER, None),
            )
        ]
    return Users(*ids)


def make_service(
    data_dir: Path, mqtt_port: int = 1, connect_mqtt: bool = False
) -> BroadcastService:
    settings = Settings(data_dir=data_dir, mqtt_port=mqtt_port, port=8099)
    return BroadcastService(settings, connect_mqtt=connect_mqtt)
