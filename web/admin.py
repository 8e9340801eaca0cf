"""Administration pages (quản trị): users, zones, receivers (config file and QR code) and the
audit log. Admins only: `broadcast.desks.administration` checks the role on every call, and a
refusal is a 403 here. The desk also keeps each admin inside its zone: the lists are its
subtree, anything else reads as missing (404), and the choices a form offers (roles and their
zones, kinds of zone and their parents) are the desk's, so a page offers nothing it refuses."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from broadcast.desks import reporting
from broadcast.desks.administration import ZoneChoice
from broadcast.errors import ValidationError
from web import get_service
from web.i18n import error_text

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")
Page = str | tuple[str, int]


def _user_id() -> int:
    """The signed-in user; the desk checks on every call that they are active and may act."""
    return int(current_user.id)


def _flash_invalid(error: ValidationError) -> None:
    flash(_("Chưa lưu được: %(message)s (%(field)s)", message=error_text(error), field=error.field),
          "error")  # fmt: skip


def _private(page: str) -> Response:
    """A page that shows a secret once: never cached."""
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/")
@login_required
def index() -> Response:
    get_service().admin.list_users(_user_id())  # admins only, even for the redirect
    return redirect(url_for("admin.users"))


# --- users ---------------------------------------------------------------------------------


def _choices_by_value(
    choices: dict[str, list[ZoneChoice]] | dict[str, tuple[ZoneChoice | None, ...]],
) -> list[tuple[ZoneChoice, str]]:
    """Each zone offered for some key (a role, a kind) once, in the desk's order, with the
    keys it fits ("admin officer"): one select whose options follow another's value."""
    found: dict[str, tuple[ZoneChoice, list[str]]] = {}
    for key, zones in choices.items():
        for zone in zones:
            choice = zone if zone is not None else ZoneChoice("", "", "")
            found.setdefault(choice.id, (choice, []))[1].append(key)
    return [(choice, " ".join(keys)) for choice, keys in found.values()]


def _users_page(user_id: int, form: dict[str, str], status: int = 200) -> Page:
    service = get_service()
    users = service.admin.list_users(user_id)
    choices = service.admin.user_zone_choices(user_id)
    if form["role"] not in choices:
        form = {**form, "role": next(iter(choices), "")}
    page = render_template(
        "admin/users.html",
        users=users,
        roles=tuple(choices),
        zone_options=_choices_by_value(choices),
        form=form,
        me=user_id,
    )
    return (page, status) if status != 200 else page


@bp.route("/users", methods=["GET", "POST"])
@login_required
def users() -> Page | Response:
    user_id = _user_id()
    form = {"username": "", "full_name": "", "role": "officer", "zone": ""}
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in form}
        try:
            created = get_service().admin.create_user(
                user_id,
                form["username"],
                form["role"],
                zone_id=form["zone"],
                full_name=form["full_name"],
                password=request.form.get("password", ""),
            )
        except ValidationError as exc:
            _flash_invalid(exc)
            return _users_page(user_id, form, 400)
        if created.password is None:
            flash(_("Đã tạo tài khoản %(name)s.", name=created.username), "info")
            return redirect(url_for("admin.users"))
        return _private(render_template("admin/password.html", result=created, created=True))
    return _users_page(user_id, form)


@bp.route("/users/<int:target_id>/active", methods=["POST"])
@login_required
def set_active(target_id: int) -> Response:
    active = request.form.get("active") == "1"
    try:
        get_service().admin.set_active(_user_id(), target_id, active)
    except ValidationError as exc:
        _flash_invalid(exc)
    else:
        flash(_("Đã mở khóa tài khoản.") if active else _("Đã khóa tài khoản."), "info")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:target_id>/password", methods=["POST"])
@login_required
def reset_password(target_id: int) -> Response:
    result = get_service().admin.reset_password(_user_id(), target_id)
    return _private(render_template("admin/password.html", result=result, created=False))


@bp.route("/users/<int:target_id>/role", methods=["POST"])
@login_required
def change_role(target_id: int) -> Response:
    try:
        get_service().admin.change_role(
            _user_id(), target_id, request.form.get("role", ""), request.form.get("zone", "")
        )
    except ValidationError as exc:
        _flash_invalid(exc)
    else:
        flash(_("Đã đổi vai trò."), "info")
    return redirect(url_for("admin.users"))


# --- zones ---------------------------------------------------------------------------------


