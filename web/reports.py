"""Reports (báo cáo): the broadcast log with filters and CSV exports, and the monthly summary
per zone (printable, and as CSV). Who may see which zone is `broadcast.desks.reporting`'s rule."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from flask import Blueprint, Response, flash, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from broadcast import clock
from broadcast.const import ZoneKind
from broadcast.desks import reporting
from broadcast.errors import ValidationError
from web import get_service
from web.i18n import error_text

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("reports", __name__, url_prefix="/reports")


def _user_id() -> int:
    """The signed-in user; the desk checks on every call that they are active and may act."""
    return int(current_user.id)


def _csv_response(data: bytes, filename: str) -> Response:
    response = Response(data, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _flash_invalid(error: ValidationError) -> None:
    flash(_("Bộ lọc chưa đúng: %(message)s (%(field)s)", message=error_text(error),
            field=error.field), "error")  # fmt: skip


@bp.route("/")
@login_required
def index() -> tuple[str, int] | str:
    service = get_service()
    user_id = _user_id()
    choices = service.reports.zone_choices(user_id, request.args.get("zone", "").strip() or None)
    status = 200
    try:
        wanted = reporting.LogFilter.from_args(request.args)
        page = service.reports.broadcast_log(
            user_id, wanted, reporting.parse_page(request.args.get("page", "1"))
        )
    except ValidationError as exc:
        _flash_invalid(exc)
        status = 400
        wanted = reporting.LogFilter()
        page = service.reports.broadcast_log(user_id, wanted)
    return render_template(
        "reports/index.html",
        log=page,
        zones=choices,
        zone_names={zone.id: zone.name for zone in choices},
        args=request.args,
        filter_args=page.filter.query_args(),
        sources=reporting.SOURCE_LABELS,
        contents=reporting.CONTENT_LABELS,
        priorities=reporting.PRIORITY_LABELS,
    ), status


def _export(kind: str) -> Response | tuple[str, int]:
    service = get_service()
    user_id = _user_id()
    try:
        wanted = reporting.LogFilter.from_args(request.args)
    except ValidationError as exc:
        return error_text(exc), 400
    if kind == "deliveries":
        data = service.reports.deliveries_csv(user_id, wanted)
    else:
        data = service.reports.log_csv(user_id, wanted)
    stamp = clock.format_local(datetime.now(UTC), "%Y%m%d-%H%M")
    return _csv_response(data, f"loa-{kind}-{stamp}.csv")


@bp.route("/broadcasts.csv")
@login_required
def broadcasts_csv() -> Response | tuple[str, int]:
    return _export("broadcasts")


@bp.route("/deliveries.csv")
@login_required
def deliveries_csv() -> Response | tuple[str, int]:
    return _export("deliveries")


def _month_args() -> tuple[int, int, str | None]:
    year, month = reporting.parse_month(request.args.get("month", ""))
    zone_id = request.args.get("zone", "").strip() or None
    return year, month, zone_id


@bp.route("/monthly")
@login_required
def monthly() -> tuple[str, int] | str:
    service = get_service()
    user_id = _user_id()
    status = 200
    try:
        year, month, zone_id = _month_args()
        summary = service.reports.monthly_summary(user_id, year, month, zone_id)
    except ValidationError as exc:
        _flash_invalid(exc)
        status = 400
        year, month, zone_id = *reporting.parse_month(""), None
        summary = service.reports.monthly_summary(user_id, year, month)
    previous = date(year - 1, 12, 1) if month == 1 else date(year, month - 1, 1)
    communes = sum(zone.kind == ZoneKind.COMMUNE.value for zone in summary.zones)
    return render_template(
        "reports/monthly.html",
        summary=summary,
        # a province's page: its communes (each a link to its own page), not its hundreds of
        # villages and thousands of receivers (the CSV keeps every zone)
        many_communes=communes > 1,
        zones=service.reports.zone_choices(user_id, zone_id),
        zone_id=zone_id or "",
        month_value=f"{year:04d}-{month:02d}",
        previous_month=previous.strftime("%Y-%m"),
        priorities=reporting.PRIORITY_LABELS,
        priority_order=reporting.PRIORITY_ORDER,
    ), status


@bp.route("/monthly.csv")
@login_required
def monthly_csv() -> Response | tuple[str, int]:
    service = get_service()
    user_id = _user_id()
    try:
        year, month, zone_id = _month_args()
    except ValidationError as exc:
        return error_text(exc), 400
    data = service.reports.monthly_csv(user_id, year, month, zone_id)
    return _csv_response(data, f"loa-bao-cao-thang-{year:04d}-{month:02d}.csv")


@bp.app_template_filter("report_number")
def report_number(value: float, digits: int = 1) -> str:
    """12.5 → '12,5' (Vietnamese decimal comma)."""
    return f"{value:.{digits}f}".replace(".", ",")


@bp.app_template_filter("report_percent")
def report_percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %".replace(".", ",")
