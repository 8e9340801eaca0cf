"""Toàn tỉnh: the province dashboard (this month, commune by commune, each row leading to the
commune's own dashboard and monthly report) and the province's monthly report (printable, and
as CSV). Who may read it and every figure are `broadcast.desks.province_reports`'."""

from __future__ import annotations

import logging
from datetime import date

from flask import Blueprint, Response, flash, g, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from broadcast.desks import reporting
from broadcast.desks.province_reports import ProvinceReport
from broadcast.errors import ValidationError
from web import get_service
from web.i18n import error_text

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("province", __name__, url_prefix="/province")


@bp.app_template_global()
def province_reader() -> bool:
    """The templates' `province_reader()`: whether to offer the province pages (the desk's
    rule), asked once per request."""
    if not current_user.is_authenticated or not current_user.can("read_reports"):
        return False
    if "province_reader" not in g:
        g.province_reader = get_service().province_reports.may_read(int(current_user.id))
    return bool(g.province_reader)


def _province_arg() -> str | None:
    return request.args.get("province", "").strip() or None


def _report(month_text: str, *, offline: bool = False) -> tuple[ProvinceReport, int]:
    """The month asked for, or this month with the reason flashed (400) when it is not one."""
    service = get_service()
    user_id = int(current_user.id)
    try:
        year, month = reporting.parse_month(month_text)
    except ValidationError as exc:
        flash(_("Bộ lọc chưa đúng: %(message)s (%(field)s)", message=error_text(exc),
                field=exc.field), "error")  # fmt: skip
        year, month = reporting.parse_month("")
        return service.province_reports.report(
            user_id, year, month, _province_arg(), offline=offline
        ), 400
    found = service.province_reports.report(user_id, year, month, _province_arg(), offline=offline)
    return found, 200


def _month_value(report: ProvinceReport) -> str:
    return f"{report.year:04d}-{report.month:02d}"


@bp.route("/")
@login_required
def index() -> tuple[str, int]:
    """This month's figures per commune (receivers are counted as they are now)."""
    report, status = _report("")
    return render_template(
        "province/index.html", report=report, month_value=_month_value(report)
    ), status


@bp.route("/monthly")
@login_required
def monthly() -> tuple[str, int]:
    report, status = _report(request.args.get("month", ""), offline=True)
    previous = (
        date(report.year - 1, 12, 1)
        if report.month == 1
        else date(report.year, report.month - 1, 1)
    )
    return render_template(
        "province/monthly.html",
        report=report,
        month_value=_month_value(report),
        previous_month=previous.strftime("%Y-%m"),
        priority_order=reporting.PRIORITY_ORDER,
    ), status


@bp.route("/monthly.csv")
@login_required
def monthly_csv() -> Response | tuple[str, int]:
    try:
        year, month = reporting.parse_month(request.args.get("month", ""))
    except ValidationError as exc:
        return error_text(exc), 400
    data = get_service().province_reports.report_csv(
        int(current_user.id), year, month, _province_arg()
    )
    response = Response(data, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="loa-bao-cao-tinh-{year:04d}-{month:02d}.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response
