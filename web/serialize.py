"""JSON shapes of the API (also used by the pages' live views).

Each reads the plain records the desks return (`broadcast.desks.records`); a row with the same
fields reads the same, for the pages that still read rows themselves (web/announce.py and
web/api/announcements.py, web/api/schedules.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from broadcast.clock import iso_utc
from broadcast.const import ENDED_BROADCAST_STATUSES, FINAL_DELIVERY_STATES
from broadcast.desks.bulletins import HistoryEntry
from broadcast.desks.records import (
    BroadcastRecord,
    BulletinRecord,
    DeliveryRecord,
    DeviceRecord,
    ScheduleRecord,
    ZoneRecord,
)


class ReceiverPlace(Protocol):
    name: str  # the receiver's name (its id if it has none)
    zone: str  # the name of its zone


def zone_json(zone: ZoneRecord) -> dict[str, Any]:
    return {
        "id": zone.id,
        "name": zone.name,
        "kind": zone.kind,
        "parent": zone.parent_id,
        "devices": list(zone.device_ids),
    }


def device_json(device: DeviceRecord) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "zone": device.zone_id,
        "online": device.online,
        "state": device.state,
        "last_seen": iso_utc(device.last_seen),
        "status": dict(device.status_extra or {}),
        "manifest_published_at": iso_utc(device.manifest_published_at),
    }


def broadcast_summary_json(broadcast: BroadcastRecord, counts: Mapping[str, int]) -> dict[str, Any]:
    """A broadcast in a list: its deliveries as a count per state (`broadcasts.delivery_counts`);
    the broadcast itself (`broadcast_json`) has one record per receiver."""
    return {
        **_broadcast_fields(broadcast),
        "deliveries_total": sum(counts.values()),
        "delivery_counts": dict(counts),
    }


def broadcast_json(
    broadcast: BroadcastRecord, deliveries: Sequence[DeliveryRecord] | None = None
) -> dict[str, Any]:
    """A broadcast with a record per receiver: all of them, or the `deliveries` the caller may
    see (`broadcasts.deliveries_in`: a village head's own receivers)."""
    shown = broadcast.deliveries if deliveries is None else deliveries
    return {
        **_broadcast_fields(broadcast),
        "deliveries": [
            {
                "device": delivery.device_id,
                "state": delivery.state,
                "detail": delivery.detail or None,
                "received_at": iso_utc(delivery.received_at),
                "fetched_at": iso_utc(delivery.fetched_at),
                "started_at": iso_utc(delivery.started_at),
                "preempted_at": iso_utc(delivery.preempted_at),
                "finished_at": iso_utc(delivery.finished_at),
            }
            for delivery in shown
        ],
    }


def _broadcast_fields(broadcast: BroadcastRecord) -> dict[str, Any]:
    return {
        "id": broadcast.id,
        "title": broadcast.title,
        "status": broadcast.status,
        "priority": broadcast.priority,
        "repeat": broadcast.repeat,
        "zones": list(broadcast.zone_ids),
        "devices": list(broadcast.device_ids or []),
        "source": broadcast.source,
        "schedule": broadcast.schedule_id,
        "item_id": broadcast.item_id or None,
        "content": broadcast.content,
        "relay_url": broadcast.relay_url,
        "duration_s": broadcast.duration_s,
        "error": broadcast.error or None,
        "media_sha256": broadcast.media_sha256,
        "created_at": iso_utc(broadcast.created_at),
        "dispatched_at": iso_utc(broadcast.dispatched_at),
        "play_at": iso_utc(broadcast.play_at),
        "valid_until": iso_utc(broadcast.valid_until),
        "corrects": broadcast.corrects_id,
        "cancelled_at": iso_utc(broadcast.cancelled_at),
    }


def schedule_json(schedule: ScheduleRecord, next_run: datetime | None = None) -> dict[str, Any]:
    """A schedule with its rule as stored (run_at in UTC; time_of_day and dates local). A row
    (web/api/schedules.py, until the scheduling desk returns records) names its bulletin's
    title through the bulletin."""
    title = schedule.title if isinstance(schedule, ScheduleRecord) else schedule.bulletin.title
    return {
        "id": schedule.id,
        "bulletin": schedule.bulletin_id,
        "title": title,
        "kind": schedule.kind,
        "zones": list(schedule.zone_ids),
        "devices": list(schedule.device_ids or []),
        "priority": schedule.priority,
        "repeat": schedule.repeat,
        "run_at": iso_utc(schedule.run_at),
        "time_of_day": schedule.time_of_day,
        "weekdays": list(schedule.weekdays or []),
        "cron": schedule.cron,
        "interval_h": schedule.interval_h,
        "series_key": schedule.series_key,
        "valid_from": schedule.valid_from.isoformat() if schedule.valid_from else None,
        "valid_to": schedule.valid_to.isoformat() if schedule.valid_to else None,
        "airtime_s": schedule.airtime_s,
        "active": schedule.active and schedule.ended_at is None,
        "ended_at": iso_utc(schedule.ended_at),
        "replaced_by": schedule.replaced_by_id,
        "created_at": iso_utc(schedule.created_at),
        "next_run": iso_utc(next_run),
    }


# the moment a delivery reached its state (a stopped one: when it was closed)
_STATE_STAMP = {
    "received": "received_at",
    "fetched": "fetched_at",
    "playing": "started_at",
    "preempted": "preempted_at",
    "finished": "finished_at",
    "failed": "finished_at",
}


def delivery_progress_json(
    broadcast: BroadcastRecord,
    shown: Sequence[DeliveryRecord],
    places: Mapping[str, ReceiverPlace],
) -> dict[str, Any]:
    """The live delivery view of a broadcast (its page and its event stream): for each of the
    `shown` deliveries (`broadcasts.deliveries_in`) the receiver's name and zone
    (`broadcasts.receiver_places`), state and when it got there; a count per state; whether
    every one is final, and whether the broadcast has ended (nothing left to stop)."""
    deliveries = []
    counts: dict[str, int] = {}
    for delivery in shown:
        stamp = _STATE_STAMP.get(delivery.state)
        at = getattr(delivery, stamp) if stamp else None
        if at is None and delivery.state not in ("queued", "received"):
            at = delivery.updated_at
        counts[delivery.state] = counts.get(delivery.state, 0) + 1
        place = places.get(delivery.device_id)
        deliveries.append(
            {
                "device": delivery.device_id,
                "name": place.name if place else delivery.device_id,
                "zone": place.zone if place else "",
                "state": delivery.state,
                "at": iso_utc(at),
                "detail": delivery.detail or None,
            }
        )
    return {
        "id": broadcast.id,
        "status": broadcast.status,
        "total": len(deliveries),
        "counts": counts,
        "final": all(d["state"] in FINAL_DELIVERY_STATES for d in deliveries),
        "ended": broadcast.status in ENDED_BROADCAST_STATUSES,
        "deliveries": deliveries,
    }


def bulletin_json(
    bulletin: BulletinRecord, history: Sequence[HistoryEntry] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": bulletin.id,
        "title": bulletin.title,
        "kind": bulletin.kind,
        "status": bulletin.status,
        "text": bulletin.text,
        "recording_sha256": bulletin.recording_sha256,
        "relay_url": bulletin.relay_url,
        "duration_s": bulletin.duration_s,
        "source_name": bulletin.source_name or None,
        "created_by": bulletin.created_by,
        "created_at": iso_utc(bulletin.created_at),
        "updated_at": iso_utc(bulletin.updated_at),
        "submitted_at": iso_utc(bulletin.submitted_at),
        "reviewed_by": bulletin.reviewed_by,
        "reviewed_at": iso_utc(bulletin.reviewed_at),
        "review_comment": bulletin.review_comment or None,
    }
    if history is not None:
        body["history"] = [
            {
                "at": iso_utc(entry.at),
                "action": entry.action,
                "user": entry.username,
                "comment": entry.comment or None,
            }
            for entry in history
        ]
    return body
