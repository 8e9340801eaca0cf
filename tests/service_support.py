"""Helpers for tests that need a broadcast service: a test commune and users of every role."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from broadcast.const import Role, ZoneKind
from broadcast.fleet import registry
from broadcast.people import accounts, zones
from broadcast.programme.jobs import RUN_PREFIX, Scheduler
from broadcast.sending import broadcasts
from broadcast.sending.dispatcher import Dispatcher
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.locks import process_lock
from broadcast.store.models import Bulletin, Device, Schedule, User, Zone
from wire import protocol

PASSWORD = "correct horse battery"
T = TypeVar("T")


@dataclass
class Users:
    admin: int
    officer: int
    head_1: int
    viewer: int
    leader: int


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
                ("leader", Role.LEADER, None),
            )
        ]
    return Users(*ids)


@dataclass(frozen=True)
class Province:
    """A province with two communes (`seed_two_communes`): zone and receiver ids, and the user id
    of each account, bound where its name says; `root_admin` is installation-wide."""

    province: str
    commune_a: str
    commune_b: str
    village_a: str
    village_a2: str
    village_b: str
    device_a: str
    device_b: str
    root_admin: int
    province_admin: int
    province_editor: int
    admin_a: int
    admin_b: int
    officer_a: int
    officer_b: int
    head_a: int
    head_b: int


def seed_two_communes(service: BroadcastService) -> Province:
    """Tỉnh Thử (code 99) → Xã An (99001: Thôn An 1, Thôn An 2) and Xã Bình (99002: Thôn
    Bình 1), a receiver in Thôn An 1 and one in Thôn Bình 1, and accounts at every level; the
    ids avoid `seed_commune`'s, so both can share one database. Users' names: root-admin,
    tinh-admin, tinh-editor, an-admin, binh-admin, an-officer, binh-officer, an-head,
    binh-head (password PASSWORD)."""
    with service.db.session() as session:
        zones.create_zone(session, "tinh-thu", "Tỉnh Thử", ZoneKind.PROVINCE, code="99")
        zones.create_zone(session, "xa-an", "Xã An", ZoneKind.COMMUNE, "tinh-thu", "99001")
        zones.create_zone(session, "xa-binh", "Xã Bình", ZoneKind.COMMUNE, "tinh-thu", "99002")
        zones.create_zone(session, "thon-an-1", "Thôn An 1", ZoneKind.VILLAGE, "xa-an")
        zones.create_zone(session, "thon-an-2", "Thôn An 2", ZoneKind.VILLAGE, "xa-an")
        zones.create_zone(session, "thon-binh-1", "Thôn Bình 1", ZoneKind.VILLAGE, "xa-binh")
        ids = {
            name: accounts.create_user(session, name, PASSWORD, role, zone).id
            for name, role, zone in (
                ("root-admin", Role.ADMIN, None),
                ("tinh-admin", Role.ADMIN, "tinh-thu"),
                ("tinh-editor", Role.PROVINCE_EDITOR, "tinh-thu"),
                ("an-admin", Role.ADMIN, "xa-an"),
                ("binh-admin", Role.ADMIN, "xa-binh"),
                ("an-officer", Role.OFFICER, "xa-an"),
                ("binh-officer", Role.OFFICER, "xa-binh"),
                ("an-head", Role.VILLAGE_HEAD, "thon-an-1"),
                ("binh-head", Role.VILLAGE_HEAD, "thon-binh-1"),
            )
        }
        for device_id, zone_id in (("loa-an-1-01", "thon-an-1"), ("loa-binh-1-01", "thon-binh-1")):
            registry.register_device(
                session, service.settings, service.fleet.public_key_text, device_id, zone_id
            )
    return Province(
        "tinh-thu", "xa-an", "xa-binh", "thon-an-1", "thon-an-2", "thon-binh-1",
        "loa-an-1-01", "loa-binh-1-01", *ids.values(),
    )  # fmt: skip


# how `seed_every_role` names an account: "<where>-<what>", e.g. binh-leader, an-2-head, root-source
_PLACE_NAMES = {
    None: "root",
    "tinh-thu": "tinh",
    "xa-an": "an",
    "xa-binh": "binh",
    "thon-an-1": "an",
    "thon-an-2": "an-2",
    "thon-binh-1": "binh",
}
_ROLE_NAMES = {Role.PROVINCE_EDITOR: "editor", Role.VILLAGE_HEAD: "head"}


def seed_every_role(service: BroadcastService) -> tuple[Province, dict[str, int]]:
    """`seed_two_communes`, then an account of every role at every level of the tree it may be
    bound to (`permissions.ZONE_KINDS`, as `accounts.check_role_zone` allows once a province
    exists): user name → id of all of them, each named where-role ("root-source", "an-2-head",
    "binh-viewer"; "root" is no zone), so a new role or binding gets its accounts by itself."""
    from sqlalchemy import select

    from broadcast.errors import ValidationError
    from broadcast.people import permissions
    from broadcast.store.models import User

    province = seed_two_communes(service)
    with service.db.session() as session:
        ids = {user.username: user.id for user in session.scalars(select(User))}
        by_kind: dict[ZoneKind | None, list[str | None]] = {None: [None]}
        for zone_id in _PLACE_NAMES:
            if zone_id is not None:
                by_kind.setdefault(ZoneKind(zones.get_zone(session, zone_id).kind), []).append(
                    zone_id
                )
        for role in Role:
            for kind in permissions.zone_kinds(role):
                for zone_id in by_kind.get(kind, []):
                    zone = None if zone_id is None else zones.get_zone(session, zone_id)
                    try:
                        accounts.check_role_zone(session, role, zone)
                    except ValidationError:
                        continue  # e.g. a commune's staff bound to no zone once a province exists
                    name = f"{_PLACE_NAMES[zone_id]}-{_ROLE_NAMES.get(role, role.value)}"
                    if name not in ids:
                        ids[name] = accounts.create_user(session, name, PASSWORD, role, zone_id).id
    return province, ids


def waiting_runs(scheduler: Scheduler) -> set[int]:
    """The broadcast ids the scheduler will fire: its run jobs, read from APScheduler."""
    return {
        int(job.id.removeprefix(RUN_PREFIX))
        for job in scheduler._scheduler.get_jobs()
        if job.id.startswith(RUN_PREFIX) and job.next_run_time is not None
    }


def make_service(
    data_dir: Path, mqtt_port: int = 1, connect_mqtt: bool = False
) -> BroadcastService:
    settings = Settings(data_dir=data_dir, mqtt_port=mqtt_port, port=8099)
    return BroadcastService(settings, connect_mqtt=connect_mqtt)


@dataclass(frozen=True)
class Sent:
    """One message the service published, verified as a receiver would verify it."""

    topic: str
    retain: bool
    command: protocol.Command


class Acknowledged:
    """A publish the (absent) broker acknowledged at once."""

    def is_published(self) -> bool:
        return True

    def wait_for_publish(self, timeout: float | None = None) -> None:
        """Nothing to wait for."""


class RecordingDispatcher(Dispatcher):
    """The real dispatcher (sequence numbers, publish lock, signing) minus the broker: every
    message is verified with the server's public key and kept in `sent`."""

    def __init__(self, service: BroadcastService) -> None:
        super().__init__(
            "recording",
            0,
            "loa-server",
            "unused",
            service.signing_key,
            next_seq=service._next_seq,
            publish_lock=process_lock(
                service.db.engine, "publish", service.settings.publish_lock_path
            ),
            on_status=service._on_status,
            on_event=service._on_event,
            epoch=service._epoch,
            numbers=service._numbers,
        )
        self._public_key = service.signing_key.public_key()
        self.sent: list[Sent] = []

    def start(self, timeout_s: float = 10.0) -> None:
        """Nothing to connect to: connected at once."""
        self._connected.set()

    def listen(self) -> None:
        """Answer-back is injected by the tests."""

    def stop(self) -> None:
        """Nothing to disconnect."""

    def _publish_payload(self, topic: str, payload: bytes, retain: bool) -> Acknowledged:
        self.sent.append(Sent(topic, retain, protocol.verify_command(payload, self._public_key)))
        return Acknowledged()

    def on(self, topic: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.topic == topic]

    def manifests(self, device_id: str) -> list[protocol.ManifestBody]:
        topic = protocol.device_manifest_topic(device_id)
        return [s.command.body for s in self.on(topic)]  # type: ignore[misc]

    def clear(self) -> None:
        self.sent.clear()


