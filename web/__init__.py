"""The Flask layer: a thin shell over `broadcast` (no business rules in views).

`create_app(service, test_config=None)` follows Flask's tutorial factory; one blueprint per
concern: auth (login), dashboard, announce (urgent announcements), media, api (JSON, token auth).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from broadcast import audit, clock
from broadcast.service import BroadcastService
from web.views import describe_schedule

_LOGGER = logging.getLogger(__name__)
csrf = CSRFProtect()

PRIORITY_LABELS = {"emergency": "Khẩn cấp", "priority": "Ưu tiên", "normal": "Thông thường"}
STATE_LABELS = {
    "idle": "Sẵn sàng",
    "fetching": "Đang tải",
    "playing": "Đang phát",
    "offline": "Mất kết nối",
    "queued": "Chờ gửi",
    "received": "Đã nhận lệnh",
    "fetched": "Đã tải âm thanh",
    "finished": "Đã phát xong",
    "failed": "Lỗi",
    "pending": "Đang chuẩn bị",
    "dispatched": "Đã gửi",
    "partial": "Phát một phần",
    "preempted": "Bị ngắt (tin khẩn hơn)",
    "scheduled": "Đã lên lịch",
    "cancelled": "Đã dừng",
    "stopped": "Đã dừng phát",
    "missed": "Lỡ giờ (máy chủ không chạy)",
}


def create_app(service: BroadcastService, test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=service.secrets.flask_secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=service.settings.public_url.startswith("https://"),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=service.settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["loa_service"] = service
    csrf.init_app(app)

    from web import announce, api, auth, bulletins, dashboard, i18n, media

    i18n.init_app(app, service.settings.data_dir / "translations")

    auth.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(announce.bp)
    app.register_blueprint(bulletins.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)

    app.jinja_env.filters["local_time"] = clock.format_local
    app.jinja_env.filters["zone_name"] = lambda zone_id, names: names.get(zone_id, zone_id)
    app.jinja_env.filters["schedule_text"] = describe_schedule
    app.jinja_env.globals.update(PRIORITY_LABELS=PRIORITY_LABELS, STATE_LABELS=STATE_LABELS)

    @app.before_request
    def audit_origin() -> None:
        """Privileged actions of this request are logged as coming from the client's address."""
        channel = "api" if request.path.startswith("/api/") else "web"
        audit.set_origin(f"{channel} {request.remote_addr or '?'}")

    @app.teardown_request
    def audit_origin_reset(_error: BaseException | None) -> None:
        audit.set_origin(audit.SYSTEM)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def api_errors_as_json(error: HTTPException) -> ResponseReturnValue:
        if request.path.startswith("/api/"):
            return jsonify({"error": {"message": error.description}}), error.code
        return error

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; media-src 'self'; img-src 'self' data:"
        )
        return response

    return app


def get_service() -> BroadcastService:
    from flask import current_app

    return current_app.extensions["loa_service"]
