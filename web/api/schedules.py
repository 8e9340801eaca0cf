"""Programmes over the API: schedule an approved bulletin, list, read and cancel schedules.

Times are local (Asia/Ho_Chi_Minh) as on the pages: `run_at` "2026-12-01T06:00", `time_of_day`
"17:00", dates "2026-12-31". The lunar kinds take `lunar_days` (1-30 of the lunar month; a 30
in a 29-day month plays on its last day) and, yearly, `lunar_month` (1-12): every rằm and mùng
một is `{"kind": "lunar_monthly", "lunar_days": [1, 15], "time_of_day": "06:00"}`.
"""

from __future__ import annotations

import logging

from flask import jsonify
from werkzeug.wrappers import Response

from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import ValidationError
from web import get_service, inputs
from web.api import bp, current_user_id, json_body, token_required
from web.serialize import schedule_json

_LOGGER = logging.getLogger(__name__)
SCHEDULE_FIELDS = (
    "bulletin", "kind", "zones", "devices", "priority", "repeat", "run_at", "time_of_day",
    "weekdays", "cron", "interval_h", "series_key", "valid_from", "valid_to", "lunar_days",
    "lunar_month",
)  # fmt: skip


@bp.get("/schedules")
@token_required
def list_schedules() -> Response:
    rows = get_service().scheduling.active_schedules(current_user_id())
    return jsonify([schedule_json(row) for row in rows])


@bp.post("/schedules")
@token_required
def create_schedule() -> tuple[Response, int]:
    desk = get_service().scheduling
    desk.check_can_schedule(current_user_id())  # refuse before pointing at the body's mistakes
    data = json_body(
        '{"bulletin": 7, "kind": "daily", "time_of_day": "06:00", "zones": ["xa"]}',
        SCHEDULE_FIELDS,
    )
    bulletin_id = inputs.integer(data, "bulletin", low=1, high=inputs.MAX_ID)
    if bulletin_id is None:
        raise ValidationError("bulletin", "the id (a number) of an approved bulletin")
    request_ = ScheduleRequest(
        bulletin_id=bulletin_id,
        kind=inputs.text(data, "kind"),
        zone_ids=data.get("zones") or [],
        priority=inputs.text(data, "priority") or "normal",
        repeat=inputs.integer(data, "repeat", 1),  # type: ignore[arg-type]
        run_at=inputs.text(data, "run_at"),
        time_of_day=inputs.text(data, "time_of_day"),
        weekdays=inputs.integers(data, "weekdays"),
        cron=inputs.text(data, "cron"),
        interval_h=inputs.integer(data, "interval_h"),
        series_key=inputs.text(data, "series_key"),
        valid_from=inputs.text(data, "valid_from"),
        valid_to=inputs.text(data, "valid_to"),
        lunar_days=inputs.integers(data, "lunar_days"),
        lunar_month=inputs.integer(data, "lunar_month"),
        device_ids=data.get("devices") or (),
    )
    schedule_id = desk.schedule(current_user_id(), request_)
    response = jsonify(schedule_json(desk.get(current_user_id(), schedule_id)))
    response.headers["Location"] = f"/api/v1/schedules/{schedule_id}"
    return response, 201


@bp.get("/schedules/<int:schedule_id>")
@token_required
def get_schedule(schedule_id: int) -> Response:
    return jsonify(schedule_json(get_service().scheduling.get(current_user_id(), schedule_id)))


@bp.delete("/schedules/<int:schedule_id>")
@token_required
def cancel_schedule(schedule_id: int) -> tuple[str, int]:
    get_service().scheduling.cancel(current_user_id(), schedule_id)
    return "", 204
