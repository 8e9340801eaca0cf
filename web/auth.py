"""Login and logout (Flask-Login sessions); the current user as a small value object."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from broadcast import accounts
from broadcast.models import User
from web import get_service

_LOGGER = logging.getLogger(__name__)
bp = Blueprint("auth", __name__, url_prefix="/auth")
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Vui lòng đăng nhập."


@dataclass(frozen=True)
class CurrentUser(UserMixin):
    """A detached snapshot of the user row, so templates never touch a closed session."""

    id: int
    username: str
    role: str
    zone_id: str | None
    full_name: str

    def get_id(self) -> str:
        return str(self.id)

    @classmethod
    def from_row(cls, user: User) -> CurrentUser:
        return cls(user.id, user.username, user.role, user.zone_id, user.full_name)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


@login_manager.user_loader
def load_user(user_id: str) -> CurrentUser | None:
    with get_service().db.session() as session:
        user = session.get(User, int(user_id)) if user_id.isdigit() else None
        return CurrentUser.from_row(user) if user is not None and user.active else None


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        with get_service().db.session() as session:
            user = accounts.authenticate(session, username, password)
            current = CurrentUser.from_row(user) if user is not None else None
        if current is not None:
            login_user(current)
            _LOGGER.info("login %s from %s", current.username, request.remote_addr)
            target = request.args.get("next", "")
            if not target.startswith("/") or urlsplit(target).netloc or target.startswith("//"):
                target = url_for("dashboard.index")
            return redirect(target)
        _LOGGER.warning("failed login for %r from %s", username, request.remote_addr)
        flash("Sai tên đăng nhập hoặc mật khẩu.", "error")
    return render_template("auth/login.html")


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))
