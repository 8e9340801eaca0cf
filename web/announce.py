"""Urgent announcements (phát thông báo): a form, then live delivery per receiver."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from broadcast import broadcasts, zones
from broadcast.errors import LoaError, NotFound, PermissionDenied, ValidationError
from web import get_service
from web.serialize import broadcast_json
from web.views import user_row

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("announce", __name__, url_prefix="/announce")


@bp.route("/", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    service = get_service()
    form = {"text": "", "zones": [], "priority": "emergency", "repeat": "3"}
    if request.method == "POST":
        form = {
            "text": request.form.get("text", ""),
            "zones": request.form.getlist("zones"),
            "priority": request.form.get("priority", "emergency"),
            "repeat": request.form.get("repeat", "1"),
        }
        try:
            with service.db.session() as session:
                user_id = user_row(session).id
            broadcast_id = service.announce(
                user_id, form["text"], form["zones"], form["priority"], form["repeat"]
            )
        except ValidationError as exc:
            flash(f"Chưa gửi được: {exc.message} ({exc.field})", "error")
        except PermissionDenied:
            abort(403)
        except LoaError as exc:
            flash(f"Chưa gửi được: {exc}", "error")
        else:
            return redirect(url_for("announce.detail", broadcast_id=broadcast_id))
    with service.db.session() as session:
        user = user_row(session)
        reachable = zones.reachable_zones(session, user)
        if not reachable:
            abort(403)
        if not form["zones"] and len(reachable) == 1:
            form["zones"] = [reachable[0].id]
        return render_template("announce/new.html", zones=reachable, form=form)


@bp.route("/<int:broadcast_id>")
@login_required
def detail(broadcast_id: int) -> str:
    with get_service().db.session() as session:
        broadcast = _visible(session, broadcast_id)
        names = {zone.id: zone.name for zone in zones.visible_zones(session, user_row(session))}
        return render_template("announce/detail.html", broadcast=broadcast, zone_names=names)


@bp.route("/<int:broadcast_id>/status.json")
@login_required
def status(broadcast_id: int) -> Response:
    with get_service().db.session() as session:
        return jsonify(broadcast_json(_visible(session, broadcast_id)))


def _visible(session, broadcast_id: int):  # type: ignore[no-untyped-def]
    try:
        broadcast = broadcasts.get_broadcast(session, broadcast_id)
    except NotFound:
        abort(404)
    if not broadcasts.can_view(session, user_row(session), broadcast):
        abort(404)
    return broadcast
