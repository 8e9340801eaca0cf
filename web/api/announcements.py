"""Urgent announcements (phát thông báo) over the API: send, read, stop or correct."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from broadcast.errors import N_, PermissionDenied, ValidationError
from web import get_service, inputs
from web.api import bp, current_user_id, json_body, page_number, token_required
from web.serialize import broadcast_json, broadcast_summary_json

_LOGGER = logging.getLogger(__name__)
# an announcement plays at once: a later time is a schedule of a bulletin (/schedules)
ANNOUNCEMENT_FIELDS = ("text", "zones", "devices", "priority", "repeat", "title", "internal")


@bp.post("/announcements")
@token_required
def create_announcement() -> tuple[Response, int]:
    data = json_body(
        '{"text": "…", "zones": ["thon-1"], "priority": "emergency", "repeat": 3}',
        ANNOUNCEMENT_FIELDS,
    )
    broadcast_id = get_service().announcements.announce(
        current_user_id(),
        data.get("text"),
        data.get("zones"),
        data.get("priority", "emergency"),
        inputs.integer(data, "repeat", 1),
        title=inputs.text(data, "title"),
        device_ids=data.get("devices"),
        internal=inputs.flag(data, "internal"),
    )
    return _created(broadcast_id)


@bp.get("/announcements/<int:broadcast_id>")
@token_required
def get_announcement(broadcast_id: int) -> Response:
    # a village head sees their own receivers' records, also of a commune-wide broadcast
    return jsonify(
        broadcast_json(get_service().announcements.broadcast(current_user_id(), broadcast_id))
    )


@bp.post("/announcements/<int:broadcast_id>/cancel")
@token_required
def cancel_announcement(broadcast_id: int) -> Response:
    """Dừng / đính chính: `{"correction": "…"}` (optional) is announced as an emergency."""
    data = json_body('{"correction": "…"}', ("correction",), optional=True)
    desk, user_id = get_service().announcements, current_user_id()
    result = desk.cancel(user_id, broadcast_id, data.get("correction"))
    correction = result.correction_id
    return jsonify(
        {
            "cancelled": broadcast_json(desk.broadcast(user_id, result.cancelled_id)),
            "correction": (
                broadcast_json(desk.broadcast(user_id, correction)) if correction else None
            ),
        }
    )


@bp.get("/announcements")
@token_required
def list_announcements() -> Response:
    """The newest broadcasts the caller may see (`?limit=`, at most 200), each with a count of
    its deliveries per state; `GET /announcements/<id>` has every receiver's record."""
    limit = page_number("limit", 50, 200)
    rows = get_service().announcements.recent(current_user_id(), limit)
    return jsonify([broadcast_summary_json(row) for row in rows])


@bp.post("/announcements/recording")
@token_required
def create_recording_announcement() -> tuple[Response, int]:
    """A recorded announcement (multipart/form-data): `recording` (audio file), `zones` and/or
    `devices` (repeated or comma-separated), `priority`, `repeat`, `title`, `internal` (true or
    false)."""
    service = get_service()
    user_id = current_user_id()
    if not service.announcements.can_announce(user_id):  # refuse before reading the upload
        raise PermissionDenied("this role may not announce")
    upload = request.files.get("recording")
    if upload is None or not upload.filename:
        raise ValidationError("recording", "send the audio file as the form field 'recording'")
    form = request.form
    internal = _form_flag(form, "internal")  # refused before the upload is imported
    with tempfile.TemporaryDirectory(dir=service.settings.data_dir) as folder:
        path = Path(folder) / "upload"
        upload.save(path)
        stored = service.announcements.store_recording(user_id, path, upload.filename)
    broadcast_id = service.announcements.announce_recording(
        user_id,
        stored.sha256,
        _list(form, "zones"),
        form.get("priority", "emergency"),
        form.get("repeat", "1"),
        title=form.get("title", ""),
        device_ids=_list(form, "devices"),
        internal=internal,
    )
    return _created(broadcast_id)


def _created(broadcast_id: int) -> tuple[Response, int]:
    record = get_service().announcements.broadcast(current_user_id(), broadcast_id)
    response = jsonify(broadcast_json(record))
    response.headers["Location"] = f"/api/v1/announcements/{broadcast_id}"
    return response, 201


def _list(form: Any, key: str) -> list[str]:
    return [
        part.strip() for value in form.getlist(key) for part in value.split(",") if part.strip()
    ]


def _form_flag(form: Any, key: str) -> bool:
    """A form field "true" or "false" (absent: false); anything else a 400 naming it."""
    raw = form.get(key)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise ValidationError(key, N_("true hoặc false"), "not_a_flag")
    return raw == "true"
