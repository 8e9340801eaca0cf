"""Reports over the API: the broadcast log and the monthly summary per zone (for the district
and the provincial source-information system). Dates are local (Asia/Ho_Chi_Minh)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from broadcast.clock import iso_utc
from broadcast.desks.reporting import LogFilter, MonthlySummary, parse_month
from broadcast.errors import N_, ValidationError
from web import get_service
from web.api import bp, current_user_id, page_number, token_required

_LOGGER = logging.getLogger(__name__)
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@bp.get("/reports/broadcasts")
@token_required
def report_broadcasts() -> Response:
    """`?zone=&from=YYYY-MM-DD&to=&source=&content=&priority=&page=&per_page=`"""
    wanted = LogFilter.from_args(request.args)
    page = get_service().reports.broadcast_log(
        current_user_id(),
        wanted,
        page=page_number("page", 1, 100_000),
        per_page=page_number("per_page", 50, 500),
    )
    return jsonify(
        {
            "page": page.page,
            "pages": page.pages,
            "per_page": page.per_page,
            "total": page.total,
            "filter": wanted.query_args(),
            "broadcasts": [
                {
                    "id": row.id,
                    "at": iso_utc(row.at),
                    "title": row.title,
                    "source": row.source,
                    "content": row.content,
                    "priority": row.priority,
                    "status": row.status,
                    "zones": row.zone_ids,
                    "devices": row.device_ids,
                    "created_by": row.created_by,
                    "deliveries": {
                        "targeted": row.counts.targeted,
                        "finished": row.counts.finished,
                        "failed": row.counts.failed,
                        "stopped": row.counts.stopped,
                        "waiting": row.counts.waiting,
                    },
                }
                for row in page.rows
            ],
        }
    )


@bp.get("/reports/monthly")
@token_required
def report_monthly() -> Response:
    """`?month=YYYY-MM&zone=`: minutes broadcast, delivery rate and offline time per zone."""
    text = request.args.get("month", "")
    match = MONTH.match(text)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise ValidationError("month", N_("tháng dạng YYYY-MM, ví dụ 2026-11"), "not_a_month")
    year, month = parse_month(text)  # the domain's bounds on the year
    summary = get_service().reports.monthly_summary(
        current_user_id(), year, month, request.args.get("zone", "").strip() or None
    )
    return jsonify(_summary_json(summary))


def _summary_json(summary: MonthlySummary) -> dict[str, Any]:
    return {
        "month": f"{summary.year:04d}-{summary.month:02d}",
        "start": iso_utc(summary.start),
        "end": iso_utc(summary.end),
        "measured_until": iso_utc(summary.measured_until),
        "generated_at": iso_utc(summary.generated_at),
        "zones": [
            {
                "zone": zone.zone_id,
                "name": zone.zone_name,
                "kind": zone.kind,
                "broadcasts": zone.total,
                "by_priority": zone.by_priority,
                "cancelled": zone.cancelled,
                "minutes": round(zone.minutes, 2),
                "broadcasts_of_unknown_length": zone.unknown_airtime,
                "deliveries_targeted": zone.targeted,
                "deliveries_finished": zone.finished,
                "delivery_rate": zone.delivery_rate,
                "devices": zone.devices,
                "offline_hours": round(zone.offline_hours, 3),
            }
            for zone in summary.zones
        ],
        "devices": [
            {
                "device": device.device_id,
                "name": device.name,
                "zone": device.zone_id,
                "offline_hours": round(device.offline_hours, 3),
                "online_share": device.online_share,
                "online_now": device.online_now,
            }
            for device in summary.devices
        ],
    }
