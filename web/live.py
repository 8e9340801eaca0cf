"""Live broadcasts (phát trực tiếp) in the browser, and what the streaming engine asks.

The page (`/live/`) picks the zones, the priority and the longest duration; its script asks for
the microphone first, then starts the broadcast (`POST /live/`, JSON back) and sends what the
MediaRecorder captures, a piece every quarter of a second, each to `/live/<id>/piece` with its
offset in the whole feed (a fetch cannot stream a request body over HTTP/1.1); "Kết thúc" posts
`/live/<id>/end`. Without a microphone, MediaRecorder or a streaming engine, the page says so
and offers no button.

Icecast posts `listener_add` (form fields `action`, `mount` with the listener's query string,
`ip`, …) to `/live/listeners` for every listener of a live mount
(`broadcast.fleet.streaming`); it lets the listener in only if the answer carries
`icecast-auth-user: 1`. No session and no CSRF token there: the listen token in the mount's
query string is the credential, checked by the live desk.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from broadcast.desks.live import DEFAULT_MINUTES, MAX_MINUTES
from broadcast.errors import (
    Conflict,
    LoaError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)
from web import get_service
from web.i18n import error_text

bp = Blueprint("live", __name__, url_prefix="/live")

PRIORITIES = ("emergency", "priority")  # as the urgent announcement page offers
PIECE_MAX_BYTES = 256 * 1024  # a quarter second of Opus is a few kilobytes


def _user_id() -> int:
    return int(current_user.id)


@bp.get("/")
@login_required
def new() -> Any:
    service = get_service()
    if not service.announcements.can_announce(_user_id()):
        abort(403)
    reach = service.announcements.reach(_user_id())
    return render_template(
        "live/new.html",
        available=service.live.available,
        zones=reach.zones,
        chosen=[reach.zones[0].id] if len(reach.zones) == 1 else [],
        priorities=PRIORITIES,
        minutes=DEFAULT_MINUTES,
        max_minutes=MAX_MINUTES,
    )


@bp.post("/")
@login_required
def start() -> tuple[Response, int]:
    """Go live; the page's script asked for the microphone first."""
    form = request.form
    live, priority = get_service().live, form.get("priority", "emergency")
    try:
        broadcast_id = live.start(
            _user_id(),
            form.getlist("zones"),
            priority,
            form.get("minutes", DEFAULT_MINUTES),
            internal=form.get("internal", "") in ("1", "on", "true"),
        )
    except LoaError as exc:
        return _refused(exc)
    return jsonify(
        {
            "id": broadcast_id,
            "speak_in_ms": round(live.voice_delay_s(priority) * 1000),
            "piece_url": url_for("live.piece", broadcast_id=broadcast_id),
            "end_url": url_for("live.end", broadcast_id=broadcast_id),
            "page_url": url_for("announce.detail", broadcast_id=broadcast_id),
        }
    ), 201


@bp.post("/<int:broadcast_id>/piece")
@login_required
def piece(broadcast_id: int) -> tuple[Response, int]:
    """One piece of the microphone's recording, at `?offset=` in the whole feed."""
    request.max_content_length = PIECE_MAX_BYTES
    offset = request.args.get("offset", "0")
    if not offset.isdigit() or len(offset) > 12:
        return jsonify({"error": _("Thiếu vị trí của đoạn tiếng.")}), 400
    try:
        size = get_service().live.append(
            _user_id(), broadcast_id, int(offset), request.get_data(cache=False)
        )
    except LoaError as exc:
        return _refused(exc)
    return jsonify({"size": size}), 200


@bp.post("/<int:broadcast_id>/end")
@login_required
def end(broadcast_id: int) -> Response:
    """Kết thúc: the STOP everywhere; the broadcast's page follows its receivers."""
    try:
        get_service().live.end(_user_id(), broadcast_id)
    except PermissionDenied:
        abort(403)
    except NotFound:
        abort(404)
    except Conflict:
        pass  # ended already: its page says so
    except LoaError as exc:  # the broker is away: its page offers "Dừng phát" to try again
        flash(_("Chưa kết thúc được. %(why)s", why=error_text(exc)), "error")
    return redirect(url_for("announce.detail", broadcast_id=broadcast_id))


def _refused(error: LoaError) -> tuple[Response, int]:
    """A refusal as the page's script shows it: its message in the page's language (a
    ValidationError, or any other: 400)."""
    status = 400
    if isinstance(error, PermissionDenied):
        status = 403
    elif isinstance(error, NotFound):
        status = 404
    elif isinstance(error, Conflict):
        status = 409
    elif isinstance(error, ServiceUnavailable):
        status = 503
    return jsonify({"error": error_text(error)}), status


@bp.post("/listeners")
def listeners() -> Response:
    admitted = request.form.get("action") == "listener_add" and get_service().live.admit_listener(
        request.form.get("mount", "")
    )
    response = Response(status=200)
    if admitted:
        response.headers["icecast-auth-user"] = "1"
    else:
        response.headers["icecast-auth-message"] = "not a live listener"
    return response
