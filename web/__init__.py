"""The Flask layer: a thin shell over `broadcast` (no business rules in views).

`create_app(service, test_config=None)` follows Flask's tutorial factory; one blueprint per
concern: auth (login), dashboard, announce (urgent announcements), media, api (JSON, token auth).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import Forbidden, HTTPException, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

from broadcast import clock
from broadcast.const import ContentKind
from broadcast.desks.sign_in import set_audit_origin
from broadcast.errors import NotFound as DomainNotFound
from broadcast.errors import PermissionDenied
from broadcast.service import BroadcastService, DatabaseUnreachable
from web import i18n, inputs, labels
from web.views import describe_schedule, lunar_text
from wire.protocol import ContentType

_LOGGER = logging.getLogger(__name__)
csrf = CSRFProtect()
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # a larger request body is refused with 413
RETRY_AFTER_S = 10  # what a 503 for an unreachable database suggests: a standby's promotion


def create_app(service: BroadcastService, test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    inputs.init_app(app)  # before the blueprints: their ids in URLs are bounded
    app.config.update(
        SECRET_KEY=service.secrets.flask_secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=service.settings.public_url.startswith("https://"),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=service.settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
    )
    if test_config:
        app.config.update(test_config)
    if service.settings.trusted_proxies:  # the client's address as the proxies give it
        proxies = service.settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    app.extensions["loa_service"] = service
    csrf.init_app(app)

    from web import (
        admin,
        announce,
        api,
        auth,
        bulletins,
        calendar,
        dashboard,
        live,
        media,
        metrics,
        province,
        province_bulletins,
        replay,
        reports,
    )

    i18n.init_app(app, service.settings.data_dir / "translations")

    auth.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(announce.bp)
    app.register_blueprint(bulletins.bp)
    app.register_blueprint(calendar.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(province.bp)
    app.register_blueprint(province_bulletins.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(replay.listen)
    app.register_blueprint(replay.bp)
    csrf.exempt(live.listeners)  # Icecast asks it: the listen token is the credential

    app.jinja_env.filters["local_time"] = clock.format_local
    app.jinja_env.filters["zone_name"] = lambda zone_id, names: names.get(zone_id, zone_id)
    app.jinja_env.filters["schedule_text"] = describe_schedule
    app.jinja_env.filters["lunar_text"] = lunar_text
    app.jinja_env.filters["vi"] = vietnamese
    app.jinja_env.globals.update(
        ContentKind=ContentKind,
        ContentType=ContentType,
        LABELS=labels,
        label=labels.label,
        PRIORITY_LABELS=labels.PRIORITY,
        STATE_LABELS=labels.STATES,
        LIVE_STATE_LABELS=labels.LIVE_STATES,
        live_available=lambda: service.live.available,  # "Phát trực tiếp" only with an engine
    )

    @app.get("/favicon.ico")
    def favicon() -> ResponseReturnValue:
        """What browsers ask for before reading the page's <link rel="icon">: the same icon."""
        return redirect(url_for("static", filename="favicon.svg"), 302)

    @app.before_request
    def audit_origin() -> None:
        """Privileged actions of this request are logged as coming from the client's address."""
        channel = "api" if request.path.startswith("/api/") else "web"
        set_audit_origin(f"{channel} {request.remote_addr or '?'}")

    @app.teardown_request
    def audit_origin_reset(_error: BaseException | None) -> None:
        set_audit_origin(None)

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def errors_in_our_words(error: HTTPException) -> ResponseReturnValue:
        """JSON for the API; a page in the UI's language for people."""
        if request.path.startswith("/api/"):
            return api.http_error(error)
        return render_template("errors.html", code=error.code), error.code or 500

    @app.errorhandler(PermissionDenied)
    def permission_denied(_error: PermissionDenied) -> ResponseReturnValue:
        """The service refused: the same 403 as any other refusal."""
        return errors_in_our_words(Forbidden())

    @app.errorhandler(DomainNotFound)
    def domain_not_found(_error: DomainNotFound) -> ResponseReturnValue:
        return errors_in_our_words(NotFound())

    @app.errorhandler(DatabaseUnreachable)
    def database_unreachable(error: DatabaseUnreachable) -> ResponseReturnValue:
        """The database went away (its server died, a standby is not promoted yet): 503 and one
        log line, not a traceback per request. A plain page: the usual one reads the signed-in
        user from the database."""
        first_line = (str(error.orig or error).strip().splitlines() or ["?"])[0]
        _LOGGER.warning("%s %s: database unreachable: %s", request.method, request.path,
                        first_line[:300])  # fmt: skip
        with force_locale(i18n.locale_without_database()):
            message = _("Không kết nối được cơ sở dữ liệu. Vui lòng thử lại sau ít phút.")
        if request.path.startswith("/api/"):
            response, _status = api.error(503, message)
        else:
            response = make_response(message)
            response.mimetype = "text/plain"
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; media-src 'self'; img-src 'self' data:"
        )
        return response

    return app


def vietnamese(text: object) -> Markup:
    """Content people wrote in Vietnamese (zone names, titles, notice texts) marked as such, so a
    screen reader on an English page reads it with Vietnamese sounds (WCAG 3.1.2)."""
    return Markup('<span lang="vi">%s</span>') % text


def get_service() -> BroadcastService:
    from flask import current_app

    return current_app.extensions["loa_service"]
