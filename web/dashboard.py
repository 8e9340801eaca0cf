"""Dashboard: receivers (state, cache, clock), today's programme, recent broadcasts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, render_template
from flask_login import login_required

from broadcast import broadcasts, planning, zones
from broadcast.models import Device, utcnow
from web import STATE_LABELS, get_service
from web.views import DeviceHealth, HealthWords, device_health, user_row

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("dashboard", __name__)

# Above this many receivers (a district, a province) the page lists receivers per zone and only
# the ones that need attention: a thousand rows are unreadable and slow on a phone.
FULL_LIST_UP_TO = 60
ATTENTION_ROWS = 100


@dataclass
class ZoneSummary:
    zone_id: str
    total: int = 0
    online: int = 0
    playing: int = 0
    attention: int = 0


def _needs_attention(device: Device, health: DeviceHealth) -> bool:
    return not device.online or not health.cache_ok or not health.clock_ok


@bp.route("/")
@login_required
def index() -> str:
    service = get_service()
    with service.db.session() as session:
        user = user_row(session)
        visible = zones.visible_zones(session, user)
        visible_ids = {zone.id for zone in visible}
        devices = zones.target_devices(visible)
        words = HealthWords.current()
        device_zones = {device.id: device.zone_id for device in devices}
        today = [
            slot
            for slot in planning.todays_programme(session, utcnow())
            if any(zone_id in visible_ids for zone_id in slot.schedule.zone_ids)
            or any(d in device_zones for d in slot.schedule.device_ids or [])
        ]
        health = {device.id: device_health(device, words) for device in devices}
        large = len(devices) > FULL_LIST_UP_TO
        listed, zone_summaries = devices, []
        if large:
            attention = [d for d in devices if _needs_attention(d, health[d.id])]
            listed = attention[:ATTENTION_ROWS]
            zone_summaries = _by_zone(devices, {d.id for d in attention})
        return render_template(
            "dashboard/index.html",
            devices=devices,
            listed=listed,
            large=large,
            zone_summaries=zone_summaries,
            health=health,
            online=sum(1 for d in devices if d.online),
            playing=sum(1 for d in devices if d.state == "playing"),
            today=today,
            recent=broadcasts.visible_broadcasts(
                session, user, 10, scope=(visible_ids, set(device_zones))
            ),
            zone_names={zone.id: zone.name for zone in visible},
            # translated once, not once per receiver row (a province has a thousand)
            state_names={state: str(label) for state, label in STATE_LABELS.items()},
        )


def _by_zone(devices: list[Device], attention: set[str]) -> list[ZoneSummary]:
    summaries: dict[str, ZoneSummary] = {}
    for device in devices:
        summary = summaries.setdefault(device.zone_id, ZoneSummary(device.zone_id))
        summary.total += 1
        summary.online += int(bool(device.online))
        summary.playing += int(device.state == "playing")
        summary.attention += int(device.id in attention)
    return sorted(summaries.values(), key=lambda summary: (-summary.attention, summary.zone_id))
