"""Bulletins (bản tin): paste or upload a document, edit its broadcast script, preview, schedule.

Also recordings as content, for languages and voices no speech engine has, and stream relays
(tiếp sóng) of the provincial or national radio. Schedules: once, daily, chosen weekdays, cron,
or a series repeating every N hours until a newer one of the same key replaces it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from broadcast import zones
from broadcast.errors import LoaError, NotFound, PermissionDenied, ValidationError
from broadcast.models import Bulletin, Schedule
from broadcast.service import ScheduleRequest
from web import get_service
from web.views import WEEKDAY_LABELS, user_row

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("bulletins", __name__, url_prefix="/bulletins")
TEXT_UPLOAD_LIMIT = 1024 * 1024
ACCEPTED = "mp3, m4a, ogg, wav, webm, flac, amr"
RECORDING_PROBLEMS = {
    "missing": "không tìm thấy tệp",
    "empty": "tệp rỗng",
    "too_large": "tệp quá lớn (tối đa 20 MB)",
    "not_audio": "không phải tệp âm thanh",
    "no_sound_track": "tệp không có tiếng",
    "unsupported": "định dạng âm thanh chưa hỗ trợ",
    "damaged": "tệp bị hỏng, không đọc hết được",
    "too_short": "bản ghi quá ngắn (ít nhất nửa giây)",
    "too_long": "bản ghi quá dài (tối đa 30 phút)",
    "silent": "bản ghi im lặng, không nghe thấy tiếng",
}


def _user_id() -> int:
    with get_service().db.session() as session:
        return user_row(session).id


def _report(exc: LoaError) -> None:
    if isinstance(exc, PermissionDenied):
        abort(403)
    if isinstance(exc, NotFound):
        abort(404)
    if isinstance(exc, ValidationError) and exc.code in RECORDING_PROBLEMS:
        name = request.files["recording"].filename if "recording" in request.files else ""
        flash(
            f"Không nhận tệp “{name}”: {RECORDING_PROBLEMS[exc.code]}. Nhận các tệp: {ACCEPTED}."
            f" ({exc.field})",
            "error",
        )
    elif isinstance(exc, ValidationError):
        flash(f"{exc.message} ({exc.field})", "error")
    else:
        flash(str(exc), "error")


@bp.route("/")
@login_required
def index() -> str:
    with get_service().db.session() as session:
        user = user_row(session)
        if not get_service().can_manage_content(user):
            abort(403)
        bulletins = list(session.scalars(select(Bulletin).order_by(Bulletin.id.desc()).limit(50)))
        schedules = list(
            session.scalars(
                select(Schedule)
                .where(Schedule.active.is_(True), Schedule.ended_at.is_(None))
                .order_by(Schedule.id.desc())
            )
        )
        next_runs = {schedule.id: get_service().next_run(schedule.id) for schedule in schedules}
        return render_template(
            "bulletins/index.html", bulletins=bulletins, schedules=schedules, next_runs=next_runs
        )


@bp.route("/relay", methods=["POST"])
@login_required
def create_relay() -> Response:
    """Tiếp sóng: a stream URL played for a set number of minutes."""
    form = request.form
    try:
        bulletin_id = get_service().create_relay_bulletin(
            _user_id(), form.get("title", ""), form.get("relay_url", ""), form.get("minutes", "")
        )
    except LoaError as exc:
        _report(exc)
        return redirect(url_for("bulletins.index"))
    flash("Đã lưu bản tiếp sóng.", "info")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    """Step 1: paste or upload a document; step 2: edit its script; then save."""
    service = get_service()
    user_id = _user_id()
    if request.method == "GET":
        with service.db.session() as session:
            if not service.can_manage_content(user_row(session)):
                abort(403)
        return render_template("bulletins/new.html", document="")
    action = request.form.get("action", "prepare")
    try:
        if action == "save":
            bulletin_id = service.create_bulletin(
                user_id, request.form.get("title", ""), request.form.get("script", "")
            )
            flash("Đã lưu bản tin.", "info")
            return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))
        document = _document_from_request()
        script = service.prepare_script(document, with_opening="opening" in request.form)
    except LoaError as exc:
        _report(exc)
        return render_template(
            "bulletins/new.html",
            document=request.form.get("document", ""),
        )
    return render_template("bulletins/script.html", script=script)


def _document_from_request() -> str:
    upload = request.files.get("document_file")
    if upload is not None and upload.filename:
        data = upload.read(TEXT_UPLOAD_LIMIT + 1)
        if len(data) > TEXT_UPLOAD_LIMIT:
            raise ValidationError("document_file", "tệp văn bản quá 1 MB")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                "document_file", f"{upload.filename} không phải văn bản UTF-8 (.txt)"
            ) from exc
    return request.form.get("document", "")


@bp.route("/recording", methods=["POST"])
@login_required
def upload_recording() -> Response:
    service = get_service()
    upload = request.files.get("recording")
    if upload is None or not upload.filename:
        flash("Chọn một tệp ghi âm (mp3, m4a, ogg, wav). (recording)", "error")
        return redirect(url_for("bulletins.new"))
    with tempfile.TemporaryDirectory(dir=service.settings.data_dir) as tmp:
        path = Path(tmp) / "upload"
        upload.save(path)
        try:
            bulletin_id = service.create_recording_bulletin(
                _user_id(), request.form.get("title", ""), path, upload.filename
            )
        except LoaError as exc:
            _report(exc)
            return redirect(url_for("bulletins.new"))
    flash("Đã lưu bản ghi âm.", "info")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.route("/<int:bulletin_id>")
@login_required
def detail(bulletin_id: int) -> str:
    service = get_service()
    with service.db.session() as session:
        user = user_row(session)
        if not get_service().can_manage_content(user):
            abort(403)
        try:
            bulletin = service.get_bulletin(session, bulletin_id)
        except NotFound:
            abort(404)
        schedules = bulletin_schedules(session, bulletin_id)
        reachable = zones.reachable_zones(session, user)
        return render_template(
            "bulletins/detail.html",
            bulletin=bulletin,
            schedules=schedules,
            zones=reachable,
            devices=zones.target_devices(reachable),
            weekdays=list(enumerate(WEEKDAY_LABELS)),
            preview=request.args.get("preview", ""),
        )


def bulletin_schedules(session, bulletin_id: int) -> list[Schedule]:  # type: ignore[no-untyped-def]
    query = select(Schedule).where(
        Schedule.bulletin_id == bulletin_id,
        Schedule.active.is_(True),
        Schedule.ended_at.is_(None),
    )
    return list(session.scalars(query))


@bp.route("/<int:bulletin_id>/preview", methods=["POST"])
@login_required
def preview(bulletin_id: int) -> Response:
    try:
        sha256 = get_service().preview(_user_id(), bulletin_id)
    except LoaError as exc:
        _report(exc)
        return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id, preview=sha256))


@bp.route("/<int:bulletin_id>/schedule", methods=["POST"])
@login_required
def schedule(bulletin_id: int) -> Response:
    form = request.form
    kind = form.get("kind", "daily")
    try:
        get_service().schedule(
            _user_id(),
            ScheduleRequest(
                bulletin_id=bulletin_id,
                kind=kind,
                zone_ids=form.getlist("zones"),
                device_ids=form.getlist("devices"),
                priority=form.get("priority", "normal"),
                repeat=form.get("repeat", "1"),
                run_at=form.get("series_start" if kind == "series" else "run_at", ""),
                time_of_day=form.get("time_of_day", ""),
                weekdays=form.getlist("weekdays"),
                cron=form.get("cron", ""),
                interval_h=form.get("interval_h", ""),
                series_key=form.get("series_key", ""),
                valid_from=form.get("valid_from", ""),
                valid_to=form.get("valid_to", ""),
            ),
        )
    except LoaError as exc:
        _report(exc)
    else:
        flash("Đã đặt lịch phát.", "info")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.route("/<int:bulletin_id>/send", methods=["POST"])
@login_required
def send(bulletin_id: int) -> Response:
    form = request.form
    try:
        broadcast_id = get_service().broadcast_bulletin(
            _user_id(),
            bulletin_id,
            form.getlist("zones"),
            form.get("priority", "normal"),
            form.get("repeat", "1"),
            device_ids=form.getlist("devices"),
        )
    except LoaError as exc:
        _report(exc)
        return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))
    return redirect(url_for("announce.detail", broadcast_id=broadcast_id))


@bp.route("/schedules/<int:schedule_id>/cancel", methods=["POST"])
@login_required
def cancel_schedule(schedule_id: int) -> Response:
    try:
        get_service().cancel_schedule(_user_id(), schedule_id)
    except LoaError as exc:
        _report(exc)
    else:
        flash("Đã hủy lịch phát.", "info")
    return redirect(url_for("bulletins.index"))
