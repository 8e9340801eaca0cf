"""Login and logout (Flask-Login sessions); the current user as a small value object.

A browser that signs in gets a long-lived "known device" cookie (signed with the app's secret,
HttpOnly, SameSite=Strict, sent only to /auth/): it names a random device id and the users who
signed in on it, so the sign-in limits (`broadcast.desks.sign_in`) count that device's attempts
apart and a stranger's failures never block it.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from broadcast.const import ZoneKind
from broadcast.desks.sign_in import KnownDevice, SignedInUser
from broadcast.people import permissions
from broadcast.people.permissions import Action
from web import get_service

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("auth", __name__, url_prefix="/auth")
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = lazy_gettext("Vui lòng đăng nhập.")
login_manager.localize_callback = str  # flash the text in the request's language
login_manager.session_protection = "strong"

KNOWN_DEVICE_COOKIE = "loa_known_device"
KNOWN_DEVICE_LIFETIME = timedelta(days=365)  # renewed at every sign-in on that device
KNOWN_DEVICE_MAX_USERS = 10  # a shared office computer; the oldest user is forgotten first
_KNOWN_DEVICE_SALT = "loa-known-device"


@dataclass(frozen=True)
class CurrentUser(UserMixin):
    """A detached snapshot of the user row, so templates never touch a closed session."""

    id: int
    username: str
    role: str
    zone_id: str | None
    full_name: str
    locale: str | None = None

    credential_stamp: str = ""

    def can(self, action: Action | str) -> bool:
        """Whether `permissions` lets this user's role do `action`: what the pages offer."""
        return permissions.allowed(self.role, Action(action))

    def get_id(self) -> str:
        """The session remembers the user and a stamp of their password: a new password (set
        by themself or reset by an admin) ends every other session at its next request."""
        return f"{self.id}:{self.credential_stamp}"

    @classmethod
    def of(cls, user: SignedInUser) -> CurrentUser:
        return cls(
            user.id,
            user.username,
            user.role,
            user.zone_id,
            user.full_name,
            user.locale,
            user.credential_stamp,
        )


def can(action: str) -> bool:
    """The templates' `can("announce")`: whether the signed-in user may do an `Action` (an
    unknown action name fails the page rather than hiding a button)."""
    return bool(current_user.is_authenticated) and current_user.can(action)


def village_announcer() -> bool:
    """The templates' `village_announcer()`: whether the signed-in user announces to one
    village only (a village head, whose dashboard leads with the urgent button)."""
    if not current_user.is_authenticated or not current_user.can("announce"):
        return False
    return permissions.zone_kinds(current_user.role) == (ZoneKind.VILLAGE,)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.jinja_env.globals.update(can=can, village_announcer=village_announcer)


@login_manager.user_loader
def load_user(session_id: str) -> CurrentUser | None:
    user_id, _, stamp = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = get_service().sign_in.signed_in(int(user_id), stamp)
    return None if user is None else CurrentUser.of(user)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int, dict[str, str]]:
    if request.method != "POST":
        return render_template("auth/login.html", username="")
    username = request.form.get("username", "")[:80]
    password = request.form.get("password", "")
    address = request.remote_addr or "?"
    device = _known_device()
    attempt = get_service().sign_in.sign_in(username, password, address, device)
    if not attempt.allowed:
        _LOGGER.warning(
            "login of %r from %s (%s) refused for %d s: rate limit",
            username,
            address,
            attempt.source,
            attempt.retry_after_s,
        )
        flash(_retry_message(attempt.retry_after_s), "error")
        page = render_template("auth/login.html", username=username)
        return page, 429, {"Retry-After": str(attempt.retry_after_s)}
    current = CurrentUser.of(attempt.user) if attempt.user is not None else None
    if current is None:
        _LOGGER.warning("failed login for %r from %s", username, address)
        flash(_("Sai tên đăng nhập hoặc mật khẩu."), "error")
        return render_template("auth/login.html", username=username)
    login_user(current)
    _LOGGER.info("login %s from %s", current.username, address)
    target = request.args.get("next", "")
    if not target.startswith("/") or urlsplit(target).netloc or target.startswith("//"):
        target = url_for("dashboard.index")
    response = redirect(target)
    _remember_device(response, device, current.id)
    return response


def _retry_message(retry_after_s: int) -> str:
    if retry_after_s < 60:
        return _(
            "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau %(seconds)s giây.",
            seconds=retry_after_s,
        )
    return _(
        "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau %(minutes)s phút.",
        minutes=math.ceil(retry_after_s / 60),  # never sooner than the limit allows
    )


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=_KNOWN_DEVICE_SALT)


def _known_device() -> KnownDevice | None:
    """The device this browser's cookie names, if the cookie is ours, intact and not expired."""
    cookie = request.cookies.get(KNOWN_DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        data = _device_serializer().loads(
            cookie, max_age=int(KNOWN_DEVICE_LIFETIME.total_seconds())
        )
    except BadSignature:
        _LOGGER.warning("known-device cookie from %s rejected: bad signature", request.remote_addr)
        return None
    if not isinstance(data, dict):
        return None
    device_id, user_ids = data.get("device"), data.get("users")
    if not isinstance(device_id, str) or not isinstance(user_ids, list):
        return None
    return KnownDevice(device_id, tuple(i for i in user_ids if isinstance(i, int)))


def _remember_device(response: Response, device: KnownDevice | None, user_id: int) -> None:
    """Set (or renew) the known-device cookie with this user at the front of its list."""
    device_id = device.device_id if device is not None else secrets.token_urlsafe(12)
    earlier = [] if device is None else [i for i in device.user_ids if i != user_id]
    users = [user_id, *earlier][:KNOWN_DEVICE_MAX_USERS]
    response.set_cookie(
        KNOWN_DEVICE_COOKIE,
        _device_serializer().dumps({"device": device_id, "users": users}),
        max_age=int(KNOWN_DEVICE_LIFETIME.total_seconds()),
        path=url_for("auth.login").rsplit("/", 1)[0] + "/",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Strict",
    )


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))
