"""Programmes over the API: schedule an approved bulletin, list, read and cancel schedules.

Times are local (Asia/Ho_Chi_Minh) as on the pages: `run_at` "2026-12-01T06:00", `time_of_day`
"17:00", dates "2026-12-31".
"""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify
from sqlalchemy import select
from werkzeug.wrappers import Response

from broadcast import accounts
from broadcast.bulletin_desk import READERS  # who reads the programme also reads bulletins
from broadcast.errors import NotFound, ValidationError
from broadcast.models import Schedule
from broadcast.service import CONTENT_ROLES, ScheduleRequest
from web import get_service
from web.api import bp, current_user_id, json_body, token_required
from web.serialize import schedule_json

_LOGGER = logging.getLogger(__name__)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else str(value)


@bp.get("/schedules")
@token_required
def list_schedules() -> Response:
    with get_service().db.session() as session:
        accounts.require_user(session, current_user_id(), READERS)
        rows = session.scalars(
            select(Schedule)
            .where(Schedule.active.is_(True), Schedule.ended_at.is_(None))
            .order_by(Schedule.id)
        )
        return jsonify([schedule_json(row) for row in rows])


@bp.post("/schedules")
@token_required
def create_schedule() -> tuple[Response, int]:
    service = get_service()
    with service.db.session() as session:  # refuse before pointing at the body's mistakes
        accounts.require_user(session, current_user_id(), CONTENT_ROLES)
    data = json_body('{"bulletin": 7, "kind": "daily", "time_of_day": "06:00", "zones": ["xa"]}')
    request_ = ScheduleRequest(
        bulletin_id=_bulletin_id(data.get("bulletin")),
        kind=_text(data, "kind"),
        zone_ids=data.get("zones") or [],  # type: ignore[arg-type]
        priority=_text(data, "priority") or "normal",
        repeat=data.get("repeat", 1),  # type: ignore[arg-type]
        run_at=_text(data, "run_at"),
        time_of_day=_text(data, "time_of_day"),
        weekdays=data.get("weekdays") or (),  # type: ignore[arg-type]
        cron=_text(data, "cron"),
        interval_h=data.get("interval_h"),  # type: ignore[arg-type]
        series_key=_text(data, "series_key"),
        valid_from=_text(data, "valid_from"),
        valid_to=_text(data, "valid_to"),
        device_ids=data.get("devices") or (),  # type: ignore[arg-type]
    )
    schedule_id = service.schedule(current_user_id(), request_)
    with service.db.session() as session:
        row = session.get(Schedule, schedule_id)
        assert row is not None
        response = jsonify(schedule_json(row, next_run=service.next_run(schedule_id)))
    response.headers["Location"] = f"/api/v1/schedules/{schedule_id}"
    return response, 201


@bp.get("/schedules/<int:schedule_id>")
@token_required
def get_schedule(schedule_id: int) -> Response:
    service = get_service()
    with service.db.session() as session:
        accounts.require_user(session, current_user_id(), READERS)
        row = session.get(Schedule, schedule_id)
        if row is None:
            raise NotFound(f"schedule {schedule_id}")
        return jsonify(schedule_json(row, next_run=service.next_run(schedule_id)))


@bp.delete("/schedules/<int:schedule_id>")
@token_required
def cancel_schedule(schedule_id: int) -> tuple[str, int]:
    get_service().cancel_schedule(current_user_id(), schedule_id)
    return "", 204


def _bulletin_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("bulletin", "the id (a number) of an approved bulletin")
    return value
