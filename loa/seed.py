"""Demo data: xã Hoằng Hợp, its villages, receivers, an admin and a daily bulletin; or, with
`seed_province_demo`, a small province (`loa demo --province`, and `bench/text_to_sound.py
--communes`).

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
PROVINCE = ("tinh-demo", "Tỉnh Thanh Hóa", "38")  # (id, name, mã đơn vị hành chính)
PROVINCE_COMMUNES = 3
PROVINCE_VILLAGES = 2
PROVINCE_EDITOR = "bientap"


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
        _schedule_sample(service, admin_id, [COMMUNE[0]])
    return DemoSeed(admin_password=password, api_token=token, receiver_configs=configs)


def province_zone_ids(communes: int, villages: int) -> list[tuple[str, list[str]]]:
    """(commune id, its village ids) of the demo province: xa-001 with xa-001-thon-1, …"""
    return [
        (f"xa-{c:03d}", [f"xa-{c:03d}-thon-{v}" for v in range(1, villages + 1)])
        for c in range(1, communes + 1)
    ]


def seed_province_demo(
    service: BroadcastService,
    receivers: int,
    communes: int = PROVINCE_COMMUNES,
    villages: int = PROVINCE_VILLAGES,
    realtime: bool = True,
) -> DemoSeed:
    """A province of `communes` communes of `villages` villages, `receivers` spread round-robin
    over the villages, an installation-wide admin, a province editor bound to the province and
    one officer per commune bound to it (all with the admin's new password), and the sample
    plan daily in every commune. Idempotent as `seed_demo`."""
    settings = service.settings
    tree = province_zone_ids(communes, villages)
    province_id, province_name, province_code = PROVINCE
    with service.db.session() as session:
        if session.get(Zone, province_id) is None:
            zones.create_zone(
                session, province_id, province_name, ZoneKind.PROVINCE, code=province_code
            )
        for number, (commune_id, village_ids) in enumerate(tree, start=1):
            if session.get(Zone, commune_id) is None:
                code = f"{int(province_code) * 1000 + number:05d}"
                zones.create_zone(
                    session, commune_id, f"Xã {number:03d}", ZoneKind.COMMUNE, province_id, code
                )
            for v, village_id in enumerate(village_ids, start=1):
                if session.get(Zone, village_id) is None:
                    zones.create_zone(
                        session, village_id, f"Thôn {v}", ZoneKind.VILLAGE, commune_id
                    )
        password = accounts.generate_password()
        people = [
            ("admin", Role.ADMIN, None, "Quản trị"),
            (PROVINCE_EDITOR, Role.PROVINCE_EDITOR, province_id, "Biên tập viên tỉnh"),
        ]
        people += [(f"canbo-{c}", Role.OFFICER, c, f"Cán bộ {c}") for c, _v in tree]  # fmt: skip
        admin_id, token = 0, ""
        for username, role, zone_id, full_name in people:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                user = accounts.create_user(session, username, password, role, zone_id, full_name)
            else:
                accounts.set_password(user, password)
            if role is Role.ADMIN:
                admin_id, token = user.id, accounts.create_token(session, user)
        all_villages = [village for _c, village_ids in tree for village in village_ids]
        configs: list[Path] = []
        for index in range(receivers):
            village_id = all_villages[index % len(all_villages)]
            device_id = f"loa-{village_id}-{index // len(all_villages) + 1:02d}"
            player = PlayerSettings(
                kind="file",
                dir=str(settings.receivers_dir / device_id / "played"),
                realtime=realtime,
            )
            device = session.get(Device, device_id)
            if device is None:
                _device, path = registry.register_device(
                    session, settings, service.fleet.public_key_text, device_id, village_id,
                    name=f"Cụm loa {device_id[4:]}", player=player,
                )  # fmt: skip
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
        _schedule_sample(service, admin_id, [commune_id for commune_id, _v in tree])
    return DemoSeed(admin_password=password, api_token=token, receiver_configs=configs)


def _schedule_sample(service: BroadcastService, admin_id: int, zone_ids: list[str]) -> None:
    """The sample plan, approved by the admin, daily at DAILY_TIMES in `zone_ids`."""
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
                zone_ids=zone_ids,
                priority=Priority.NORMAL,
                time_of_day=time_of_day,
            ),
        )


def demo_device_ids(count: int) -> list[tuple[str, str]]:
    """Receivers spread round-robin over the demo villages: loa-thon-1-01, loa-thon-2-01, …"""
    villages = [village_id for village_id, _ in VILLAGES[:DEMO_VILLAGE_COUNT]]
    result = []
    for index in range(count):
        village_id = villages[index % len(villages)]
        number = index // len(villages) + 1
        result.append((f"loa-{village_id}-{number:02d}", village_id))
    return result
