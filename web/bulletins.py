"""Bulletins (bản tin): write, get approved (duyệt), preview, schedule or send at once.

A thin shell over `broadcast.desks.bulletins` (who may do what, the approval states, the audit)
and `service.scheduling.schedule`. The officer pastes or uploads a document (.txt, .docx), edits
its broadcast script and saves a draft, then submits it; a leader listens to the preview and
approves or rejects it with a comment ("Chờ duyệt" is the leader's list); an approved bulletin is
scheduled or sent. Also recordings, for languages and voices no speech engine has, and stream
relays (tiếp sóng). Viewers read everything and change nothing; village heads have no
bulletin pages.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from broadcast.desks import bulletins as bulletin_desk
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.errors import LoaError, NotFound, PermissionDenied, ValidationError
from web import get_service
from web.i18n import error_text
from web.views import WEEKDAY_LABELS

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("bulletins", __name__, url_prefix="/bulletins")
ACCEPTED = "mp3, m4a, ogg, wav, webm, flac, amr"
RECORDING_PROBLEMS = {
    "missing": _l("không tìm thấy tệp"),
    "empty": _l("tệp rỗng"),
    "too_large": _l("tệp quá lớn (tối đa 20 MB)"),
    "not_audio": _l("không phải tệp âm thanh"),
    "no_sound_track": _l("tệp không có tiếng"),
    "unsupported": _l("định dạng âm thanh chưa hỗ trợ"),
    "damaged": _l("tệp bị hỏng, không đọc hết được"),
    "too_short": _l("bản ghi quá ngắn (ít nhất nửa giây)"),
    "too_long": _l("bản ghi quá dài (tối đa 30 phút)"),
    "silent": _l("bản ghi im lặng, không nghe thấy tiếng"),
}
ALL = "all"


def _user_id() -> int:
    """The signed-in user; the desk checks on every call that they are active and may act."""
    return int(current_user.id)


def _desk() -> bulletin_desk.BulletinDesk:
    return get_service().bulletins


def _report(exc: LoaError) -> None:
    """A refusal as the person sees it: 403, 404, or the message naming the field."""
    if isinstance(exc, PermissionDenied):
        abort(403)
    if isinstance(exc, NotFound):
        abort(404)
    if (
        isinstance(exc, ValidationError)
        and exc.field == "recording"
        and exc.code in RECORDING_PROBLEMS
    ):
        name = request.files["recording"].filename if "recording" in request.files else ""
        message = _(
            "Không nhận tệp “%(name)s”: %(problem)s. Nhận các tệp: %(accepted)s.",
            name=name,
            problem=RECORDING_PROBLEMS[exc.code],
            accepted=ACCEPTED,
        )
        flash(f"{message} ({exc.field})", "error")
    elif isinstance(exc, ValidationError) and exc.code == "no_speech":
        message = _("Nội dung chưa có chữ nào để đọc: hãy nhập lời thông báo bằng chữ.")
        flash(f"{message} ({exc.field})", "error")
    elif isinstance(exc, ValidationError):
        flash(f"{error_text(exc)} ({exc.field})", "error")
    else:
        flash(error_text(exc), "error")


def _require_writer() -> None:
    """The forms that create content are the officer's and the admin's (checked again on save)."""
    if not _desk().may_write(_user_id()):
        abort(403)


def _back(default: str) -> str:
    """Where a form asked to return to: a path on this site only."""
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return default


def _detail(bulletin_id: int) -> Response:
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.route("/")
@login_required
def index() -> str:
    desk, user_id = _desk(), _user_id()
    asked = request.args.get("status")
    try:
        shown = desk.index(user_id, None if asked is None else "" if asked == ALL else asked)
    except PermissionDenied:
        abort(403)
    except ValidationError as exc:
        _report(exc)
        asked, shown = ALL, desk.index(user_id, "")
    return render_template(
        "bulletins/index.html",
        bulletins=shown.bulletins,
        status=(shown.status or ALL) if asked is None else asked,
        statuses=[s.value for s in bulletin_desk.BulletinStatus],
        counts=shown.counts,
        abilities=shown.abilities,
        schedules=shown.schedules,
        next_runs=shown.next_runs,
        cancellable=shown.cancellable,
    )


@bp.route("/relay", methods=["POST"])
@login_required
def create_relay() -> Response:
    """Tiếp sóng: a stream URL played for a set number of minutes."""
    _require_writer()
    form = request.form
    try:
        bulletin_id = _desk().create_relay_bulletin(
            _user_id(), form.get("title", ""), form.get("relay_url", ""), form.get("minutes", "")
        )
    except LoaError as exc:
        _report(exc)
        return redirect(url_for("bulletins.index"))
    flash(_("Đã lưu bản tiếp sóng."), "info")
    return _detail(bulletin_id)


def _checked(name: str) -> bool:
    """A checkbox of the form (nội bộ)."""
    return request.form.get(name, "") in ("1", "on", "true")


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    """Step 1: paste or upload a document; step 2: edit its script; then save a draft."""
    _require_writer()
    if request.method == "GET":
        return render_template("bulletins/new.html", document="")
    desk, user_id = _desk(), _user_id()
    with_opening = "opening" in request.form
    try:
        if request.form.get("action") == "save":
            bulletin_id = desk.create_bulletin(
                user_id,
                request.form.get("title", ""),
                request.form.get("script", ""),
                source_name=request.form.get("source_name", ""),
                internal=_checked("internal"),
            )
            flash(_("Đã lưu bản tin."), "info")
            return _detail(bulletin_id)
        upload = request.files.get("document_file")
        source_name = ""
        if upload is not None and upload.filename:
            source_name = upload.filename
            script = desk.prepare_upload(user_id, upload.filename, upload.read(), with_opening)
        else:
            script = desk.prepare_script(user_id, request.form.get("document", ""), with_opening)
    except LoaError as exc:
        _report(exc)
        return render_template("bulletins/new.html", document=request.form.get("document", ""))
    return render_template("bulletins/script.html", script=script, source_name=source_name)


@bp.route("/recording", methods=["POST"])
@login_required
def upload_recording() -> Response:
    _require_writer()  # before looking at the upload: a refusal is a refusal, not a form error
    service = get_service()
    upload = request.files.get("recording")
    if upload is None or not upload.filename:
        flash(_("Chọn một tệp ghi âm (mp3, m4a, ogg, wav).") + " (recording)", "error")
        return redirect(url_for("bulletins.new"))
    with tempfile.TemporaryDirectory(dir=service.settings.data_dir) as tmp:
        path = Path(tmp) / "upload"
        upload.save(path)
        try:
            bulletin_id = service.bulletins.create_recording_bulletin(
                _user_id(),
                request.form.get("title", ""),
                path,
                upload.filename,
                internal=_checked("internal"),
            )
        except LoaError as exc:
            _report(exc)
            return redirect(url_for("bulletins.new"))
    flash(_("Đã lưu bản ghi âm."), "info")
    return _detail(bulletin_id)


@bp.route("/<int:bulletin_id>")
@login_required
def detail(bulletin_id: int) -> str:
    try:
        shown = _desk().view(_user_id(), bulletin_id, with_targets=True)
    except LoaError as exc:
        _report(exc)
        raise
    return render_template(
        "bulletins/detail.html",
        bulletin=shown.bulletin,
        may=shown.may,
        history=shown.history,
        schedules=shown.schedules,
        zones=shown.zones,
        devices=shown.devices,
        weekdays=list(enumerate(WEEKDAY_LABELS)),
        preview=request.args.get("preview", ""),
    )


@bp.route("/<int:bulletin_id>/edit", methods=["GET", "POST"])
@login_required
def edit(bulletin_id: int) -> str | Response:
    desk = _desk()
    if request.method == "POST":
        try:
            desk.edit(
                _user_id(), bulletin_id, request.form.get("title", ""), request.form.get("text")
            )
        except ValidationError as exc:
            _report(exc)
        except LoaError as exc:
            _report(exc)
            raise
        else:
            flash(_("Đã sửa bản tin."), "info")
            return _detail(bulletin_id)
    try:
        shown = desk.view(_user_id(), bulletin_id)
    except LoaError as exc:
        _report(exc)
        raise
    if not shown.may.write:
        abort(403)
    if not shown.may.edit:
        if request.method == "GET":
            flash(_("Chỉ sửa được bản nháp hoặc bản tin bị trả lại."), "error")
        return _detail(bulletin_id)
    bulletin = shown.bulletin
    title = request.form.get("title", bulletin.title)
    text = request.form.get("text", bulletin.text)
    return render_template("bulletins/edit.html", bulletin=bulletin, title=title, text=text)


def _step(bulletin_id: int, done: str, step: str) -> Response:
    """Submit, approve or reject, then back to the bulletin (or the list it came from)."""
    desk, user_id = _desk(), _user_id()
    comment = request.form.get("comment", "")
    try:
        if step == "submit":
            desk.submit(user_id, bulletin_id)
        elif step == "approve":
            desk.approve(user_id, bulletin_id, comment)
        else:
            desk.reject(user_id, bulletin_id, comment)
    except LoaError as exc:
        _report(exc)
    else:
        flash(done, "info")
    return _detail(bulletin_id)


@bp.route("/<int:bulletin_id>/submit", methods=["POST"])
@login_required
def submit(bulletin_id: int) -> Response:
    return _step(bulletin_id, _("Đã trình duyệt bản tin."), "submit")


@bp.route("/<int:bulletin_id>/approve", methods=["POST"])
@login_required
def approve(bulletin_id: int) -> Response:
    return _step(bulletin_id, _("Đã duyệt bản tin."), "approve")


@bp.route("/<int:bulletin_id>/reject", methods=["POST"])
@login_required
def reject(bulletin_id: int) -> Response:
    return _step(bulletin_id, _("Đã trả lại bản tin."), "reject")


@bp.route("/<int:bulletin_id>/preview", methods=["POST"])
@login_required
def preview(bulletin_id: int) -> Response:
    try:
        sha256 = _desk().preview(_user_id(), bulletin_id)
    except LoaError as exc:
        _report(exc)
        return _detail(bulletin_id)
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id, preview=sha256))


@bp.route("/<int:bulletin_id>/schedule", methods=["POST"])
@login_required
def schedule(bulletin_id: int) -> Response:
    form = request.form
    kind = form.get("kind", "daily")
    try:
        get_service().scheduling.schedule(
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
                lunar_days=form.get(
                    "lunar_year_days" if kind == "lunar_yearly" else "lunar_days", ""
                ),
                lunar_month=form.get("lunar_month", ""),
            ),
        )
    except LoaError as exc:
        if isinstance(exc, ValidationError) and exc.code == "unknown_bulletin":
            abort(404)  # the URL names it (another commune's too): not a field of the form
        _report(exc)
    else:
        flash(_("Đã đặt lịch phát."), "info")
    return _detail(bulletin_id)


@bp.route("/<int:bulletin_id>/send", methods=["POST"])
@login_required
def send(bulletin_id: int) -> Response:
    form = request.form
    try:
        broadcast_id = _desk().broadcast_bulletin(
            _user_id(),
            bulletin_id,
            form.getlist("zones"),
            form.get("priority", "normal"),
            form.get("repeat", "1"),
            device_ids=form.getlist("devices"),
        )
    except LoaError as exc:
        _report(exc)
        return _detail(bulletin_id)
    return redirect(url_for("announce.detail", broadcast_id=broadcast_id))


@bp.route("/schedules/<int:schedule_id>/cancel", methods=["POST"])
@login_required
def cancel_schedule(schedule_id: int) -> Response:
    """Hủy lịch, from the schedule list or the week calendar (`next` brings the person back)."""
    try:
        get_service().scheduling.cancel(_user_id(), schedule_id)
    except LoaError as exc:
        _report(exc)
    else:
        flash(_("Đã hủy lịch phát."), "info")
    return redirect(_back(url_for("bulletins.index")))