def recording_service(
    data_dir: Path, **settings: object
) -> tuple[BroadcastService, RecordingDispatcher]:
    """A service whose MQTT messages are recorded instead of published (not started)."""
    service = BroadcastService(
        Settings(data_dir=data_dir, mqtt_port=1, port=8099, **settings),  # type: ignore[arg-type]
        connect_mqtt=False,
    )
    recorder = RecordingDispatcher(service)
    service.dispatcher = recorder
    return service, recorder


def add_devices(service: BroadcastService, devices: dict[str, str]) -> None:
    """Register receivers: device id → zone id."""
    with service.db.session() as session:
        for device_id, zone_id in devices.items():
            registry.register_device(
                session, service.settings, service.fleet.public_key_text, device_id, zone_id
            )


def wait_for(predicate: Callable[[], T | None], timeout_s: float = 30.0, what: str = "") -> T:
    """Poll until `predicate` returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what or predicate}")
        time.sleep(0.05)


def broadcast_status(service: BroadcastService, broadcast_id: int) -> str:
    with service.db.session() as session:
        return broadcasts.get_broadcast(session, broadcast_id).status


def approved_bulletin(
    service: BroadcastService,
    author: int,
    title: str,
    text: str = "",
    *,
    relay_url: str = "",
    minutes: int = 30,
    reviewer: int | None = None,
) -> int:
    """A bulletin `author` wrote (a relay when `relay_url` is given), submitted and approved by
    `reviewer` (default: the first admin), ready to be scheduled or sent."""
    from sqlalchemy import select

    from broadcast.store.models import User

    desk = service.bulletins
    if relay_url:
        bulletin_id = desk.create_relay_bulletin(author, title, relay_url, minutes)
    else:
        bulletin_id = desk.create_bulletin(author, title, text)
    if not service.settings.require_approval:
        return bulletin_id
    if reviewer is None:
        with service.db.session() as session:
            query = select(User.id).where(User.role == Role.ADMIN.value).order_by(User.id)
            reviewer = session.scalars(query).first()
    assert reviewer is not None, "no admin to approve the bulletin"
    desk.submit(author, bulletin_id)
    desk.approve(reviewer, bulletin_id)
    return bulletin_id


CALENDAR_PROVINCE = "tinh-lich"


def seed_calendar_province(service: BroadcastService) -> dict[str, int]:
    """A province (`CALENDAR_PROVINCE`, no communes yet: `add_calendar_communes`) with a daily
    province-wide schedule at 06:00 local, an installation-wide admin "lich-root" and a
    province editor "lich-editor" (password PASSWORD); user ids by name."""
    with service.db.session() as session:
        zones.create_zone(session, CALENDAR_PROVINCE, "Tỉnh Lịch", ZoneKind.PROVINCE, code="96")
        ids = {
            name: accounts.create_user(session, name, PASSWORD, role, zone).id
            for name, role, zone in (
                ("lich-root", Role.ADMIN, None),
                ("lich-editor", Role.PROVINCE_EDITOR, CALENDAR_PROVINCE),
            )
        }
        _stored_schedule(session, "Tin toàn tỉnh", [CALENDAR_PROVINCE], [], "06:00")
    return ids


def add_calendar_communes(service: BroadcastService, first: int, last: int) -> None:
    """Communes `lich-xa-<n>` (n from `first` to `last`) of `CALENDAR_PROVINCE`, as plain rows:
    two villages each with a receiver, and a week's worth of what a commune plans: a daily
    schedule on the commune (06:00, beside the province's), one on a village (07:00), one naming
    a receiver (18:00), and an officer "lich-officer-<n>"."""
    with service.db.session() as session:
        # one argon2 hash for all (each costs time): lich-root's, whose password is PASSWORD too
        password_hash = session.query(User).filter_by(username="lich-root").one().password_hash
        for n in range(first, last + 1):
            commune = f"lich-xa-{n:03d}"
            session.add(
                Zone(
                    id=commune,
                    name=f"Xã Lịch {n:03d}",
                    kind=ZoneKind.COMMUNE.value,
                    parent_id=CALENDAR_PROVINCE,
                    code=f"96{n:03d}",
                )
            )
            for v in (1, 2):
                session.add(
                    Zone(
                        id=f"{commune}-t{v}",
                        name=f"Thôn {v}",
                        kind=ZoneKind.VILLAGE.value,
                        parent_id=commune,
                    )
                )
            session.flush()
            for v in (1, 2):
                session.add(
                    Device(
                        id=f"loa-{commune}-t{v}",
                        name=f"Loa {v}",
                        zone_id=f"{commune}-t{v}",
                        mqtt_password_hash="-",
                    )
                )
            session.add(
                User(
                    username=f"lich-officer-{n}",
                    password_hash=password_hash,
                    role=Role.OFFICER.value,
                    zone_id=commune,
                )
            )
            session.flush()
            _stored_schedule(session, f"Tin xã {n:03d}", [commune], [], "06:00")
            _stored_schedule(session, f"Tin thôn {n:03d}", [f"{commune}-t1"], [], "07:00")
            _stored_schedule(session, f"Tin loa {n:03d}", [], [f"loa-{commune}-t2"], "18:00")


def _stored_schedule(
    session: object, title: str, zone_ids: list[str], device_ids: list[str], at: str
) -> None:
    """A daily schedule stored as it is (no overlap check), made long ago, with its bulletin."""
    bulletin = Bulletin(title=title, text=title, status="approved")
    session.add(bulletin)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    session.add(  # type: ignore[attr-defined]
        Schedule(
            bulletin_id=bulletin.id,
            kind="daily",
            time_of_day=at,
            zone_ids=zone_ids,
            device_ids=device_ids,
            priority="normal",
            airtime_s=300.0,
            created_at=datetime(2020, 1, 1),
        )
    )
