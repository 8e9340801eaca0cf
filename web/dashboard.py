"""Dashboard: receivers (state, cache, clock), today's programme, recent broadcasts."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template
from flask_login import login_required

from broadcast.fleet import receivers
from broadcast.people import zones
from broadcast.programme import planning
from broadcast.sending import broadcasts
from broadcast.store.models import utcnow
from web import get_service, labels
from web.views import HealthWords, device_health, user_row

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("dashboard", __name__)

# Above this many receivers (a district, a province) the page lists receivers per zone and only
# the ones that need attention: a thousand rows are unreadable and slow on a phone. The counts
# come from SQL (`broadcast.fleet.receivers`), so the page costs the same at any scale.
FULL_LIST_UP_TO = 60
ATTENTION_ROWS = 100


@bp.route("/")
@login_required
def index() -> str:
    service = get_service()
    with service.db.session() as session:
        user = user_row(session)
        visible = zones.visible_zones(session, user)
        zone_ids = zones.subtree_ids(session, visible)
        visible_ids, own_devices = broadcasts.viewing_scope(session, user)
        counts = receivers.counts_by_zone(session, zone_ids)
        total = sum(zone.total for zone in counts)
        large = total > FULL_LIST_UP_TO
        listed = (
            receivers.needing_attention(session, zone_ids, ATTENTION_ROWS)
            if large
            else zones.target_devices(visible)
        )
        words = HealthWords.current()
        # what plays on this user's loudspeakers, the commune-wide bulletins included
        today = planning.todays_programme(
            session, utcnow(), broadcasts.listening_scope(session, user)
        )
        return render_template(
            "dashboard/index.html",
            total=total,
            listed=listed,
            large=large,
            zone_summaries=counts if large else [],
            health={device.id: device_health(device, words) for device in listed},
            online=sum(zone.online for zone in counts),
            playing=sum(zone.playing for zone in counts),
            today=today,
            recent=broadcasts.visible_broadcasts(
                session, user, 10, scope=(visible_ids, own_devices)
            ),
            zone_names=zones.names_with_ancestors(visible),
            # translated once, not once per receiver row (a province has a thousand)
            state_names={state: str(label) for state, label in labels.STATES.items()},
        )
