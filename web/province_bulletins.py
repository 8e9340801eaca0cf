"""Bulletins from the province (Thông tư 39/2020/TT-BTTTT): the province editor writes one and
sends it down to communes with a priority, then follows each commune's decision; the commune
officer's inbox ("Bản tin từ tỉnh") places a bulletin in a slot of the programme, declines it
with a reason, or reorders the priority items heading a run.

A thin shell over `broadcast.desks.source_bulletins` (who may, where, and every rule) and the
bulletins desk (writing: text → broadcast script → speech, or a recording).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from broadcast import clock
from broadcast.desks.source_bulletins import SourceBulletinDesk
from broadcast.errors import LoaError, NotFound, PermissionDenied, ValidationError
from web import get_service
from web.i18n import error_text

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("province_bulletins", __name__, url_prefix="/province-bulletins")
ALL = "all"


def _user_id() -> int:
    return int(current_user.id)


def _desk() -> SourceBulletinDesk:
    return get_service().source_bulletins


def _report(exc: LoaError) -> None:
    """403 and 404 as such; anything else a message naming the field, on the page."""
    if isinstance(exc, PermissionDenied):
        abort(403)
    if isinstance(exc, NotFound):
        abort(404)
    if isinstance(exc, ValidationError):
        flash(f"{error_text(exc)} ({exc.field})", "error")
    else:
        flash(error_text(exc), "error")


def _chosen_communes() -> list[str] | None:
    """The form's communes; None when it asks for every commune of the province."""
    picked = request.form.getlist("communes")
    return None if ALL in picked else picked


def _province_page(form: dict[str, str] | None = None) -> str:
    desk, user_id = _desk(), _user_id()
    try:
        communes = desk.communes(user_id)
        sent = desk.sent(user_id)
        unsent = desk.unsent(user_id)
    except LoaError as exc:
        _report(exc)
        raise
    return render_template(
        "province_bulletins/index.html",
        communes=communes,
        sent=sent,
        unsent=unsent,
        form=form or {},
    )


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> str | Response:
    """The province editor's page: write and send down; every bulletin sent, per commune."""
    if not _desk().may_send_down(_user_id()):
        abort(403)
    if request.method == "GET":
        return _province_page()
    form = request.form
    service, user_id = get_service(), _user_id()
    kept = {"title": form.get("title", ""), "text": form.get("text", "")}
    try:
        if form.get("action") == "script":
            script = service.bulletins.prepare_script(user_id, form.get("text", ""), False)
            return _province_page({"title": kept["title"] or script.title, "text": script.text})
        upload = request.files.get("recording")
        if upload is not None and upload.filename:
            with tempfile.TemporaryDirectory(dir=service.settings.data_dir) as tmp:
                path = Path(tmp) / "upload"
                upload.save(path)
                bulletin_id = service.bulletins.create_recording_bulletin(
                    user_id, form.get("title", ""), path, upload.filename
                )
        else:
            bulletin_id = service.bulletins.create_bulletin(
                user_id, form.get("title", ""), form.get("text", "")
            )
    except LoaError as exc:
        _report(exc)
        return _province_page(kept)
    return _send(bulletin_id)


def _send(bulletin_id: int) -> Response:
    try:
        sent = _desk().send_down(
            _user_id(), bulletin_id, _chosen_communes(), request.form.get("priority", "normal")
        )
    except LoaError as exc:
        _report(exc)
    else:
        flash(_("Đã gửi bản tin xuống %(count)s xã.", count=len(sent)), "info")
    return redirect(url_for("province_bulletins.detail", bulletin_id=bulletin_id))


@bp.route("/<int:bulletin_id>")
@login_required
def detail(bulletin_id: int) -> str:
    """One bulletin in each commune: received, placed (when), played (deliveries), declined
    (why); and the form sending it to more communes."""
    desk, user_id = _desk(), _user_id()
    try:
        status = desk.status(user_id, bulletin_id)
        communes = desk.communes(user_id)
    except LoaError as exc:
        _report(exc)
        raise
    have = {row.commune_id for row in status.communes}
    return render_template(
        "province_bulletins/detail.html",
        sent=status,
        communes=[commune for commune in communes if commune.id not in have],
    )


@bp.route("/<int:bulletin_id>/send", methods=["POST"])
@login_required
def send(bulletin_id: int) -> Response:
    return _send(bulletin_id)


@bp.route("/inbox")
@login_required
def inbox() -> str:
    """The commune's "Bản tin từ tỉnh"."""
    try:
        shown = _desk().inbox(_user_id())
    except LoaError as exc:
        _report(exc)
        raise
    return render_template("province_bulletins/inbox.html", inbox=shown)


def _to_inbox() -> Response:
    return redirect(url_for("province_bulletins.inbox"))


@bp.route("/inbox/<int:forward_id>/place", methods=["POST"])
@login_required
def place(forward_id: int) -> Response:
    form = request.form
    try:
        _desk().place(
            _user_id(),
            forward_id,
            form.get("run_at", ""),
            form.getlist("zones") or None,
            form.get("repeat", "1"),
        )
    except LoaError as exc:
        _report(exc)
    else:
        flash(_("Đã xếp bản tin vào lịch phát."), "info")
    return _to_inbox()


@bp.route("/inbox/<int:forward_id>/head", methods=["POST"])
@login_required
def head(forward_id: int) -> Response:
    try:
        run_at = _desk().head(_user_id(), forward_id)
    except LoaError as exc:
        _report(exc)
    else:
        flash(_("Bản tin sẽ phát đầu lượt phát lúc %(at)s.", at=clock.format_local(run_at)), "info")
    return _to_inbox()


@bp.route("/inbox/<int:forward_id>/decline", methods=["POST"])
@login_required
def decline(forward_id: int) -> Response:
    try:
        _desk().decline(_user_id(), forward_id, request.form.get("reason", ""))
    except LoaError as exc:
        _report(exc)
    else:
        flash(_("Đã từ chối bản tin; tỉnh sẽ thấy lý do."), "info")
    return _to_inbox()


@bp.route("/inbox/<int:forward_id>/move", methods=["POST"])
@login_required
def move(forward_id: int) -> Response:
    step = -1 if request.form.get("direction") == "up" else 1
    try:
        _desk().move(_user_id(), forward_id, step)
    except LoaError as exc:
        _report(exc)
    else:
        flash(_("Đã đổi thứ tự phát."), "info")
    return _to_inbox()
