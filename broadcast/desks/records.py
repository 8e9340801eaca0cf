"""Plain records of the rows the desks hand to the web: frozen copies read inside the desk's
own session, so a page or a JSON body never holds a session, never lazy-loads from a closed one
and cannot change a row by accident. Each has the row's field names, so one serializer reads
either."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from broadcast.const import LIVE_SOURCE
from broadcast.fleet import receivers
from broadcast.sending import broadcasts
from broadcast.store.models import Broadcast, Bulletin, Delivery, Device, Schedule, Zone


@dataclass(frozen=True)
class ZoneRecord:
    id: str
    name: str
    kind: str  # a `const.ZoneKind` value
    parent_id: str | None
    device_ids: tuple[str, ...]  # its own receivers, not those of the zones below
    code: str | None = None  # mã đơn vị hành chính: a province's or a commune's

    @classmethod
    def of(cls, zone: Zone, device_ids: Sequence[str] | None = None) -> ZoneRecord:
        """With `device_ids` (its receivers, read for many zones at once), `zone.devices` is
        not loaded: a query per zone."""
        return cls(
            zone.id,
            zone.name,
            zone.kind,
            zone.parent_id,
            tuple(d.id for d in zone.devices) if device_ids is None else tuple(device_ids),
            zone.code,
        )


@dataclass(frozen=True)
class DeviceRecord:
    """A receiver and how its last heartbeat reads (`receivers.health`, `receivers.zone_check`)."""

    id: str
    name: str
    zone_id: str
    online: bool
    state: str
    last_seen: datetime | None  # UTC, naive
    status_extra: Mapping[str, Any]  # the heartbeat's `extra`, as the receiver sent it
    manifest_published_at: datetime | None
    health: receivers.Health
    zone_check: receivers.ZoneCheck
    manifest_items: float | None  # numbers of `status_extra`, None when absent or not a number
    cpu_temp_c: float | None
    disk_free_mb: float | None

    @classmethod
    def of(cls, device: Device) -> DeviceRecord:
        extra: dict[str, Any] = dict(device.status_extra or {})
        return cls(
            id=device.id,
            name=device.name,
            zone_id=device.zone_id,
            online=device.online,
            state=device.state,
            last_seen=device.last_seen,
            status_extra=extra,
            manifest_published_at=device.manifest_published_at,
            health=receivers.health(extra),
            zone_check=receivers.zone_check(device),
            manifest_items=receivers.number(extra.get("manifest_items")),
            cpu_temp_c=receivers.number(extra.get("cpu_temp_c")),
            disk_free_mb=receivers.number(extra.get("disk_free_mb")),
        )


@dataclass(frozen=True)
class DeliveryRecord:
    device_id: str
    state: str  # a `const.DeliveryState` value
    detail: str
    received_at: datetime | None
    fetched_at: datetime | None
    started_at: datetime | None
    preempted_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryRecord:
        return cls(
            delivery.device_id,
            delivery.state,
            delivery.detail,
            delivery.received_at,
            delivery.fetched_at,
            delivery.started_at,
            delivery.preempted_at,
            delivery.finished_at,
            delivery.updated_at,
        )


@dataclass(frozen=True)
class BroadcastRecord:
    """A row of the broadcast log, with the deliveries its reader may see (or none)."""

    id: int
    title: str
    text: str
    status: str
    priority: str
    repeat: int
    zone_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    source: str
    schedule_id: int | None
    occurrence_at: datetime | None
    item_id: str
    content: str
    relay_url: str | None
    duration_s: float | None
    error: str
    media_sha256: str | None
    created_at: datetime
    dispatched_at: datetime | None
    play_at: datetime | None
    valid_until: datetime | None
    corrects_id: int | None
    cancelled_at: datetime | None
    ended: bool  # nothing of it plays any more (`broadcasts.has_ended`)
    deliveries: tuple[DeliveryRecord, ...] = ()
    internal: bool = False  # nội bộ: kept off the public replay page (its own flag)

    @classmethod
    def of(
        cls, broadcast: Broadcast, deliveries: Iterable[Delivery] | None = None
    ) -> BroadcastRecord:
        """`deliveries`: those to show (all of them when None; pass `()` for none)."""
        shown = broadcast.deliveries if deliveries is None else deliveries
        return cls(
            id=broadcast.id,
            title=broadcast.title,
            text=broadcast.text,
            status=broadcast.status,
            priority=broadcast.priority,
            repeat=broadcast.repeat,
            zone_ids=tuple(broadcast.zone_ids),
            device_ids=tuple(broadcast.device_ids or ()),
            source=broadcast.source,
            schedule_id=broadcast.schedule_id,
            occurrence_at=broadcast.occurrence_at,
            item_id=broadcast.item_id,
            content=broadcast.content,
            # a live broadcast's stream without its listen token: the signed PLAY carries it
            relay_url=(
                broadcast.relay_url.partition("?")[0]
                if broadcast.relay_url and broadcast.source == LIVE_SOURCE
                else broadcast.relay_url
            ),
            duration_s=broadcast.duration_s,
            error=broadcast.error,
            media_sha256=broadcast.media_sha256,
            created_at=broadcast.created_at,
            dispatched_at=broadcast.dispatched_at,
            play_at=broadcast.play_at,
            valid_until=broadcast.valid_until,
            corrects_id=broadcast.corrects_id,
            cancelled_at=broadcast.cancelled_at,
            ended=broadcasts.has_ended(broadcast),
            deliveries=tuple(DeliveryRecord.of(delivery) for delivery in shown),
            internal=broadcast.internal,
        )


@dataclass(frozen=True)
class ScheduleRecord:
    """A schedule with its rule as stored (run_at in UTC; time_of_day and dates local) and its
    bulletin's title."""

    id: int
    bulletin_id: int
    title: str
    kind: str  # a `const.ScheduleKind` value
    zone_ids: tuple[str, ...]
    device_ids: tuple[str, ...]
    priority: str
    repeat: int
    run_at: datetime | None
    time_of_day: str | None
    weekdays: tuple[int, ...]
    cron: str | None
    interval_h: int | None
    series_key: str | None
    valid_from: date | None
    valid_to: date | None
    airtime_s: float | None
    active: bool
    ended_at: datetime | None
    replaced_by_id: int | None
    created_at: datetime
    next_run: datetime | None = None  # read one at a time only; None when it has no more
    lunar_days: tuple[int, ...] = ()  # the lunar kinds: days 1-30 of the lunar month
    lunar_month: int | None = None  # lunar yearly: the month 1-12

    @classmethod
    def of(cls, schedule: Schedule, next_run: datetime | None = None) -> ScheduleRecord:
        return cls(
            id=schedule.id,
            bulletin_id=schedule.bulletin_id,
            title=schedule.bulletin.title,
            kind=schedule.kind,
            zone_ids=tuple(schedule.zone_ids),
            device_ids=tuple(schedule.device_ids or ()),
            priority=schedule.priority,
            repeat=schedule.repeat,
            run_at=schedule.run_at,
            time_of_day=schedule.time_of_day,
            weekdays=tuple(schedule.weekdays or ()),
            cron=schedule.cron,
            interval_h=schedule.interval_h,
            series_key=schedule.series_key,
            valid_from=schedule.valid_from,
            valid_to=schedule.valid_to,
            airtime_s=schedule.airtime_s,
            active=schedule.active,
            ended_at=schedule.ended_at,
            replaced_by_id=schedule.replaced_by_id,
            created_at=schedule.created_at,
            next_run=next_run,
            lunar_days=tuple(schedule.lunar_days or ()),
            lunar_month=schedule.lunar_month,
        )