@bp.route("/zones", methods=["GET", "POST"])
@login_required
def zones() -> Page | Response:
    service = get_service()
    user_id = _user_id()
    form = {"kind": "", "name": "", "parent": "", "code": "", "id": ""}
    status = 200
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in form}
        try:
            zone = service.admin.create_zone(
                user_id, form["kind"], form["name"], form["parent"], form["code"], form["id"]
            )
        except ValidationError as exc:
            _flash_invalid(exc)
            status = 400
        else:
            flash(_("Đã thêm %(name)s.", name=zone.name), "info")
            return redirect(url_for("admin.zones"))
    found = service.admin.list_zones(user_id)
    offer = service.admin.zone_form(user_id)
    page = render_template(
        "admin/zones.html",
        zones=found,
        kinds=offer.kinds,
        parent_options=_choices_by_value(offer.parents),
        own_zone=current_user.zone_id,
        form=form,
        voice_page=service.admin.voice_page(user_id),
    )
    return (page, status) if status != 200 else page


@bp.route("/zones/<zone_id>/voice", methods=["POST"])
@login_required
def zone_voice(zone_id: str) -> Response:
    """The voice a province or commune is read in (`loa voice add` installs voices)."""
    try:
        get_service().admin.set_voice(_user_id(), zone_id, request.form.get("voice", ""))
    except ValidationError as exc:
        _flash_invalid(exc)
    else:
        flash(_("Đã lưu giọng đọc."), "info")
    return redirect(url_for("admin.zones"))


@bp.route("/zones/<zone_id>/name", methods=["POST"])
@login_required
def rename_zone(zone_id: str) -> Response:
    """A zone's new name and, for a province or a commune, administrative code."""
    try:
        get_service().admin.edit_zone(
            _user_id(), zone_id, request.form.get("name", ""), request.form.get("code")
        )
    except ValidationError as exc:
        _flash_invalid(exc)
    else:
        flash(_("Đã lưu khu vực."), "info")
    return redirect(url_for("admin.zones"))


# --- devices -------------------------------------------------------------------------------


@bp.route("/devices", methods=["GET", "POST"])
@login_required
def devices() -> Page | Response:
    service = get_service()
    user_id = _user_id()
    form = {"id": "", "name": "", "zone": ""}
    status = 200
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in form}
        try:
            service.admin.register_device(user_id, form["id"], form["zone"], form["name"])
        except ValidationError as exc:
            _flash_invalid(exc)
            status = 400
        else:
            flash(
                _("Đã đăng ký cụm loa %(id)s. Máy chủ MQTT tích hợp nhận cụm loa mới ngay;"
                  " nếu dùng mosquitto, chạy loa mqtt-config rồi nạp lại mosquitto.",
                  id=form["id"].strip()),
                "info",
            )  # fmt: skip
            return redirect(url_for("admin.device", device_id=form["id"].strip()))
    try:
        number = reporting.parse_page(request.args.get("page", "1"))
    except ValidationError:
        number = 1
    try:
        listed = service.admin.device_page(user_id, number, request.args.get("zone", ""))
    except ValidationError as exc:
        _flash_invalid(exc)
        listed, status = service.admin.device_page(user_id, number), 400
    page = render_template(
        "admin/devices.html",
        listed=listed,
        zones=service.admin.list_zones(user_id),
        form=form,
    )
    return (page, status) if status != 200 else page


@bp.route("/devices/<device_id>")
@login_required
def device(device_id: str) -> str:
    row = get_service().admin.get_device(_user_id(), device_id)
    return render_template("admin/device.html", device=row, show_qr=False)


@bp.route("/devices/<device_id>/qr")
@login_required
def device_qr(device_id: str) -> Response:
    admin = get_service().admin
    row = admin.get_device(_user_id(), device_id)
    ca_file = admin.device_qr_ca_file(_user_id(), device_id) if row.has_config else ""
    return _private(
        render_template("admin/device.html", device=row, show_qr=True, qr_ca_file=ca_file)
    )


@bp.route("/devices/<device_id>/config.json")
@login_required
def device_config(device_id: str) -> Response:
    data = get_service().admin.device_config(_user_id(), device_id)
    response = Response(data, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{device_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/devices/<device_id>/config.svg")
@login_required
def device_config_svg(device_id: str) -> Response | tuple[str, int]:
    try:
        code = get_service().admin.device_config_qr(_user_id(), device_id)
    except ValidationError as exc:
        return error_text(exc), 422
    response = Response(code.svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the audit log -------------------------------------------------------------------------


@bp.route("/audit")
@login_required
def audit_log() -> Page:
    try:
        number = reporting.parse_page(request.args.get("page", "1"))
    except ValidationError:
        number = 1
    page = get_service().admin.audit_page(_user_id(), number)
    return render_template("admin/audit.html", log=page)
