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
    }


def broadcast_json(broadcast: Broadcast) -> dict[str, Any]:
    return {
        "id": broadcast.id,
        "title": broadcast.title,
        "status": broadcast.status,
        "priority": broadcast.priority,
        "repeat": broadcast.repeat,
        "zones": list(broadcast.zone_ids),
        "source": broadcast.source,
        "error": broadcast.error or None,
        "media_sha256": broadcast.media_sha256,
        "created_at": iso_utc(broadcast.created_at),
        "dispatched_at": iso_utc(broadcast.dispatched_at),
        "deliveries": [
            {
                "device": delivery.device_id,
                "state": delivery.state,
                "detail": delivery.detail or None,
                "received_at": iso_utc(delivery.received_at),
                "fetched_at": iso_utc(delivery.fetched_at),
                "started_at": iso_utc(delivery.started_at),
                "finished_at": iso_utc(delivery.finished_at),
            }
            for delivery in broadcast.deliveries
        ],
    }
