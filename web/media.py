"""Media files by sha256: what receivers download. Content-addressed, so cached for a year."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, send_file
from werkzeug.wrappers import Response

from audio import AudioError
from web import get_service

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("media", __name__)


@bp.route("/media/<sha256>.mp3")
def media(sha256: str) -> Response:
    store = get_service().media
    try:
        path = store.path(sha256)  # on PostgreSQL, fetched into this server's cache first
    except AudioError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(
        path, mimetype="audio/mpeg", conditional=True, etag=sha256, max_age=31536000
    )
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
