"""JSON shapes of the API (also used by the pages' live views).

Each reads the plain records the desks return (`broadcast.desks.records`), never a row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broadcast.clock import iso_utc
from broadcast.desks.announcements import BroadcastSummary, Progress
from broadcast.desks.bulletins import HistoryEntry
from broadcast.desks.records import (
    BroadcastRecord,
    BulletinRecord,
    DeliveryRecord,
    DeviceRecord,
    ScheduleRecord,
    ZoneRecord,
)


def zone_json(zone: ZoneRecord) -> dict[str, Any]:
    return {
        "id": zone.id,
        "name": zone.name,
        "kind": zone.kind,
        "parent": zone.parent_id,
        "code": zone.code,
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


def broadcast_summary_json(summary: BroadcastSummary) -> dict[str, Any]:
    """A broadcast in a list: its deliveries as a count per state; the broadcast itself
    (`broadcast_json`) has one record per receiver."""
    return {
        **_broadcast_fields(summary.broadcast),
        "deliveries_total": sum(summary.counts.values()),
        "delivery_counts": dict(summary.counts),
    }


def broadcast_json(
    broadcast: BroadcastRecord, deliveries: Sequence[DeliveryRecord] | None = None
) -> dict[str, Any]:
    """A broadcast with a record per receiver: those it carries (a `BroadcastRecord`: the ones
    its reader may see), or the `deliveries` given."""
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
        "internal": broadcast.internal,
    }


def schedule_json(schedule: ScheduleRecord) -> dict[str, Any]:
    """A schedule with its rule as stored (run_at in UTC; time_of_day and dates local)."""
    return {
        "id": schedule.id,
        "bulletin": schedule.bulletin_id,
        "title": schedule.title,
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
        "lunar_days": list(schedule.lunar_days),
        "lunar_month": schedule.lunar_month,
        "series_key": schedule.series_key,
        "valid_from": schedule.valid_from.isoformat() if schedule.valid_from else None,
        "valid_to": schedule.valid_to.isoformat() if schedule.valid_to else None,
        "airtime_s": schedule.airtime_s,
        "active": schedule.active,
        "ended_at": iso_utc(schedule.ended_at),
        "replaced_by": schedule.replaced_by_id,
        "created_at": iso_utc(schedule.created_at),
        "next_run": iso_utc(schedule.next_run),
    }


def delivery_progress_json(progress: Progress) -> dict[str, Any]:
    """The live delivery view of a broadcast (its page and its event stream): each receiver
    the reader may see, named with its zone, its state and when it got there; a count per
    state; whether every delivery is final, and whether the broadcast has ended (nothing left
    to stop)."""
    return {
        "id": progress.broadcast_id,
        "status": progress.status,
        "total": len(progress.receivers),
        "counts": dict(progress.counts),
        "final": progress.final,
        "ended": progress.ended,
        "deliveries": [
            {
                "device": receiver.device_id,
                "name": receiver.name,
                "zone": receiver.zone,
                "state": receiver.state,
                "at": iso_utc(receiver.at),
                "detail": receiver.detail,
            }
            for receiver in progress.receivers
        ],
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
        "internal": bulletin.internal,
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
