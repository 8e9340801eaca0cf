"""Urgent announcements (phát thông báo): a form, live delivery per receiver, and the
"Dừng / Đính chính" action that stops a broadcast everywhere and can play a correction."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from broadcast import broadcasts, zones
from broadcast.const import BroadcastStatus
from broadcast.errors import LoaError, NotFound, PermissionDenied, ValidationError
from broadcast.models import Broadcast
from web import get_service
from web.serialize import broadcast_json
from web.views import user_row

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("announce", __name__, url_prefix="/announce")
CANCELLABLE = {
    BroadcastStatus.PENDING.value,
    BroadcastStatus.SCHEDULED.value,
    BroadcastStatus.DISPATCHED.value,
    BroadcastStatus.FINISHED.value,
    BroadcastStatus.PARTIAL.value,
    BroadcastStatus.MISSED.value,
}


@bp.route("/", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    service = get_service()
    form = {"text": "", "zones": [], "devices": [], "priority": "emergency", "repeat": "3"}
    if request.method == "POST":
        form = {
            "text": request.form.get("text", ""),
            "zones": request.form.getlist("zones"),
            "devices": request.form.getlist("devices"),
            "priority": request.form.get("priority", "emergency"),
            "repeat": request.form.get("repeat", "1"),
        }
        try:
            with service.db.session() as session:
                user_id = user_row(session).id
            broadcast_id = service.announce(
                user_id,
                form["text"],
                form["zones"],
                form["priority"],
                form["repeat"],
                device_ids=form["devices"],
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
        if not form["zones"] and not form["devices"] and len(reachable) == 1:
            form["zones"] = [reachable[0].id]
        return render_template(
            "announce/new.html",
            zones=reachable,
            devices=zones.target_devices(reachable),
            form=form,
        )


@bp.route("/<int:broadcast_id>")
@login_required
def detail(broadcast_id: int) -> str:
    service = get_service()
    with service.db.session() as session:
        broadcast = _visible(session, broadcast_id)
        user = user_row(session)
        names = {zone.id: zone.name for zone in zones.visible_zones(session, user)}
        corrected = session.get(Broadcast, broadcast.corrects_id) if broadcast.corrects_id else None
        return render_template(
            "announce/detail.html",
            broadcast=broadcast,
            zone_names=names,
            corrections=broadcasts.corrections_of(session, broadcast_id),
            corrected=corrected,
            can_cancel=service.can_announce(user) and broadcast.status in CANCELLABLE,
        )


@bp.route("/<int:broadcast_id>/cancel", methods=["POST"])
@login_required
def cancel(broadcast_id: int) -> Response:
    service = get_service()
    with service.db.session() as session:
        user_id = user_row(session).id
    try:
        result = service.cancel_broadcast(user_id, broadcast_id, request.form.get("correction", ""))
    except PermissionDenied:
        abort(403)
    except NotFound:
        abort(404)
    except ValidationError as exc:
        flash(f"Chưa dừng được: {exc.message} ({exc.field})", "error")
    except LoaError as exc:
        flash(f"Chưa dừng được: {exc}", "error")
    else:
        if result.correction_id is not None:
            flash("Đã dừng lượt phát và đang phát lời đính chính.", "info")
            return redirect(url_for("announce.detail", broadcast_id=result.correction_id))
        flash("Đã dừng lượt phát trên mọi cụm loa.", "info")
    return redirect(url_for("announce.detail", broadcast_id=broadcast_id))


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
