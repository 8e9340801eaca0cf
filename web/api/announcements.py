"""Urgent announcements (phát thông báo) over the API: send, read, stop or correct."""

from __future__ import annotations

import logging

from flask import jsonify, request
from werkzeug.wrappers import Response

from broadcast import broadcasts
from broadcast.errors import NotFound, ValidationError
from web import get_service
from web.api import api_user, bp, current_user_id, json_body, token_required
from web.serialize import broadcast_json

_LOGGER = logging.getLogger(__name__)


@bp.post("/announcements")
@token_required
def create_announcement() -> tuple[Response, int]:
    data = json_body('{"text": "…", "zones": ["thon-1"], "priority": "emergency", "repeat": 3}')
    service = get_service()
    broadcast_id = service.announce(
        current_user_id(),
        data.get("text"),
        data.get("zones"),
        data.get("priority", "emergency"),
        data.get("repeat", 1),
        title=str(data.get("title", "")),
        device_ids=data.get("devices"),
    )
    with service.db.session() as session:
        body = broadcast_json(broadcasts.get_broadcast(session, broadcast_id))
    response = jsonify(body)
    response.headers["Location"] = f"/api/v1/announcements/{broadcast_id}"
    return response, 201


@bp.get("/announcements/<int:broadcast_id>")
@token_required
def get_announcement(broadcast_id: int) -> Response:
    with get_service().db.session() as session:
        broadcast = broadcasts.get_broadcast(session, broadcast_id)
        if not broadcasts.can_view(session, api_user(session), broadcast):
            raise NotFound(f"broadcast {broadcast_id}")
        return jsonify(broadcast_json(broadcast))


@bp.post("/announcements/<int:broadcast_id>/cancel")
@token_required
def cancel_announcement(broadcast_id: int) -> Response:
    """Dừng / đính chính: `{"correction": "…"}` (optional) is announced as an emergency."""
    data = request.get_json(silent=True)
    if data is None and request.get_data():
        raise ValidationError("body", 'send a JSON object, e.g. {"correction": "…"}')
    if data is not None and not isinstance(data, dict):
        raise ValidationError("body", 'send a JSON object, e.g. {"correction": "…"}')
    service = get_service()
    result = service.cancel_broadcast(
        current_user_id(), broadcast_id, (data or {}).get("correction")
    )
    with service.db.session() as session:
        body = {
            "cancelled": broadcast_json(broadcasts.get_broadcast(session, result.cancelled_id)),
            "correction": (
                broadcast_json(broadcasts.get_broadcast(session, result.correction_id))
                if result.correction_id is not None
                else None
            ),
        }
    return jsonify(body)


@bp.get("/announcements")
@token_required
def list_announcements() -> Response:
    """The newest broadcasts the caller may see (`?limit=`, at most 200)."""
    try:
        limit = min(200, max(1, int(request.args.get("limit", "50"))))
    except ValueError:
        raise ValidationError("limit", "must be a whole number from 1 to 200") from None
    with get_service().db.session() as session:
        rows = broadcasts.visible_broadcasts(session, api_user(session), limit)
        return jsonify([broadcast_json(row) for row in rows])
