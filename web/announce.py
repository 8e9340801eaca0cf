"""Urgent announcements (phát thông báo khẩn), phone first: compose, confirm, watch it play.

1. `GET /announce/` — the form, in one of three modes: a typed text, a recording (a file input;
   `record.js` adds the phone's microphone), or a notice template
   (`broadcast.desks.notice_templates`) whose blanks the person fills. Targets, priority (khẩn cấp
   by default), repeat (3) and "Nội bộ" (kept off the commune's public replay page: offered to
   everyone who announces, since it only hides their own notice).
2. `POST /announce/` — everything is checked by the domain
   (`service.announcements.plan`, the same checks `announce` makes, including who may reach
   which village) and a confirmation page says exactly what will play where. Nothing is sent yet. A
   recording is imported and stored now (`store_recording`), so it is never uploaded
   twice. What is pending travels in a signed hidden field (a long text does not fit in a cookie),
   bound to the user, valid for PENDING_MAX_AGE_S and usable once: its nonce is kept in the session
   and spent on sending, so a double tap sends once.
3. `POST /announce/confirm` — "Xác nhận phát" sends (`announce` / `announce_recording`), "Sửa lại"
   returns to the filled form.
4. `GET /announce/<id>` — delivery per loudspeaker cluster, live through
   `GET /announce/<id>/events` (Server-Sent Events; `/status.json` stays the no-SSE fallback),
   with "Dừng phát" and "Đính chính" (`cancel`).

Every read and every change goes through the announcements desk (`service.announcements`),
which returns plain data: this module holds the form, the confirmation token and the stream.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from broadcast import clock
from broadcast.const import MAX_REPEAT
from broadcast.desks import notice_templates
from broadcast.desks.announcements import Progress
from broadcast.errors import Conflict, LoaError, NotFound, PermissionDenied, ValidationError
from broadcast.service import BroadcastService
from web import get_service
from web.i18n import error_text
from web.serialize import broadcast_json, delivery_progress_json

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("announce", __name__, url_prefix="/announce")
MODES = ("text", "record", "template")
PRIORITIES = ("emergency", "priority")  # what this page offers; the domain knows them all
DEFAULT_REPEAT = "3"
PENDING_MAX_AGE_S = 30 * 60
MAX_PENDING = 5  # confirmation pages a person may have open at once
MAX_RECORD_S = 5 * 60  # what record.js lets a person record in one go
_PENDING_SALT = "loa.announce.pending"
_KEPT_SALT = "loa.announce.recording"
_SESSION_KEY = "announce_pending"

# the event stream (app.config may override, e.g. in tests)
EVENTS_POLL_S = 0.5  # database reads at most this often
EVENTS_KEEPALIVE_S = 15.0
EVENTS_MAX_S = 600.0  # then the stream ends; the page's EventSource opens a new one
EVENTS_RETRY_MS = 3000


def _field_labels() -> dict[str, str]:
    return {
        "text": _("Nội dung thông báo"),
        "zones": _("Phát tới"),
        "devices": _("Phát tới"),
        "priority": _("Mức ưu tiên"),
        "repeat": _("Số lần phát"),
        "recording": _("Ghi âm"),
        "template": _("Mẫu thông báo"),
        "correction": _("Lời đính chính"),
        "broadcast": _("Lượt phát"),
    }


def _recording_problems() -> dict[str, str]:
    return {
        "missing": _("không tìm thấy tệp, hãy ghi lại"),
        "empty": _("tệp rỗng, hãy ghi lại"),
        "too_large": _("tệp quá lớn"),
        "not_audio": _("tệp này không phải bản ghi âm"),
        "no_sound_track": _("tệp không có tiếng"),
        "unsupported": _("định dạng âm thanh chưa hỗ trợ"),
        "damaged": _("tệp bị hỏng, không đọc hết được; hãy ghi lại"),
        "too_short": _("bản ghi quá ngắn (ít nhất nửa giây)"),
        "too_long": _("bản ghi quá dài (tối đa 30 phút)"),
        "silent": _("bản ghi im lặng, không nghe thấy tiếng; kiểm tra micrô rồi ghi lại"),
    }


def _message(exc: ValidationError, template: notice_templates.NoticeTemplate | None = None) -> str:
    """A refusal in the page's language, naming the field (a blank of `template` by its
    label)."""
    blank = template.field(exc.field) if template is not None else None
    if template is not None and blank is not None and exc.code == "required":
        return _(
            "Chưa điền “%(label)s” của mẫu “%(title)s”",
            label=_(blank.label),
            title=_(template.title),
        )
    label = _field_labels().get(exc.field)
    if exc.code == "no_speech":  # only "~", "!!!" or control characters: nothing to read
        detail = _("chưa có chữ nào để đọc, hãy nhập lời thông báo bằng chữ")
    elif exc.field == "recording":
        detail = _recording_problems().get(exc.code) or _("không xử lý được bản ghi âm")
    elif exc.field in ("text", "correction") and exc.code in ("empty", "too_long"):
        detail = _("chưa nhập nội dung") if exc.code == "empty" else _("nội dung quá dài")
    elif exc.field == "repeat":
        detail = _("phải là một số từ 1 đến %(max)s", max=MAX_REPEAT)
    elif exc.field == "priority":
        detail = _("hãy chọn Khẩn cấp hoặc Ưu tiên")
    elif exc.field == "broadcast" and exc.code == "ended":
        detail = _("lượt phát này đã kết thúc, không còn gì để dừng")
    elif exc.field in ("zones", "devices") and exc.code == "required":
        detail = _("hãy chọn ít nhất một khu vực hoặc cụm loa")
    elif exc.field in ("zones", "devices") and exc.code in ("unknown_zone", "unknown_device"):
        detail = _("khu vực hoặc cụm loa không tồn tại")
    else:  # a template's blank, a cancel refused, a zone out of reach: the domain's message
        detail = error_text(exc)
    if label is None:  # a template's blank: its message names it
        return detail
    return f"{label}: {detail}"


# --- the form ---------------------------------------------------------------------------------


@dataclass
class Draft:
    """What the form holds: the content (by mode), targets, priority and repeat."""

    mode: str = "text"
    text: str = ""
    template: str = ""
    values: dict[str, str] | None = None
    recording: str = ""  # sha256 of a recording already stored (kept across "Sửa lại")
    duration_s: float = 0.0
    zones: list[str] | None = None
    devices: list[str] | None = None
    priority: str = "emergency"
    repeat: str = DEFAULT_REPEAT
    internal: bool = False  # nội bộ: kept off the commune's public replay page

    def as_pending(self, user_id: int, nonce: str) -> dict[str, Any]:
        return {
            "u": user_id,
            "n": nonce,
            "mode": self.mode,
            "text": self.text,
            "template": self.template,
            "values": self.values or {},
            "recording": self.recording,
            "duration_s": self.duration_s,
            "zones": self.zones or [],
            "devices": self.devices or [],
            "priority": self.priority,
            "repeat": self.repeat,
            "internal": self.internal,
        }

    @classmethod
    def from_pending(cls, data: Mapping[str, Any]) -> Draft:
        return cls(
            mode=str(data.get("mode", "text")),
            text=str(data.get("text", "")),
            template=str(data.get("template", "")),
            values={str(k): str(v) for k, v in dict(data.get("values") or {}).items()},
            recording=str(data.get("recording", "")),
            duration_s=float(data.get("duration_s") or 0.0),
            zones=[str(z) for z in data.get("zones") or []],
            devices=[str(d) for d in data.get("devices") or []],
            priority=str(data.get("priority", "emergency")),
            repeat=str(data.get("repeat", DEFAULT_REPEAT)),
            internal=data.get("internal") is True,
        )


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=salt)


def _user_id() -> int:
    return int(current_user.id)


def _draft_from_request(template_id: str = "") -> Draft:
    form = request.form
    mode = form.get("mode", "text")
    draft = Draft(
        mode=mode if mode in MODES else "text",
        text=form.get("text", ""),
        template=form.get("template", template_id),
        zones=form.getlist("zones"),
        devices=form.getlist("devices"),
        priority=form.get("priority", "emergency"),
        repeat=form.get("repeat", DEFAULT_REPEAT),
        internal=form.get("internal", "") in ("1", "on", "true"),
    )
    if draft.mode == "template":
        template = _template_or_none(draft.template)
        keys = [field.key for field in template.fields] if template else []
        draft.values = {key: form.get(f"f_{key}", "") for key in keys}
    return draft


def _template_or_none(template_id: str) -> notice_templates.NoticeTemplate | None:
    try:
        return notice_templates.get_template(template_id) if template_id else None
    except ValidationError:
        return None


def _require_announcer() -> None:
    """Refuse a role that may not announce before reading what it sent."""
    if not get_service().announcements.can_announce(_user_id()):
        abort(403)


def _render_form(draft: Draft, error: str = "", error_field: str = "", status: int = 200) -> Any:
    user_id = _user_id()
    try:
        reach = get_service().announcements.reach(user_id)
    except PermissionDenied:
        abort(403)
    if not draft.zones and not draft.devices and len(reach.zones) == 1:
        draft.zones = [reach.zones[0].id]
    template = _template_or_none(draft.template) if draft.mode == "template" else None
    kept = ""
    if draft.mode == "record" and draft.recording:
        kept = _serializer(_KEPT_SALT).dumps(
            {"u": user_id, "recording": draft.recording, "duration_s": draft.duration_s}
        )
    page = render_template(
        "announce/new.html",
        zones=reach.zones,
        devices=reach.receivers,
        draft=draft,
        template=template,
        templates=notice_templates.templates(),
        # titles and labels in the page's language; the text stays Vietnamese (read aloud)
        titles={item.id: _(item.title) for item in notice_templates.templates()},
        labels={field.key: _(field.label) for field in template.fields} if template else {},
        preview=template.preview(_) if template else "",
        kept=kept,
        error=error,
        error_field=error_field,
        priorities=PRIORITIES,
        max_repeat=MAX_REPEAT,
        max_upload=_max_upload(),
        max_upload_mb=f"{_max_upload() / 1048576:.3g}".replace(".", ","),
        max_record_s=MAX_RECORD_S,
    )
    return page, status


@bp.route("/", methods=["GET"])
@login_required
def new() -> Any:
    template_id = request.args.get("template", "")
    replay = request.args.get("replay", "")
    if replay:
        return _render_form(_replay_draft(replay))
    mode = request.args.get("mode", "template" if template_id else "text")
    draft = Draft(mode=mode if mode in MODES else "text", template=template_id)
    template = _template_or_none(template_id)
    if template is not None:
        draft.priority = template.priority.value
        draft.values = {field.key: "" for field in template.fields}
    return _render_form(draft)


@bp.route("/", methods=["POST"])
@login_required
def prepare() -> Any:
    """Check everything and show what will happen; send nothing."""
    _require_announcer()
    service = get_service()
    user_id = _user_id()
    draft = _draft_from_request()
    if draft.mode == "record":
        _keep_recording(user_id, draft)
    chosen = _template_or_none(draft.template) if draft.mode == "template" else None
    try:
        if draft.mode == "template":
            draft.text = notice_templates.fill(draft.template, draft.values or {})
        plan = service.announcements.plan(
            user_id,
            None if draft.mode == "record" else draft.text,
            draft.zones,
            draft.priority,
            draft.repeat,
            device_ids=draft.devices,
        )
        if draft.mode == "record":
            _take_recording(service, user_id, draft)
    except PermissionDenied:
        abort(403)
    except ValidationError as exc:
        why = _message(exc, chosen)
        return _render_form(draft, _("Chưa gửi được. %(why)s", why=why), exc.field)
    except LoaError as exc:
        return _render_form(draft, _("Chưa gửi được. %(why)s", why=error_text(exc)))
    nonce = secrets.token_urlsafe(12)
    pending_nonces = [n for n in session.get(_SESSION_KEY, []) if isinstance(n, str)]
    session[_SESSION_KEY] = [*pending_nonces, nonce][-MAX_PENDING:]
    token = _serializer(_PENDING_SALT).dumps(draft.as_pending(user_id, nonce))
    return render_template("announce/confirm.html", plan=plan, draft=draft, pending=token)


def _replay_draft(broadcast_id: str) -> Draft:
    """ "Phát lại bản ghi": the form in recording mode holding a live broadcast's recording,
    aimed where it went; the person reviews and confirms as for any recording."""
    if not broadcast_id.isdigit() or len(broadcast_id) > 12:
        abort(404)
    try:
        source = get_service().announcements.replay_source(_user_id(), int(broadcast_id))
    except PermissionDenied:
        abort(403)
    except (NotFound, Conflict):
        abort(404)
    return Draft(
        mode="record",
        recording=source.recording.sha256,
        duration_s=source.recording.duration_s,
        zones=list(source.zone_ids),
        devices=list(source.device_ids),
        priority="priority",
        internal=source.internal,
    )


def _keep_recording(user_id: int, draft: Draft) -> None:
    """The recording stored before "Sửa lại" (a signed field bound to the user), if any."""
    kept = request.form.get("kept", "")
    if not kept:
        return
    try:
        data = _serializer(_KEPT_SALT).loads(kept, max_age=PENDING_MAX_AGE_S)
    except BadSignature:
        return
    if isinstance(data, dict) and data.get("u") == user_id and data.get("recording"):
        draft.recording = str(data["recording"])
        draft.duration_s = float(data.get("duration_s") or 0.0)


def _take_recording(service: BroadcastService, user_id: int, draft: Draft) -> None:
    """A new upload is imported and stored; otherwise the one kept from before "Sửa lại"."""
    upload = request.files.get("recording")
    if upload is not None and upload.filename:
        with tempfile.TemporaryDirectory(dir=service.settings.data_dir) as tmp:
            path = Path(tmp) / "upload"
            upload.save(path)
            stored = service.announcements.store_recording(user_id, path, upload.filename)
        draft.recording, draft.duration_s = stored.sha256, stored.duration_s
    elif not draft.recording:
        raise ValidationError("recording", "no recording", code="missing")


@bp.route("/confirm", methods=["POST"])
@login_required
def confirm() -> Any:
    """ "Xác nhận phát" sends what the confirmation page showed; "Sửa lại" goes back to it."""
    service = get_service()
    user_id = _user_id()
    _require_announcer()
    try:
        data = _serializer(_PENDING_SALT).loads(
            request.form.get("pending", ""), max_age=PENDING_MAX_AGE_S
        )
    except SignatureExpired:
        flash(_("Trang xác nhận đã quá 30 phút. Vui lòng soạn lại thông báo."), "error")
        return redirect(url_for("announce.new"), 303)
    except BadSignature:
        abort(400)
    if not isinstance(data, dict) or data.get("u") != user_id:
        abort(400)
    draft = Draft.from_pending(data)
    if request.form.get("action") == "edit":
        return _render_form(draft)
    nonces = [n for n in session.get(_SESSION_KEY, []) if isinstance(n, str)]
    if data.get("n") not in nonces:
        flash(_("Thông báo này đã được gửi rồi (hoặc đã hết hạn)."), "info")
        return redirect(url_for("dashboard.index"), 303)
    session[_SESSION_KEY] = [n for n in nonces if n != data.get("n")]
    try:
        if draft.mode == "record":
            broadcast_id = service.announcements.announce_recording(
                user_id,
                draft.recording,
                draft.zones,
                draft.priority,
                draft.repeat,
                device_ids=draft.devices,
                internal=draft.internal,
            )
        else:
            template = _template_or_none(draft.template) if draft.mode == "template" else None
            broadcast_id = service.announcements.announce(
                user_id,
                draft.text,
                draft.zones,
                draft.priority,
                draft.repeat,
                title=template.title if template else "",
                device_ids=draft.devices,
                internal=draft.internal,
            )
    except PermissionDenied:
        abort(403)
    except ValidationError as exc:
        return _render_form(draft, _("Chưa gửi được. %(why)s", why=_message(exc)), exc.field)
    except LoaError as exc:
        return _render_form(draft, _("Chưa gửi được. %(why)s", why=error_text(exc)))
    flash(_("Đã gửi thông báo. Theo dõi từng cụm loa bên dưới."), "info")
    return redirect(url_for("announce.detail", broadcast_id=broadcast_id), 303)


def _max_upload() -> int:
    return int(current_app.config.get("MAX_CONTENT_LENGTH") or 0)


@bp.app_template_filter("mm_ss")
def mm_ss(seconds: float | None) -> str:
    """A duration as minutes and seconds: 75.4 → "1:15"."""
    whole = round(seconds or 0)
    return f"{whole // 60}:{whole % 60:02d}"


@bp.app_template_filter("local_hms")
def local_hms(iso: str | None) -> str:
    """An ISO time of the delivery view as the local clock reads it: "14:05:09"."""
    if not iso:
        return ""
    return clock.format_local(datetime.fromisoformat(iso), "%H:%M:%S")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error: RequestEntityTooLarge) -> Response:
    limit = f"{_max_upload() / 1048576:.3g}".replace(".", ",")
    flash(_("Ghi âm: tệp quá lớn (tối đa %(mb)s MB). Hãy ghi ngắn hơn.", mb=limit), "error")
    return redirect(url_for("announce.new", mode="record"), 303)


# --- the delivery page ----------------------------------------------------------------------


@bp.route("/<int:broadcast_id>")
@login_required
def detail(broadcast_id: int) -> str:
    """The delivery of the receivers the person may see (a village head: their own, also of a
    commune-wide broadcast), each named with its zone."""
    page = get_service().announcements.page(_user_id(), broadcast_id)
    return render_template(
        "announce/detail.html",
        broadcast=page.broadcast,
        progress=delivery_progress_json(page.progress),
        zone_names=page.zone_names,
        corrections=page.corrections,
        corrected=page.corrected,
        rights=page.rights,
        replay=page.replay,
    )


@bp.route("/<int:broadcast_id>/cancel", methods=["POST"])
@login_required
def cancel(broadcast_id: int) -> Response:
    """ "Dừng phát" (no text) or "Đính chính" (a text, required when that button was used)."""
    service = get_service()
    user_id = _user_id()
    correction = request.form.get("correction", "")
    if request.form.get("action") == "correct" and not correction.strip():
        flash(_("Chưa đính chính được. Lời đính chính: chưa nhập nội dung."), "error")
        return redirect(url_for("announce.detail", broadcast_id=broadcast_id))
    try:
        result = service.announcements.cancel(user_id, broadcast_id, correction)
    except PermissionDenied:
        abort(403)
    except NotFound:
        abort(404)
    except ValidationError as exc:
        flash(_("Chưa dừng được. %(why)s", why=_message(exc)), "error")
    except LoaError as exc:
        flash(_("Chưa dừng được. %(why)s", why=error_text(exc)), "error")
    else:
        if result.correction_id is not None and not result.stopped:
            flash(_("Lượt phát đã kết thúc; đang phát lời đính chính."), "info")
            return redirect(url_for("announce.detail", broadcast_id=result.correction_id))
        if result.correction_id is not None:
            flash(_("Đã dừng lượt phát và đang phát lời đính chính."), "info")
            return redirect(url_for("announce.detail", broadcast_id=result.correction_id))
        flash(_("Đã dừng lượt phát trên mọi cụm loa."), "info")
    return redirect(url_for("announce.detail", broadcast_id=broadcast_id))


@bp.route("/<int:broadcast_id>/status.json")
@login_required
def status(broadcast_id: int) -> Response:
    """The no-SSE fallback: the broadcast, and its live delivery view under `progress`."""
    live = get_service().announcements.live(_user_id(), broadcast_id)
    body = broadcast_json(live.broadcast)
    body["progress"] = delivery_progress_json(live.progress)
    return jsonify(body)


@dataclass(frozen=True)
class StreamLimits:
    poll_s: float
    keepalive_s: float
    max_s: float


@bp.route("/<int:broadcast_id>/events")
@login_required
def events(broadcast_id: int) -> Response:
    """Server-Sent Events: `state` (the delivery view) at once and on every change, a comment
    as keep-alive, then `end` when every delivery is final (`{"final": true}`) or after
    EVENTS_MAX_S (`{"final": false}`: the page opens a new stream)."""
    read = get_service().announcements.watch(_user_id(), broadcast_id)
    config = current_app.config
    limits = StreamLimits(
        poll_s=float(config.get("LOA_EVENTS_POLL_S", EVENTS_POLL_S)),
        keepalive_s=float(config.get("LOA_EVENTS_KEEPALIVE_S", EVENTS_KEEPALIVE_S)),
        max_s=float(config.get("LOA_EVENTS_MAX_S", EVENTS_MAX_S)),
    )
    response = Response(_event_stream(read, limits), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not hold events back
    return response


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _event_stream(read: Callable[[], Progress | None], limits: StreamLimits) -> Iterator[str]:
    started = time.monotonic()
    last_write = started
    last: dict[str, Any] | None = None
    yield f"retry: {EVENTS_RETRY_MS}\n\n"
    max_polls = int(limits.max_s / max(limits.poll_s, 0.01)) + 2  # the time limit, counted too
    for _poll in range(max_polls):
        found = read()
        if found is None:  # deleted meanwhile
            yield _sse("end", {"final": True})
            return
        progress = delivery_progress_json(found)
        now = time.monotonic()
        if progress != last:
            yield _sse("state", progress)
            last, last_write = progress, now
        if progress["final"]:
            yield _sse("end", {"final": True})
            return
        if now - started >= limits.max_s:
            break
        if now - last_write >= limits.keepalive_s:
            yield ": keep-alive\n\n"
            last_write = now
        time.sleep(limits.poll_s)
    yield _sse("end", {"final": False})
