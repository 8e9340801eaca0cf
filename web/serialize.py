"""JSON shapes of the API (also used by the pages' live views)."""

from __future__ import annotations

from typing import Any

from broadcast.clock import iso_utc
from broadcast.models import Broadcast, Device, Zone


def zone_json(zone: Zone) -> dict[str, Any]:
    return {
        "id": zone.id,
        "name": zone.name,
        "kind": zone.kind,
        "parent": zone.parent_id,
        "devices": [device.id for device in zone.devices],
    }


def device_json(device: Device) -> dict[str, Any]:
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


def broadcast_json(broadcast: Broadcast) -> dict[str, Any]:
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
            for delivery in broadcast.deliveries
        ],
    }
