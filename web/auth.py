"""Login and logout (Flask-Login sessions); the current user as a small value object."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import LoginManager, UserMixin, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from broadcast import accounts, audit
from broadcast.models import User
from web import get_service

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("auth", __name__, url_prefix="/auth")
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = lazy_gettext("Vui lòng đăng nhập.")
login_manager.localize_callback = str  # flash the text in the request's language
login_manager.session_protection = "strong"


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

    def get_id(self) -> str:
        """The session remembers the user and a stamp of their password: a new password (set
        by themself or reset by an admin) ends every other session at its next request."""
        return f"{self.id}:{self.credential_stamp}"

    @classmethod
    def from_row(cls, user: User) -> CurrentUser:
        return cls(
            user.id,
            user.username,
            user.role,
            user.zone_id,
            user.full_name,
            user.locale,
            credential_stamp(user),
        )


def credential_stamp(user: User) -> str:
    return hashlib.sha256(f"loa-session:{user.password_hash}".encode()).hexdigest()[:16]


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


@login_manager.user_loader
def load_user(session_id: str) -> CurrentUser | None:
    user_id, _, stamp = session_id.partition(":")
    with get_service().db.session() as session:
        user = session.get(User, int(user_id)) if user_id.isdigit() else None
        if user is None or not user.active or stamp != credential_stamp(user):
            return None
        return CurrentUser.from_row(user)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int, dict[str, str]]:
    if request.method == "POST":
        username = request.form.get("username", "")[:80]
        password = request.form.get("password", "")
        address = request.remote_addr or "?"
        with get_service().db.session() as session:
            limit = accounts.login_limit(session, username, address)
            if not limit.allowed:
                _LOGGER.warning("login of %r from %s refused: rate limit", username, address)
                minutes = max(1, round(limit.retry_after_s / 60))
                flash(
                    _(
                        "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau %(minutes)s phút.",
                        minutes=minutes,
                    ),
                    "error",
                )
                page = render_template("auth/login.html")
                return page, 429, {"Retry-After": str(limit.retry_after_s)}
            user = accounts.authenticate(session, username, password)
            accounts.record_login(session, username, address, success=user is not None)
            if user is None:
                audit.record(session, None, audit.Action.LOGIN_FAILED, f"username:{username}")
            else:
                audit.record(session, user, audit.Action.LOGIN, f"user:{user.id}")
            current = CurrentUser.from_row(user) if user is not None else None
        if current is not None:
            login_user(current)
            _LOGGER.info("login %s from %s", current.username, address)
            target = request.args.get("next", "")
            if not target.startswith("/") or urlsplit(target).netloc or target.startswith("//"):
                target = url_for("dashboard.index")
            return redirect(target)
        _LOGGER.warning("failed login for %r from %s", username, address)
        flash(_("Sai tên đăng nhập hoặc mật khẩu."), "error")
    return render_template("auth/login.html")


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))
