"""Dashboard: receivers (state, cache, clock), today's programme, recent broadcasts."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from web import get_service, labels
from web.views import HealthWords, device_health

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("dashboard", __name__)


@bp.route("/")
@login_required
def index() -> str:
    """What the user may see (`service.overview`: a province lists only the receivers needing
    attention, with counts per zone)."""
    shown = get_service().overview.dashboard(current_user.id)
    words = HealthWords.current()
    return render_template(
        "dashboard/index.html",
        total=shown.total,
        listed=shown.listed,
        large=shown.large,
        zone_summaries=shown.zone_summaries,
        health={device.id: device_health(device, words) for device in shown.listed},
        online=shown.online,
        playing=shown.playing,
        today=shown.today,
        recent=shown.recent,
        zone_names=shown.zone_names,
        # translated once, not once per receiver row (a province has a thousand)
        state_names={state: str(label) for state, label in labels.STATES.items()},
    )
