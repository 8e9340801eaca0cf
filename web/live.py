"""What the streaming engine asks the web app: may this listener hear this live mount?

Icecast posts `listener_add` (form fields `action`, `mount` with the listener's query string,
`ip`, …) for every listener of a live mount (`broadcast.fleet.streaming`); it lets the listener
in only if the answer carries `icecast-auth-user: 1`. No session and no CSRF token: the listen
token in the mount's query string is the credential, checked by the live desk.
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from web import get_service

bp = Blueprint("live", __name__)


@bp.post("/live/listeners")
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
