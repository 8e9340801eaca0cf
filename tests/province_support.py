"""A province built on the test commune (`service_support.seed_commune`) for the province
reports: Tỉnh Thử with three communes (Xã Thử and its two villages, Xã Hai with Thôn C, Xã Ba
with nothing), another province (Tỉnh Khác, Xã Khác) nobody of Tỉnh Thử may see, accounts at
each level, and a hand-counted October 2025 of broadcasts (`seed_october`).

October 2025 in Asia/Ho_Chi_Minh runs from 2025-09-30 17:00 to 2025-10-31 17:00 UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from service_support import PASSWORD, add_devices
from sqlalchemy import select

from broadcast.const import Role, ZoneKind
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.store.models import (
    Broadcast,
    Bulletin,
    Delivery,
    Device,
    DevicePresence,
    Schedule,
    User,
)

PROVINCE_USERS = {  # name: (role, zone)
    "tinh": (Role.PROVINCE_EDITOR, "tinh-test"),
    "admin-tinh": (Role.ADMIN, "tinh-test"),
    "officer-xa": (Role.OFFICER, "xa-test"),
    "viewer-xa": (Role.VIEWER, "xa-test"),
}
RECEIVERS = {
    "loa-a-01": "thon-a",
    "loa-a-02": "thon-a",
    "loa-b-01": "thon-b",
    "loa-c-01": "thon-c",
    "loa-x-01": "xa-khac",
}
YEAR, MONTH = 2025, 10
UNKNOWN_MEDIA = "f" * 64  # a media the store does not hold: its length is unknown


def seed_province(service: BroadcastService) -> dict[str, int]:
    """The zones, the accounts (name → id) and the receivers of `RECEIVERS` not yet
    registered; the test commune must be seeded already."""
    with service.db.session() as session:
        zones.create_zone(session, "tinh-test", "Tỉnh Thử", ZoneKind.PROVINCE, code="99")
        zones.move_zone(
            session, zones.get_zone(session, "xa-test"), zones.get_zone(session, "tinh-test")
        )
        zones.create_zone(session, "xa-hai", "Xã Hai", ZoneKind.COMMUNE, "tinh-test", "99002")
        zones.create_zone(session, "thon-c", "Thôn C", ZoneKind.VILLAGE, "xa-hai")
        zones.create_zone(session, "xa-ba", "Xã Ba", ZoneKind.COMMUNE, "tinh-test")
        zones.create_zone(session, "tinh-khac", "Tỉnh Khác", ZoneKind.PROVINCE, code="98")
        zones.create_zone(session, "xa-khac", "Xã Khác", ZoneKind.COMMUNE, "tinh-khac")
        ids = {
            name: accounts.create_user(session, name, PASSWORD, role, zone).id
            for name, (role, zone) in PROVINCE_USERS.items()
        }
        known = set(session.scalars(select(Device.id)))
        ids.update({user.username: user.id for user in session.scalars(select(User))})
    add_devices(service, {key: zone for key, zone in RECEIVERS.items() if key not in known})
    return ids


def _broadcast(
    session: object,
    key: str,
    at: datetime,
    priority: str,
    zone_ids: list[str],
    deliveries: dict[str, str],
    **fields: object,
) -> None:
    broadcast = Broadcast(
        title=key,
        text=key,
        priority=priority,
        zone_ids=zone_ids,
        source="announcement",
        status=fields.pop("status", "finished"),
        created_at=at,
        **fields,
    )
    session.add(broadcast)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    for device_id, state in deliveries.items():
        session.add(  # type: ignore[attr-defined]
            Delivery(
                broadcast_id=broadcast.id,
                device_id=device_id,
                state=state,
                started_at=at + timedelta(seconds=5) if state == "finished" else None,
                finished_at=at + timedelta(seconds=60) if state == "finished" else None,
            )
        )


def seed_october(service: BroadcastService) -> None:
    """October 2025, counted by hand in tests/broadcast/desks/test_province_reports.py.

    Xã Thử: loa-a-01 online, loa-a-02 online but unhealthy, loa-b-01 offline; Xã Hai:
    loa-c-01 offline. Offline time: loa-a-01 4 h, loa-a-02 none, loa-b-01 the whole month
    (744 h, no change recorded), loa-c-01 24 h, loa-x-01 744 h. p1 (province-wide relay of
    10 min), p2 (Xã Thử, a planned run of 2 min), p3 (Thôn C, stopped), p6 (Thôn C, a media
    of unknown length); p4 is Tỉnh Khác's and p5 September's."""
    with service.db.session() as session:
        for device in session.scalars(select(Device)):
            device.online = device.id in ("loa-a-01", "loa-a-02")
            device.health_ok = device.id != "loa-a-02"
            device.created_at = datetime(2025, 1, 1)
        session.add_all(
            [  # loa-a-01 offline 3 h after the month starts and its last hour: 4 h
                DevicePresence(device_id="loa-a-01", at=datetime(2025, 9, 30, 15), online=False),
                DevicePresence(device_id="loa-a-01", at=datetime(2025, 9, 30, 20), online=True),
                DevicePresence(device_id="loa-a-01", at=datetime(2025, 10, 31, 16), online=False),
                # online until its last day: 24 h
                DevicePresence(device_id="loa-c-01", at=datetime(2025, 10, 30, 17), online=False),
                # its first change after the month: offline all month (744 h)
                DevicePresence(device_id="loa-x-01", at=datetime(2025, 11, 5), online=True),
            ]
        )
        bulletin = Bulletin(title="Bản tin sáng", text="Bản tin sáng")
        session.add(bulletin)
        session.flush()
        schedule = Schedule(
            bulletin_id=bulletin.id,
            kind="daily",
            time_of_day="06:00",
            zone_ids=["xa-test"],
            priority="normal",
            airtime_s=120.0,
        )
        session.add(schedule)
        session.flush()
        relay = {"content": "relay", "relay_url": "https://radio.example.invalid/vov1"}
        _broadcast(
            session,
            "p1",
            datetime(2025, 10, 5, 2),
            "normal",
            ["tinh-test"],
            {
                "loa-a-01": "finished",
                "loa-a-02": "failed",
                "loa-b-01": "stopped",
                "loa-c-01": "finished",
            },
            duration_s=600.0,
            status="partial",
            **relay,
        )
        _broadcast(
            session,
            "p2",
            datetime(2025, 10, 9),
            "emergency",
            ["xa-test"],
            {"loa-a-01": "finished", "loa-b-01": "finished"},
            occurrence_at=datetime(2025, 10, 10, 23),
            schedule_id=schedule.id,
        )
        _broadcast(
            session,
            "p3",
            datetime(2025, 10, 12),
            "priority",
            ["thon-c"],
            {"loa-c-01": "stopped"},
            duration_s=300.0,
            status="cancelled",
            **relay,
        )
        _broadcast(
            session,
            "p4",
            datetime(2025, 10, 13),
            "normal",
            ["xa-khac"],
            {"loa-x-01": "finished"},
            duration_s=60.0,
            **relay,
        )
        _broadcast(  # 23:59 local on 30 September: not October's
            session,
            "p5",
            datetime(2025, 9, 30, 16, 59),
            "normal",
            ["xa-test"],
            {"loa-a-01": "finished"},
            duration_s=999.0,
            **relay,
        )
        _broadcast(
            session,
            "p6",
            datetime(2025, 10, 31, 16, 59),
            "priority",
            ["thon-c"],
            {"loa-c-01": "finished"},
            media_sha256=UNKNOWN_MEDIA,
        )