@dataclass(frozen=True)
class BulletinRecord:
    id: int
    title: str
    kind: str  # a `const.ContentKind` value
    status: str  # a `bulletins.BulletinStatus` value
    text: str
    recording_sha256: str | None
    relay_url: str | None
    duration_s: float | None
    source_name: str
    created_by_id: int | None
    created_by: str | None  # the writer's user name
    created_at: datetime
    updated_at: datetime | None
    submitted_at: datetime | None
    reviewed_by: str | None  # the reviewer's user name
    reviewed_at: datetime | None
    review_comment: str
    internal: bool = False  # nội bộ: its broadcasts stay off the public replay page

    @classmethod
    def of(cls, bulletin: Bulletin) -> BulletinRecord:
        return cls(
            id=bulletin.id,
            title=bulletin.title,
            kind=bulletin.kind,
            status=bulletin.status,
            text=bulletin.text,
            recording_sha256=bulletin.recording_sha256,
            relay_url=bulletin.relay_url,
            duration_s=bulletin.duration_s,
            source_name=bulletin.source_name,
            created_by_id=bulletin.created_by_id,
            created_by=bulletin.created_by.username if bulletin.created_by else None,
            created_at=bulletin.created_at,
            updated_at=bulletin.updated_at,
            submitted_at=bulletin.submitted_at,
            reviewed_by=bulletin.reviewed_by.username if bulletin.reviewed_by else None,
            reviewed_at=bulletin.reviewed_at,
            review_comment=bulletin.review_comment,
            internal=bulletin.internal,
        )
