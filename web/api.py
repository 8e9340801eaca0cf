"""JSON API `/api/v1` with bearer tokens (`loa token create USERNAME`).

Authorization is the service's: the same rules as the pages. Errors are JSON bodies naming the
field at fault, never an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from broadcast import accounts, broadcasts, zones
from broadcast.errors import NotFound, PermissionDenied, ServiceUnavailable, ValidationError
from broadcast.models import User
from web import get_service
from web.serialize import broadcast_json, device_json, zone_json

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])


def error(status: int, message: str, field: str | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"message": message}
    if field is not None:
        body["field"] = field
    return jsonify({"error": body}), status


@bp.errorhandler(ValidationError)
def _validation(exc: ValidationError) -> tuple[Response, int]:
    return error(400, exc.message, exc.field)


@bp.errorhandler(PermissionDenied)
def _denied(exc: PermissionDenied) -> tuple[Response, int]:
    return error(403, str(exc))


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[Response, int]:
    return error(404, f"not found: {exc}")


@bp.errorhandler(ServiceUnavailable)
def _unavailable(exc: ServiceUnavailable) -> tuple[Response, int]:
    return error(503, str(exc))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> tuple[Response, int]:
    return error(exc.code or 500, exc.description or exc.name)


def token_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error(401, "send 'Authorization: Bearer <token>' (see `loa token create`)")
        with get_service().db.session() as session:
            user = accounts.user_for_token(session, token.strip())
            if user is None:
                return error(401, "unknown or revoked token")
            g.api_user_id = user.id
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _user(session: Any) -> User:
    user = session.get(User, g.api_user_id)
    if user is None:
        raise PermissionDenied("unknown user")
    return user


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/zones")
@token_required
def list_zones() -> Response:
    with get_service().db.session() as session:
        return jsonify([zone_json(zone) for zone in zones.visible_zones(session, _user(session))])


@bp.get("/devices")
@token_required
def list_devices() -> Response:
    with get_service().db.session() as session:
        visible = zones.visible_zones(session, _user(session))
        return jsonify([device_json(device) for device in zones.target_devices(visible)])


@bp.post("/announcements")
@token_required
def create_announcement() -> tuple[Response, int]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError(
            "body", "send a JSON object with text, zones and/or devices, priority, repeat"
        )
    service = get_service()
    broadcast_id = service.announce(
        g.api_user_id,
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
        if not broadcasts.can_view(session, _user(session), broadcast):
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
    result = service.cancel_broadcast(g.api_user_id, broadcast_id, (data or {}).get("correction"))
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
