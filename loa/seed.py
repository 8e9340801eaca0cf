"""Demo data: xã Hoằng Hợp, its villages, receivers, an admin and a daily bulletin.

Seeding is idempotent: running the demo again keeps what exists and only adds what is missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import select

import tts
from broadcast.const import Role, ScheduleKind, ZoneKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.store.models import Device, Schedule, User, Zone
from wire.config import PlayerSettings
from wire.protocol import Priority

_LOGGER = logging.getLogger(__name__)

COMMUNE = ("xa-hoang-hop", "Xã Hoằng Hợp")
VILLAGES = (("thon-1", "Thôn 1"), ("thon-2", "Thôn 2"), ("thon-3", "Thôn 3"))
DEMO_VILLAGE_COUNT = 2
DAILY_TIMES = ("06:00", "17:00")
SAMPLE_PLAN = "ke-hoach-truyen-thong-chinh-sach-hoang-hop.txt"
SAMPLE_TITLE = "Kế hoạch triển khai Chỉ thị số 07/CT-TTg về truyền thông chính sách"


@dataclass(frozen=True)
class DemoSeed:
    admin_password: str
    api_token: str
    receiver_configs: list[Path]


def sample_plan_text() -> str:
    return resources.files("loa").joinpath("demo_data", SAMPLE_PLAN).read_text("utf-8")


def seed_demo(service: BroadcastService, receivers: int, realtime: bool = True) -> DemoSeed:
    """Create what is missing and give the admin a new password and the receivers new configs."""
    settings = service.settings
    with service.db.session() as session:
        if session.get(Zone, COMMUNE[0]) is None:
            zones.create_zone(session, COMMUNE[0], COMMUNE[1], ZoneKind.COMMUNE)
        for village_id, name in VILLAGES[:DEMO_VILLAGE_COUNT]:
            if session.get(Zone, village_id) is None:
                zones.create_zone(session, village_id, name, ZoneKind.VILLAGE, COMMUNE[0])

        admin = session.scalar(select(User).where(User.username == "admin"))
        password = accounts.generate_password()
        if admin is None:
            admin = accounts.create_user(
                session, "admin", password, Role.ADMIN, full_name="Quản trị"
            )
        else:
            accounts.set_password(admin, password)
        token = accounts.create_token(session, admin)
        admin_id = admin.id

        wanted = demo_device_ids(receivers)
        configs: list[Path] = []
        for device_id, village_id in wanted:
            player = PlayerSettings(
                kind="file",
                dir=str(settings.receivers_dir / device_id / "played"),
                realtime=realtime,
            )
            device = session.get(Device, device_id)
            if device is None:
                _device, path = registry.register_device(
                    session,
                    settings,
                    service.fleet.public_key_text,
                    device_id,
                    village_id,
                    name=f"Cụm loa {device_id.rsplit('-', 1)[-1]}",
                    player=player,
                )
            else:
                path = registry.issue_credentials(
                    session, settings, service.fleet.public_key_text, device, player
                )
            configs.append(path)
        keep = {path.name for path in configs}
        for stale in settings.devices_dir.glob("*.json"):
            if stale.name not in keep:
                stale.unlink()
        has_schedule = session.scalar(select(Schedule.id).limit(1)) is not None

    if not has_schedule:
        script = tts.make_script(sample_plan_text(), commune=COMMUNE[1])
        desk = service.bulletins
        bulletin_id = desk.create_bulletin(admin_id, SAMPLE_TITLE, script.text)
        if service.settings.require_approval:  # the demo's own bulletin, approved by its admin
            desk.submit(admin_id, bulletin_id)
            desk.approve(admin_id, bulletin_id, "Bản tin mẫu của bản trình diễn")
        for time_of_day in DAILY_TIMES:
            service.scheduling.schedule(
                admin_id,
                ScheduleRequest(
                    bulletin_id=bulletin_id,
                    kind=ScheduleKind.DAILY,
                    zone_ids=[COMMUNE[0]],
                    priority=Priority.NORMAL,
                    time_of_day=time_of_day,
                ),
            )
    return DemoSeed(admin_password=password, api_token=token, receiver_configs=configs)


def demo_device_ids(count: int) -> list[tuple[str, str]]:
    """Receivers spread round-robin over the demo villages: loa-thon-1-01, loa-thon-2-01, …"""
    villages = [village_id for village_id, _ in VILLAGES[:DEMO_VILLAGE_COUNT]]
    result = []
    for index in range(count):
        village_id = villages[index % len(villages)]
        number = index // len(villages) + 1
        result.append((f"loa-{village_id}-{number:02d}", village_id))
    return result
