"""Nghe lại over the API: a commune's replay switch, what is kept internal (nội bộ), and the
moderation of listeners' feedback (góp ý), as the officer's `/replay/` pages do them.

Who may is the permissions table's MANAGE_REPLAY over the zone (`service.replay` checks it):
a commune outside the account's zone, or its feedback, is not found (404); a broadcast aimed
beyond it (a province's) is refused (403), since it is the province's to hide.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify, request, url_for
from werkzeug.wrappers import Response

from broadcast.clock import iso_utc
from broadcast.desks.replay import CommuneReplay, FeedbackRecord, ReplayDesk
from broadcast.errors import N_, ValidationError
from web import get_service
from web.api import bp, current_user_id, json_body, token_required

_LOGGER = logging.getLogger(__name__)
ALL = "all"


def _desk() -> ReplayDesk:
    return get_service().replay


def _required_flag(data: dict[str, Any], key: str) -> bool:
    """A JSON true or false that must be there (absent or null is a 400 naming it)."""
    value = data.get(key)
    if not isinstance(value, bool):
        raise ValidationError(key, N_("true hoặc false"), "not_a_flag")
    return value


def commune_json(commune: CommuneReplay) -> dict[str, Any]:
    """A commune's replay settings, with the addresses its page and podcast have (answered
    only while `public`)."""
    base = get_service().settings.public_url.rstrip("/")
    return {
        "id": commune.id,
        "name": commune.name,
        "public": commune.public,
        "pending": commune.pending,
        "page_url": base + url_for("listen.page", commune=commune.id),
        "podcast_url": base + url_for("listen.feed", commune=commune.id),
    }


def feedback_json(found: FeedbackRecord) -> dict[str, Any]:
    return {
        "id": found.id,
        "broadcast": found.broadcast_id,
        "commune": found.zone_id,
        "item_title": found.item_title,
        "name": found.name,
        "text": found.text,
        "status": found.status,
        "created_at": iso_utc(found.created_at),
        "moderated_at": iso_utc(found.moderated_at),
    }


@bp.get("/replay/communes")
@token_required
def list_replay_communes() -> Response:
    """The communes whose replay the caller manages, each with its switch and waiting feedback."""
    return jsonify([commune_json(found) for found in _desk().communes(current_user_id())])


@bp.get("/replay/communes/<commune>")
@token_required
def get_replay_commune(commune: str) -> Response:
    return jsonify(commune_json(_desk().commune(current_user_id(), commune)))


@bp.patch("/replay/communes/<commune>")
@token_required
def edit_replay_commune(commune: str) -> Response:
    """`{"public": true}` opens the commune's page and podcast, false closes them."""
    desk, user_id = _desk(), current_user_id()
    desk.commune(user_id, commune)  # not found before the body is read
    data = json_body('{"public": true}', ("public",))
    desk.set_public(user_id, commune, _required_flag(data, "public"))
    return jsonify(commune_json(desk.commune(user_id, commune)))


@bp.get("/replay/communes/<commune>/items")
@token_required
def list_replay_items(commune: str) -> Response:
    """What sounded in the commune lately, internal items included, with what is public."""
    desk, user_id = _desk(), current_user_id()
    desk.commune(user_id, commune)
    return jsonify(
        [
            {
                "broadcast": item.id,
                "title": item.title,
                "played_at": iso_utc(item.played_at),
                "internal": item.internal,
                "bulletin_internal": item.bulletin_internal,
                "public": item.public,
            }
            for item in desk.recent(user_id, commune)
        ]
    )


@bp.post("/replay/broadcasts/<int:broadcast_id>/internal")
@token_required
def set_broadcast_internal(broadcast_id: int) -> Response:
    """`{"internal": true}` keeps a broadcast off the public page and feed; false lets it on."""
    data = json_body('{"internal": true}', ("internal",))
    internal = _required_flag(data, "internal")
    _desk().set_internal(current_user_id(), broadcast_id, internal)
    return jsonify({"id": broadcast_id, "internal": internal})


@bp.post("/replay/bulletins/<int:bulletin_id>/internal")
@token_required
def set_bulletin_internal(bulletin_id: int) -> Response:
    """The same for a bulletin: its runs and its "phát ngay" broadcasts follow it."""
    data = json_body('{"internal": true}', ("internal",))
    internal = _required_flag(data, "internal")
    _desk().set_bulletin_internal(current_user_id(), bulletin_id, internal)
    return jsonify({"id": bulletin_id, "internal": internal})


@bp.get("/replay/feedback")
@token_required
def list_feedback() -> Response:
    """Feedback on the caller's communes' pages, newest first (`?status=`: pending, approved,
    hidden, or all, the default)."""
    status = request.args.get("status", ALL)
    chosen = None if status == ALL else status
    found = _desk().feedback(current_user_id(), chosen)
    return jsonify([feedback_json(row) for row in found])


@bp.post("/replay/feedback/<int:feedback_id>/moderate")
@token_required
def moderate_feedback(feedback_id: int) -> Response:
    """`{"decision": "approved"}` shows it under the item; "hidden" keeps it off the page."""
    data = json_body('{"decision": "approved"}', ("decision",))
    moderated = _desk().moderate(current_user_id(), feedback_id, data.get("decision"))
    return jsonify(feedback_json(moderated))
