"""A province of two communes for the tests of bulletins sent down from the province
(`broadcast.desks.source_bulletins`): its people and one receiver per commune."""

from __future__ import annotations

from dataclasses import dataclass

from service_support import PASSWORD, RecordingDispatcher, add_devices

from broadcast.const import Role, ZoneKind
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService


@dataclass
class SendDownProvince:
    """Tỉnh X, Xã A and Xã B, and their people (`seed_send_down`)."""

    service: BroadcastService
    sent: RecordingDispatcher | None
    admin: int
    editor: int
    officer_a: int
    officer_b: int
    leader_a: int


def seed_send_down(service: BroadcastService) -> SendDownProvince:
    """Tỉnh X with Xã A (Thôn A1) and Xã B (Thôn B1), a receiver in each village."""
    with service.db.session() as session:
        zones.create_zone(session, "tinh-x", "Tỉnh X", ZoneKind.PROVINCE, code="99")
        zones.create_zone(session, "xa-a", "Xã A", ZoneKind.COMMUNE, "tinh-x", "99001")
        zones.create_zone(session, "xa-b", "Xã B", ZoneKind.COMMUNE, "tinh-x", "99002")
        zones.create_zone(session, "thon-a1", "Thôn A1", ZoneKind.VILLAGE, "xa-a")
        zones.create_zone(session, "thon-b1", "Thôn B1", ZoneKind.VILLAGE, "xa-b")
        ids = [
            accounts.create_user(session, name, PASSWORD, role, zone).id
            for name, role, zone in (
                ("admin", Role.ADMIN, None),
                ("editor", Role.PROVINCE_EDITOR, "tinh-x"),
                ("officer-a", Role.OFFICER, "xa-a"),
                ("officer-b", Role.OFFICER, "xa-b"),
                ("leader-a", Role.LEADER, "xa-a"),
            )
        ]
    add_devices(service, {"loa-a1": "thon-a1", "loa-b1": "thon-b1"})
    return SendDownProvince(service, None, *ids)
