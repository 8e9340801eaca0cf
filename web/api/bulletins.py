"""Bulletins and their approval over the API, the way a provincial source-information system
pushes content down: create (optionally as a broadcast script and submitted at once), a leader
approves or rejects with a comment, then it is scheduled (`/schedules`) or sent now (`/send`).
"""

from __future__ import annotations

import logging

from flask import jsonify, request
from werkzeug.wrappers import Response

from broadcast.desks.bulletins import BulletinDesk
from web import get_service, inputs
from web.api import bp, current_user_id, json_body, token_required
from web.serialize import broadcast_json, bulletin_json

_LOGGER = logging.getLogger(__name__)


def _desk() -> BulletinDesk:
    return get_service().bulletins


def _one(bulletin_id: int, status: int = 200) -> tuple[Response, int]:
    shown = _desk().view(current_user_id(), bulletin_id)
    response = jsonify(bulletin_json(shown.bulletin, history=shown.history))
    if status == 201:
        response.headers["Location"] = f"/api/v1/bulletins/{bulletin_id}"
    return response, status


@bp.get("/bulletins")
@token_required
def list_bulletins() -> Response:
    """The newest bulletins (`?status=submitted` for what waits for approval)."""
    rows = _desk().bulletins(current_user_id(), request.args.get("status", ""))
    return jsonify([bulletin_json(row) for row in rows])


@bp.post("/bulletins")
@token_required
def create_bulletin() -> tuple[Response, int]:
    data = json_body(
        '{"title": "…", "text": "…", "make_script": true, "submit": true, "internal": false}',
        ("title", "text", "make_script", "submit", "internal"),
    )
    desk, user_id = _desk(), current_user_id()
    text = data.get("text")
    internal = inputs.flag(data, "internal")
    if inputs.flag(data, "make_script"):
        text = desk.prepare_script(user_id, text).text
    bulletin_id = desk.create_bulletin(
        user_id, inputs.text(data, "title"), text, "api", internal=internal
    )
    if inputs.flag(data, "submit"):
        desk.submit(user_id, bulletin_id)
    return _one(bulletin_id, 201)


@bp.get("/bulletins/<int:bulletin_id>")
@token_required
def get_bulletin(bulletin_id: int) -> tuple[Response, int]:
    return _one(bulletin_id)


@bp.patch("/bulletins/<int:bulletin_id>")
@token_required
def edit_bulletin(bulletin_id: int) -> tuple[Response, int]:
    data = json_body('{"title": "…", "text": "…"}', ("title", "text"))
    _desk().edit(current_user_id(), bulletin_id, inputs.text(data, "title"), data.get("text"))
    return _one(bulletin_id)


@bp.post("/bulletins/<int:bulletin_id>/submit")
@token_required
def submit_bulletin(bulletin_id: int) -> tuple[Response, int]:
    _desk().submit(current_user_id(), bulletin_id)
    return _one(bulletin_id)


@bp.post("/bulletins/<int:bulletin_id>/approve")
@token_required
def approve_bulletin(bulletin_id: int) -> tuple[Response, int]:
    data = json_body('{"comment": "…"}', ("comment",), optional=True)
    _desk().approve(current_user_id(), bulletin_id, inputs.text(data, "comment"))
    return _one(bulletin_id)


@bp.post("/bulletins/<int:bulletin_id>/reject")
@token_required
def reject_bulletin(bulletin_id: int) -> tuple[Response, int]:
    data = json_body('{"comment": "why it goes back"}', ("comment",))
    _desk().reject(current_user_id(), bulletin_id, data.get("comment"))
    return _one(bulletin_id)


@bp.post("/bulletins/<int:bulletin_id>/send")
@token_required
def send_bulletin(bulletin_id: int) -> tuple[Response, int]:
    """Phát ngay: an approved bulletin to zones and/or devices now."""
    data = json_body(
        '{"zones": ["thon-1"], "priority": "normal", "repeat": 1}',
        ("zones", "devices", "priority", "repeat"),
    )
    desk, user_id = _desk(), current_user_id()
    broadcast_id = desk.broadcast_bulletin(
        user_id,
        bulletin_id,
        data.get("zones"),
        data.get("priority", "normal"),
        inputs.integer(data, "repeat", 1),
        data.get("devices"),
    )
    response = jsonify(broadcast_json(desk.sent(user_id, broadcast_id)))
    response.headers["Location"] = f"/api/v1/announcements/{broadcast_id}"
    return response, 201
