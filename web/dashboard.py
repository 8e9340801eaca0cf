"""Dashboard: receivers (state, cache, clock), today's programme, recent broadcasts."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template
from flask_login import login_required

from broadcast import broadcasts, planning, zones
from broadcast.models import utcnow
from web import STATE_LABELS, get_service
from web.views import HealthWords, device_health, user_row

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("dashboard", __name__)


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
        return render_template(
            "dashboard/index.html",
            devices=devices,
            health={device.id: device_health(device, words) for device in devices},
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
