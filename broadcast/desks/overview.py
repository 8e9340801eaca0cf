"""The overview desk (`service.overview`): what the dashboard shows and the zones and receivers
the API lists, each as its reader may see them: the subtree of their zone (an installation-wide
account: everything), and what sounds there from above.

Above `FULL_LIST_UP_TO` receivers (a district, a province) the dashboard lists receivers per
zone and only the ones that need attention: a thousand rows are unreadable and slow on a phone.
The counts come from SQL (`broadcast.fleet.receivers`), so the page costs the same at any scale;
where the reader sees more than one commune they are summed per commune (a province's hundred
rows, not its five hundred villages), else per village.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from broadcast.const import ZoneKind
from broadcast.desks.records import BroadcastRecord, DeviceRecord, ZoneRecord
from broadcast.errors import N_, ValidationError
from broadcast.fleet import receivers
from broadcast.fleet.receivers import ZoneCounts
from broadcast.people import accounts, zones
from broadcast.people.permissions import Action
from broadcast.programme import planning
from broadcast.sending import broadcasts
from broadcast.store.db import Database
from broadcast.store.models import Device, Zone, utcnow

_LOGGER = logging.getLogger(__name__)

FULL_LIST_UP_TO = 60
ATTENTION_ROWS = 100
RECENT_BROADCASTS = 10


@dataclass(frozen=True)
class ProgrammeRow:
    """One run of today's programme: when (UTC, naive), what, where, and its log row's status
    once it is planned."""

    at: datetime
    done: bool
    schedule_id: int
    title: str
    priority: str
    zone_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    broadcast_id: int | None
    broadcast_status: str | None


@dataclass(frozen=True)
class Dashboard:
    total: int  # receivers the user may see
    online: int
    playing: int
    large: bool  # more than FULL_LIST_UP_TO: counts per zone, and only those needing attention
    zone_summaries: list[ZoneCounts]  # per zone when `large`, else empty
    listed: list[DeviceRecord]  # every receiver, or those needing attention when `large`
    today: list[ProgrammeRow]  # what plays on this user's loudspeakers today
    recent: list[BroadcastRecord]  # the newest broadcasts they may see, without deliveries
    zone_names: dict[str, str]  # "Thôn 1 (Xã A)" by zone id


class Overview:
    def __init__(self, db: Database) -> None:
        self.db = db

    def dashboard(self, user_id: int, now: datetime | None = None) -> Dashboard:
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.VIEW)
            visible = zones.visible_zones(session, user)
            zone_ids = zones.subtree_ids(session, visible)
            counts = receivers.counts_by_zone(session, zone_ids)
            total = sum(zone.total for zone in counts)
            large = total > FULL_LIST_UP_TO
            listed = (
                receivers.needing_attention(session, zone_ids, ATTENTION_ROWS)
                if large
                else zones.target_devices(visible)
            )
            # what plays on this user's loudspeakers, the commune-wide bulletins included
            heard = broadcasts.listening_scope(session, user)
            slots = planning.todays_programme(session, now or utcnow(), heard)
            recent = broadcasts.visible_broadcasts(session, user, RECENT_BROADCASTS, heard)
            return Dashboard(
                total=total,
                online=sum(zone.online for zone in counts),
                playing=sum(zone.playing for zone in counts),
                large=large,
                zone_summaries=_per_commune(counts, visible) if large else [],
                listed=[DeviceRecord.of(device) for device in listed],
                today=[
                    ProgrammeRow(
                        at=slot.at,
                        done=slot.done,
                        schedule_id=slot.schedule.id,
                        title=slot.schedule.bulletin.title,
                        priority=slot.schedule.priority,
                        zone_ids=tuple(slot.schedule.zone_ids),
                        device_ids=tuple(slot.schedule.device_ids or ()),
                        broadcast_id=slot.broadcast.id if slot.broadcast else None,
                        broadcast_status=slot.broadcast.status if slot.broadcast else None,
                    )
                    for slot in slots
                ],
                recent=[BroadcastRecord.of(row, deliveries=()) for row in recent],
                zone_names=zones.names_with_ancestors(visible),
            )

    def zones(self, user_id: int) -> list[ZoneRecord]:
        """The zones the user may see (a village head: their village and below)."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.VIEW)
            visible = zones.visible_zones(session, user)
            devices: dict[str, list[str]] = {zone.id: [] for zone in visible}
            query = select(Device.id, Device.zone_id).order_by(Device.id)  # one query, any size
            if user.zone_id is not None:
                query = query.where(Device.zone_id.in_(zones.subtree_select([user.zone_id])))
            for device_id, zone_id in session.execute(query):
                devices.setdefault(zone_id, []).append(device_id)
            return [ZoneRecord.of(zone, devices[zone.id]) for zone in visible]

    def receivers(
        self,
        user_id: int,
        *,
        zone_id: str | None = None,
        online: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[DeviceRecord], int]:
        """One page of the receivers the user may see, by id, in `zone_id` and its sub-zones
        when given, and how many match in all. A zone they may not see is a ValidationError,
        the same as an unknown one: it does not tell them it exists."""
        with self.db.session() as session:
            user = accounts.require_user(session, user_id, Action.VIEW)
            visible = zones.visible_zones(session, user)
            if zone_id is not None:
                visible = [zone for zone in visible if zone.id == zone_id]
                if not visible:
                    raise ValidationError(
                        "zone",
                        N_("không có khu vực “%(id)s”, hoặc bạn không được xem khu vực đó"),
                        "unknown_zone",
                        id=zone_id,
                    )
            zone_ids = zones.subtree_ids(session, visible)
            found = receivers.list_devices(
                session, zone_ids, offset=offset, limit=limit, online=online
            )
            total = receivers.count_devices(session, zone_ids, online)
            return [DeviceRecord.of(device) for device in found], total


def _per_commune(counts: list[ZoneCounts], visible: list[Zone]) -> list[ZoneCounts]:
    """The receivers' counts per zone summed per commune when `visible` holds more than one
    commune (each zone counts in the commune above it, or itself when it has none); most
    attention first, as `receivers.counts_by_zone`."""
    by_id = {zone.id: zone for zone in visible}
    if sum(zone.kind == ZoneKind.COMMUNE.value for zone in visible) < 2:
        return counts

    def commune_of(zone_id: str) -> str:
        zone = by_id.get(zone_id)
        while zone is not None and zone.kind != ZoneKind.COMMUNE.value:
            zone = by_id.get(zone.parent_id) if zone.parent_id else None
        return zone.id if zone is not None else zone_id

    summed: dict[str, list[int]] = {}
    for row in counts:
        total = summed.setdefault(commune_of(row.zone_id), [0, 0, 0, 0])
        for index, value in enumerate((row.total, row.online, row.playing, row.attention)):
            total[index] += value
    found = [ZoneCounts(zone_id, *values) for zone_id, values in summed.items()]
    return sorted(found, key=lambda row: (-row.attention, row.zone_id))
