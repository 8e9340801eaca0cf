"""The inbound API of an external source-information system (HTTT nguồn): bulletins as JSON or
multipart, CAP 1.2 alerts as XML, and what became of each (`broadcast.desks.inbound`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import jsonify, request
from werkzeug.wrappers import Response

from broadcast.clock import iso_utc
from broadcast.desks.inbound import BULLETIN_FIELDS, InboundRecord, Intake
from broadcast.errors import N_, ValidationError
from web import get_service
from web.api import bp, current_user_id, json_body, page_number, token_required

CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")
MAX_CAP_BYTES = 256 * 1024


@bp.post("/source/bulletins")
@token_required
def post_source_bulletin() -> tuple[Response, int]:
    """A bulletin from the source: JSON, or multipart/form-data with the audio file as
    `audio`; the `Idempotency-Key` header makes a retry create nothing twice."""
    service = get_service()
    service.inbound.check_may_feed(current_user_id())  # before the body is read
    key = request.headers.get("Idempotency-Key", "")
    if request.mimetype == "multipart/form-data":
        form = request.form
        fields: dict[str, object] = {name: form.get(name) for name in BULLETIN_FIELDS}
        fields["communes"] = [
            part.strip()
            for value in form.getlist("communes")
            for part in value.split(",")
            if part.strip()
        ]
        upload = request.files.get("audio")
        if upload is None or not upload.filename:
            raise ValidationError(
                "audio", N_("gửi tệp âm thanh trong trường biểu mẫu “audio”"), "required"
            )
        with tempfile.TemporaryDirectory(dir=service.settings.data_dir) as folder:
            path = Path(folder) / "upload"
            upload.save(path)
            intake = service.inbound.post_bulletin(
                current_user_id(), key, fields, path, upload.filename
            )
        return _answer(intake)
    data = json_body(
        '{"title": "…", "text": "…", "priority": "normal", "communes": ["26734"]}',
        BULLETIN_FIELDS,
    )
    return _answer(service.inbound.post_bulletin(current_user_id(), key, data))


@bp.post("/source/cap")
@token_required
def post_cap_alert() -> tuple[Response, int]:
    """A CAP 1.2 alert as the request body; (sender, identifier) is its idempotency key."""
    get_service().inbound.check_may_feed(current_user_id())  # before the body is read
    if request.mimetype not in CAP_TYPES:
        raise ValidationError(
            "Content-Type",
            N_("gửi cảnh báo CAP với Content-Type: application/cap+xml"),
            "unsupported_type",
        )
    if (request.content_length or 0) > MAX_CAP_BYTES:
        raise ValidationError(
            "alert", N_("cảnh báo CAP dài quá %(max)s byte"), "too_large", max=MAX_CAP_BYTES
        )
    data = request.get_data(cache=False)
    return _answer(get_service().inbound.post_cap(current_user_id(), data))


@bp.get("/source/items")
@token_required
def list_source_items() -> Response:
    limit = page_number("limit", 50, 200)
    rows = get_service().inbound.items(current_user_id(), limit)
    return jsonify([item_json(row) for row in rows])


@bp.get("/source/items/<int:item_id>")
@token_required
def get_source_item(item_id: int) -> Response:
    return jsonify(item_json(get_service().inbound.item(current_user_id(), item_id)))


def _answer(intake: Intake) -> tuple[Response, int]:
    response = jsonify(item_json(intake.record))
    response.headers["Location"] = f"/api/v1/source/items/{intake.record.id}"
    return response, 201 if intake.created else 200


def item_json(record: InboundRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "key": record.key,
        "kind": record.kind,
        "received_at": iso_utc(record.received_at),
        "disposition": record.disposition,
        "priority": record.priority,
        "communes": list(record.communes),
        "title": record.title,
        "reason": record.reason,
        "valid_until": iso_utc(record.valid_until),
        "sent_id": record.sent_id,
        "replaces": record.replaces_id,
    }
