"""Dashboard: receivers online/offline/playing, today's programme, recent broadcasts."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import select

from broadcast import broadcasts, zones
from broadcast.models import Schedule, utcnow
from broadcast.scheduling import todays_programme
from web import get_service
from web.views import user_row

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
        today = [
            slot
            for slot in todays_programme(session.scalars(select(Schedule)), utcnow())
            if any(zone_id in visible_ids for zone_id in slot.schedule.zone_ids)
        ]
        return render_template(
            "dashboard/index.html",
            devices=devices,
            online=sum(1 for d in devices if d.online),
            playing=sum(1 for d in devices if d.state == "playing"),
            today=today,
            recent=broadcasts.visible_broadcasts(session, user, 10),
            zone_names={zone.id: zone.name for zone in visible},
        )
