"""The week calendar page (lịch phát theo tuần): `broadcast.desks.calendar` for one zone and week.

`/calendar/?zone=<id>&week=YYYY-MM-DD` (any day of the week; default: the account's own zone,
for an installation-wide account the top of the tree; this week). Who may see which zone is
decided in `broadcast.desks.calendar`.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from broadcast.desks import calendar
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from web import get_service
from web.i18n import error_text
from web.views import WEEKDAY_LABELS

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("calendar", __name__, url_prefix="/calendar")


@bp.route("/")
@login_required
def week() -> str | Response:
    zone_id = request.args.get("zone", "")
    try:
        chosen = calendar.parse_week(request.args["week"]) if request.args.get("week") else None
    except ValidationError as exc:
        flash(f"{error_text(exc)} ({exc.field})", "error")
        return redirect(url_for("calendar.week", zone=zone_id or None))
    try:
        week_calendar = get_service().calendar.week(current_user.id, zone_id, chosen)
    except PermissionDenied:
        abort(403)
    except NotFound:
        abort(404)
    return render_template(
        "calendar/week.html",
        cal=week_calendar,
        weekday_labels=WEEKDAY_LABELS,
        here=request.full_path.rstrip("?"),
    )
