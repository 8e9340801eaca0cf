"""JSON API `/api/v1` with bearer tokens (`loa token create USERNAME`).

Authorization is the service's: the same rules as the pages. Errors are JSON bodies naming the
field at fault, never an HTML page or a traceback. One blueprint; its routes live in a module per
concern (imported at the bottom), and `web.api.openapi` describes every one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, g, jsonify, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from broadcast.errors import (
    N_,
    Conflict,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    ValidationError,
)
from web import get_service, inputs
from web.i18n import error_text
from web.serialize import device_json, zone_json

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
    return error(400, error_text(exc), exc.field)


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict) -> tuple[Response, int]:
    """Well-formed, but the state refuses it (already approved, already stopped, a clash)."""
    return error(409, error_text(exc), exc.field)


@bp.errorhandler(PermissionDenied)
def _denied(exc: PermissionDenied) -> tuple[Response, int]:
    return error(403, error_text(exc))


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[Response, int]:
    """A coded NotFound says what was not found in a sentence; an older one only names it."""
    if exc.code:
        return error(404, error_text(exc))
    return error(404, _("không tìm thấy: %(what)s", what=error_text(exc)))


@bp.errorhandler(ServiceUnavailable)
def _unavailable(exc: ServiceUnavailable) -> tuple[Response, int]:
    return error(503, error_text(exc))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> Response:
    return http_error(exc)


def http_error(exc: HTTPException) -> Response:
    """Werkzeug's error as our JSON, keeping its headers (a 405's `Allow`)."""
    response, status = error(exc.code or 500, exc.description or exc.name)
    response.status_code = status
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def token_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _space, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error(401, _("gửi kèm 'Authorization: Bearer <token>' (xem `loa token create`)"))
        user = get_service().sign_in.token_user(token.strip())
        if user is None:
            return error(401, _("token không có hoặc đã bị thu hồi"))
        g.api_user_id = user.id
        g.api_user_locale = user.locale  # the API's language when the request names none
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def json_body(example: str, accepted: Iterable[str], *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object with only `accepted` fields, or a ValidationError that shows
    what to send (`web.inputs`: the one reader of every JSON body)."""
    return inputs.json_object(example, accepted, optional=optional)


def current_user_id() -> int:
    return int(g.api_user_id)


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/zones")
@token_required
def list_zones() -> Response:
    return jsonify([zone_json(zone) for zone in get_service().overview.zones(current_user_id())])


DEVICES_PER_PAGE = 100  # a commune's receivers fit in one page; a province's take several


@bp.get("/devices")
@token_required
def list_devices() -> Response:
    """Receivers the caller may see, a page at a time (`?page=&per_page=`, filters `?zone=`
    with its sub-zones and `?online=true|false`). The body stays a list; `X-Total-Count` says
    how many match and `Link: <…>; rel="next"` where the next page is."""
    page = page_number("page", 1, 1_000_000)
    per_page = page_number("per_page", DEVICES_PER_PAGE, 1000)
    online = _flag("online")
    found, total = get_service().overview.receivers(
        current_user_id(),
        zone_id=request.args.get("zone", "").strip() or None,  # empty: no filter, as in reports
        online=online,
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    response = jsonify([device_json(device) for device in found])
    response.headers["X-Total-Count"] = str(total)
    if page * per_page < total:
        next_page = url_for(
            "api.list_devices", **{**request.args.to_dict(), "page": page + 1, "per_page": per_page}
        )
        response.headers["Link"] = f'<{next_page}>; rel="next"'
    return response


def page_number(name: str, default: int, highest: int) -> int:
    """A whole number from 1 to `highest` in the query string (ASCII digits: `int` would take
    "²" and "٣" only to fail), or a ValidationError naming it."""
    raw = request.args.get(name, str(default))
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not 1 <= int(raw) <= highest:
        raise ValidationError(
            name, N_("một số nguyên từ 1 đến %(max)s"), "out_of_range", max=highest
        )
    return int(raw)


def _flag(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise ValidationError(name, N_("true hoặc false"), "not_a_flag")
    return raw.lower() == "true"


from web.api import (  # noqa: E402
    announcements,
    bulletins,
    inbound,
    live,
    openapi,
    province,
    province_bulletins,
    replay,
    reports,
    schedules,
)

__all__ = [
    "announcements",
    "bp",
    "bulletins",
    "inbound",
    "live",
    "openapi",
    "province",
    "province_bulletins",
    "replay",
    "reports",
    "schedules",
]
