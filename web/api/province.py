"""The province report over the API (toàn tỉnh): the figures of the province dashboard and
monthly report, commune by commune, for the provincial source-information system and other
clients. Who may read it and every figure are `broadcast.desks.province_reports`'."""

from __future__ import annotations

import logging
from typing import Any

from flask import jsonify, request
from werkzeug.wrappers import Response

from broadcast.clock import iso_utc
from broadcast.desks.province_reports import CommuneFigures, ProvinceReport
from broadcast.desks.reporting import parse_month
from broadcast.errors import N_, ValidationError
from web import get_service
from web.api import bp, current_user_id, token_required
from web.api.reports import MONTH

_LOGGER = logging.getLogger(__name__)


def _province_arg() -> str | None:
    return request.args.get("province", "").strip() or None


@bp.get("/province/dashboard")
@token_required
def province_dashboard() -> Response:
    """`?province=`: this month's figures per commune, receivers counted as they are now."""
    year, month = parse_month("")
    report = get_service().province_reports.report(current_user_id(), year, month, _province_arg())
    return jsonify(_report_json(report))


@bp.get("/province/monthly")
@token_required
def province_monthly() -> Response:
    """`?month=YYYY-MM&province=`: the province's month per commune, with offline time."""
    text = request.args.get("month", "")
    if MONTH.match(text) is None:
        raise ValidationError("month", N_("tháng dạng YYYY-MM, ví dụ 2026-11"), "not_a_month")
    year, month = parse_month(text)  # the domain's bounds on the year and the month
    report = get_service().province_reports.report(
        current_user_id(), year, month, _province_arg(), offline=True
    )
    return jsonify(_report_json(report))


def _figures_json(figures: CommuneFigures) -> dict[str, Any]:
    return {
        "zone": figures.zone_id,
        "name": figures.name,
        "code": figures.code,
        "receivers": figures.receivers,
        "online": figures.online,
        "attention": figures.attention,
        "broadcasts": figures.broadcasts,
        "by_priority": figures.by_priority,
        "cancelled": figures.cancelled,
        "minutes": round(figures.minutes, 2),
        "broadcasts_of_unknown_length": figures.unknown_airtime,
        "deliveries_targeted": figures.targeted,
        "deliveries_finished": figures.finished,
        "delivery_rate": figures.delivery_rate,
        "offline_hours": (
            None if figures.offline_hours is None else round(figures.offline_hours, 3)
        ),
        "province_bulletins": {
            "played": figures.bulletins.played,
            "waiting": figures.bulletins.waiting,
            "declined": figures.bulletins.declined,
        },
    }


def _report_json(report: ProvinceReport) -> dict[str, Any]:
    return {
        "province": report.province_id,
        "name": report.province_name,
        "month": f"{report.year:04d}-{report.month:02d}",
        "start": iso_utc(report.start),
        "end": iso_utc(report.end),
        "measured_until": iso_utc(report.measured_until),
        "generated_at": iso_utc(report.generated_at),
        "communes": [_figures_json(row) for row in report.communes],
        "total": _figures_json(report.total),
    }
