"""Live broadcasts (phát trực tiếp) over the API: go live, feed the speaker's audio, end it."""

from __future__ import annotations

from collections.abc import Iterator

from flask import jsonify, request
from werkzeug.wrappers import Response

from broadcast.desks.live import MAX_MINUTES
from web import get_service, inputs
from web.api import bp, current_user_id, json_body, token_required
from web.serialize import broadcast_json

LIVE_FIELDS = ("zones", "devices", "priority", "minutes", "title", "internal")
FEED_CHUNK = 1024  # read as it comes: ~0.2 s of a browser's Opus, small enough to talk over
# a feed is one request as long as the broadcast: up to its longest, at a generous bitrate
MAX_FEED_BYTES = MAX_MINUTES * 60 * 32 * 1024


@bp.post("/live")
@token_required
def start_live() -> tuple[Response, int]:
    data = json_body('{"zones": ["thon-1"], "priority": "emergency", "minutes": 30}', LIVE_FIELDS)
    desk = get_service().live
    broadcast_id = desk.start(
        current_user_id(),
        data.get("zones"),
        data.get("priority", "emergency"),
        inputs.integer(data, "minutes", 30),
        title=inputs.text(data, "title"),
        device_ids=data.get("devices"),
        internal=inputs.flag(data, "internal"),
    )
    record = get_service().announcements.broadcast(current_user_id(), broadcast_id)
    response = jsonify(broadcast_json(record))
    response.headers["Location"] = f"/api/v1/announcements/{broadcast_id}"
    return response, 201


@bp.post("/live/<int:broadcast_id>/feed")
@token_required
def feed_live(broadcast_id: int) -> Response:
    """The speaker's audio as the body, sent as it is captured (chunked): Opus in WebM or Ogg
    from a browser's MediaRecorder, or MP3. The answer comes when the body ends."""
    request.max_content_length = MAX_FEED_BYTES
    result = get_service().live.feed(current_user_id(), broadcast_id, _body_chunks())
    return jsonify({"seconds": result.seconds, "recording": result.recording_sha256 or None})


@bp.post("/live/<int:broadcast_id>/end")
@token_required
def end_live(broadcast_id: int) -> Response:
    """Kết thúc: the STOP on every loudspeaker it reached."""
    user_id = current_user_id()
    get_service().live.end(user_id, broadcast_id)
    return jsonify(broadcast_json(get_service().announcements.broadcast(user_id, broadcast_id)))


def _body_chunks() -> Iterator[bytes]:
    stream = request.stream
    while chunk := stream.read(FEED_CHUNK):
        yield chunk
