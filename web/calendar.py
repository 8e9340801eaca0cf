"""The week calendar page (lịch phát theo tuần): `broadcast.desks.calendar` for one zone and week.

`/calendar/?zone=<id>&week=YYYY-MM-DD` (any day of the week; default: the account's own zone,
for an installation-wide account the top of the tree; this week). Who may see which zone is
decided in `broadcast.desks.calendar`.

`/calendar/feed/<user>/<secret>.ics` is the account's zone's programme for a phone calendar
(`web.ical`), the next weeks (`?weeks=`, 1-26, default 8): a link with a secret instead of a
session, since a calendar app subscribes without signing in. The secret is derived from a key
the server holds (`desks.calendar.feed_token`); "Đổi liên kết" (`calendar.renew_feed`) revokes
the old link. A wrong, revoked or deactivated account's link is a 404, as if it did not exist.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from broadcast.desks import calendar
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from web import get_service, ical
from web.i18n import DEFAULT_LOCALE, LOCALES, error_text
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
        feed_weeks=calendar.FEED_WEEKS,
        here=request.full_path.rstrip("?"),
    )


@bp.route("/feed/<int:user_id>/<token>.ics")
def feed(user_id: int, token: str) -> Response:
    weeks = request.args.get("weeks", default=calendar.FEED_WEEKS, type=int)
    try:
        found = get_service().calendar.feed(user_id, token, weeks or calendar.FEED_WEEKS)
    except (NotFound, PermissionDenied):
        abort(404)
    with force_locale(found.locale if found.locale in LOCALES else DEFAULT_LOCALE):
        body = ical.calendar_bytes(found, request.host.split(":")[0] or "loa")
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": 'inline; filename="loa.ics"',
            "Cache-Control": "private, max-age=300",
        },
    )


@bp.route("/feed/renew", methods=["POST"])
@login_required
def renew_feed() -> Response:
    try:
        get_service().calendar.renew_feed(current_user.id)
    except PermissionDenied:
        abort(403)
    flash(_("Đã đổi liên kết lịch: liên kết cũ không dùng được nữa."), "info")
    return redirect(url_for("calendar.week"))
