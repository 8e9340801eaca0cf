"""Bulletins from the province over the API (Thông tư 39/2020/TT-BTTTT): send one down to
communes, follow each commune's state; a commune's inbox, placed in a slot, declined, or the
order of the priority items heading a run.

Times read and written as on the pages: `run_at` is local (Asia/Ho_Chi_Minh) "2026-12-01T06:00";
times in answers are UTC, ISO 8601.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response

from broadcast import clock
from broadcast.desks.source_bulletins import (
    CommuneStatus,
    Inbox,
    InboxItem,
    SentBulletin,
    SourceBulletinDesk,
)
from broadcast.errors import N_, ValidationError
from web import get_service, inputs
from web.api import bp, current_user_id, json_body, token_required

ALL = "all"


def _desk() -> SourceBulletinDesk:
    return get_service().source_bulletins


def commune_status_json(row: CommuneStatus) -> dict[str, Any]:
    return {
        "id": row.forward_id,
        "bulletin": row.bulletin_id,
        "commune": row.commune_id,
        "commune_name": row.commune,
        "priority": row.priority,
        "state": row.state,
        "run_at": clock.iso_utc(row.run_at),
        "position": row.position,
        "schedule": row.schedule_id,
        "broadcast": row.broadcast_id,
        "reason": row.reason,
        "decided_by": row.decided_by or None,
        "decided_at": clock.iso_utc(row.decided_at),
        "played_at": clock.iso_utc(row.played_at),
        "deliveries": row.deliveries,
        "finished": row.finished,
        "rate": row.rate,
    }


def sent_json(sent: SentBulletin) -> dict[str, Any]:
    return {
        "bulletin": sent.bulletin.id,
        "title": sent.bulletin.title,
        "sent_at": clock.iso_utc(sent.sent_at),
        "sent_by": sent.sent_by or None,
        "counts": sent.counts,
        "communes": [commune_status_json(row) for row in sent.communes],
    }


def inbox_item_json(item: InboxItem) -> dict[str, Any]:
    return {
        **commune_status_json(item.status),
        "title": item.bulletin.title,
        "kind": item.bulletin.kind,
        "text": item.bulletin.text,
        "sent_by": item.sent_by or None,
        "sent_at": clock.iso_utc(item.sent_at),
    }


def inbox_json(inbox: Inbox) -> dict[str, Any]:
    return {
        "waiting": [inbox_item_json(item) for item in inbox.waiting],
        "runs": [
            {
                "commune": run.commune_id,
                "run_at": clock.iso_utc(run.run_at),
                "items": [inbox_item_json(item) for item in run.items],
            }
            for run in inbox.runs
        ],
        "decided": [inbox_item_json(item) for item in inbox.decided],
    }


@bp.post("/province-bulletins")
@token_required
def send_down() -> tuple[Response, int]:
    """Send a bulletin down: an existing one (`bulletin`) or a text written now."""
    desk, user_id = _desk(), current_user_id()
    if not desk.may_send_down(user_id):
        desk.communes(user_id)  # the refusal, before pointing at the body's mistakes
    data = json_body(
        '{"text": "…", "communes": ["xa-a"], "priority": "priority"}',
        ("bulletin", "title", "text", "communes", "priority"),
    )
    communes = data.get("communes")
    if communes is None:
        raise ValidationError(
            "communes", N_('hãy chọn các xã (danh sách mã) hoặc "all"'), "required"
        )
    chosen = None if communes == ALL else communes
    bulletin_id = inputs.integer(data, "bulletin", low=1, high=inputs.MAX_ID)
    if bulletin_id is None:
        bulletin_id = get_service().bulletins.create_bulletin(
            user_id, inputs.text(data, "title"), data.get("text")
        )
    desk.send_down(user_id, bulletin_id, chosen, inputs.text(data, "priority") or "normal")
    response = jsonify(sent_json(desk.status(user_id, bulletin_id)))
    response.headers["Location"] = f"/api/v1/province-bulletins/{bulletin_id}"
    return response, 201


@bp.get("/province-bulletins")
@token_required
def list_sent() -> Response:
    return jsonify([sent_json(sent) for sent in _desk().sent(current_user_id())])


@bp.get("/province-bulletins/<int:bulletin_id>")
@token_required
def sent_status(bulletin_id: int) -> Response:
    return jsonify(sent_json(_desk().status(current_user_id(), bulletin_id)))


@bp.get("/province-bulletins/inbox")
@token_required
def inbox() -> Response:
    return jsonify(inbox_json(_desk().inbox(current_user_id())))


@bp.post("/province-bulletins/inbox/<int:forward_id>/place")
@token_required
def place(forward_id: int) -> Response:
    desk, user_id = _desk(), current_user_id()
    desk.forward(user_id, forward_id)  # the refusal first
    data = json_body('{"run_at": "2026-12-01T17:00"}', ("run_at", "zones", "repeat"))
    desk.place(
        user_id,
        forward_id,
        inputs.text(data, "run_at"),
        data.get("zones"),
        inputs.integer(data, "repeat", 1),
    )
    return jsonify(inbox_item_json(desk.forward(user_id, forward_id)))


@bp.post("/province-bulletins/inbox/<int:forward_id>/head")
@token_required
def head(forward_id: int) -> Response:
    """A waiting priority bulletin to the head of the commune's next run, now."""
    desk, user_id = _desk(), current_user_id()
    desk.head(user_id, forward_id)
    return jsonify(inbox_item_json(desk.forward(user_id, forward_id)))


@bp.post("/province-bulletins/inbox/<int:forward_id>/decline")
@token_required
def decline(forward_id: int) -> Response:
    desk, user_id = _desk(), current_user_id()
    desk.forward(user_id, forward_id)
    data = json_body('{"reason": "…"}', ("reason",))
    desk.decline(user_id, forward_id, data.get("reason"))
    return jsonify(inbox_item_json(desk.forward(user_id, forward_id)))


@bp.post("/province-bulletins/inbox/reorder")
@token_required
def reorder() -> Response:
    desk, user_id = _desk(), current_user_id()
    desk.inbox(user_id)
    data = json_body('{"order": [12, 11]}', ("order",))
    desk.reorder(user_id, inputs.integers(data, "order", low=1, high=inputs.MAX_ID))
    return jsonify(inbox_json(desk.inbox(user_id)))
