"""Nghe lại (replay): a commune's public page and podcast, listeners' feedback, and the
officer's pages that choose what is public and moderate the feedback.

Two blueprints. `listen` is public (no sign-in): the page and the RSS 2.0 podcast are cacheable
by anyone (an ETag and Last-Modified from what they show, `Cache-Control: public, max-age=300`,
304 on a matching If-None-Match or If-Modified-Since), so they read no session: the language is
`?lang=` alone (Vietnamese by default, `web.i18n.select_locale`) and the page has no form. The
feedback form is a page of its own per item, never cached (its CSRF token is the session's).
`replay` is the officer's (MANAGE_REPLAY in the permissions table). The rules are
`broadcast.desks.replay`'s; here only HTTP.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.http import is_resource_modified

from broadcast import clock
from broadcast.desks.replay import (
    FEEDBACK_STATUS_LABELS,
    NAME_CHARS,
    TEXT_CHARS,
    FeedbackStatus,
    ReplayPage,
)
from broadcast.errors import ValidationError
from web import get_service
from web.i18n import DEFAULT_LOCALE, error_text

_LOGGER = logging.getLogger(__name__)
listen = Blueprint("listen", __name__, url_prefix="/nghe-lai")
bp = Blueprint("replay", __name__, url_prefix="/replay")
MAX_AGE_S = 300
RSS_TYPE = "application/rss+xml; charset=utf-8"
# what XML 1.0 cannot carry (C0 controls but tab and line breaks, lone surrogates, U+FFFE/F)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _user_id() -> int:
    return int(current_user.id)


# --- the public side ---------------------------------------------------------------------------


def _language() -> dict[str, str]:
    """`?lang=` for a link between public pages (their language is the URL's alone)."""
    locale = str(get_locale())
    return {} if locale == DEFAULT_LOCALE else {"lang": locale}


@listen.context_processor
def _language_links() -> dict[str, object]:
    return {"lang_arg": _language()}


def _version_tag(page: ReplayPage) -> str:
    """The ETag: what the desk shows, in the request's language (the page's words differ)."""
    return f"{page.version}-{get_locale()}"


def _cached(page: ReplayPage, render: Callable[[], str | bytes], mimetype: str) -> Response:
    """The body `render()` makes, or a 304 when the client's copy is still this one."""
    etag = _version_tag(page)
    modified = page.updated_at.replace(microsecond=0, tzinfo=UTC) if page.updated_at else None
    if not is_resource_modified(request.environ, etag=etag, last_modified=modified):
        response = Response(status=304)
    else:
        response = Response(render(), mimetype=mimetype)
        response.headers["Content-Type"] = mimetype
    response.set_etag(etag)
    if modified is not None:
        response.last_modified = modified
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE_S
    return response


@listen.get("/<commune>/")
def page(commune: str) -> Response:
    found = get_service().replay.page(commune)
    return _cached(
        found,
        lambda: render_template("listen/page.html", page=found, text_chars=TEXT_CHARS),
        "text/html; charset=utf-8",
    )


@listen.get("/<commune>/podcast.xml")
def feed(commune: str) -> Response:
    found = get_service().replay.page(commune)
    return _cached(found, lambda: _rss(found), RSS_TYPE)


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _rss(found: ReplayPage) -> bytes:
    """RSS 2.0 with iTunes tags (feedgen: escaped, well-formed); every URL absolute, from the
    installation's public URL (`Settings.public_url`, LOA_PUBLIC_URL)."""
    settings = get_service().settings
    base = settings.public_url.rstrip("/")
    page_url = base + url_for("listen.page", commune=found.commune_id)
    title = _xml_text(_("Nghe lại · %(commune)s", commune=found.commune_name))
    generator = FeedGenerator()
    generator.load_extension("podcast")
    generator.title(title)
    # feedgen's RSS <link> is the last one given: the page, after the feed's own atom:link
    generator.link(href=base + url_for("listen.feed", commune=found.commune_id), rel="self")
    generator.link(href=page_url, rel="alternate")
    generator.description(
        _xml_text(
            _(
                "Các bản tin và thông báo đài truyền thanh %(commune)s đã phát trong 30 ngày qua.",
                commune=found.commune_name,
            )
        )
    )
    generator.language("vi")
    generator.generator("Loa")
    generator.podcast.itunes_author(_xml_text(found.commune_name))
    generator.podcast.itunes_category("Government")
    generator.podcast.itunes_explicit("no")
    generator.podcast.itunes_summary(title)
    if found.updated_at is not None:
        generator.lastBuildDate(found.updated_at.replace(tzinfo=UTC))
    for item in found.items:
        entry = generator.add_entry(order="append")
        entry.title(_xml_text(item.title))
        entry.guid(f"{page_url}#b{item.id}", permalink=True)
        entry.link(href=f"{page_url}#b{item.id}")
        entry.description(_xml_text(item.text))
        entry.pubDate(item.played_at.replace(tzinfo=UTC))
        entry.enclosure(settings.media_url(item.media_sha256), str(item.media_bytes), "audio/mpeg")
        if item.duration_s is not None:
            entry.podcast.itunes_duration(max(1, round(item.duration_s)))
    return generator.rss_str(pretty=False)


@listen.route("/<commune>/<int:broadcast_id>/gop-y", methods=["GET", "POST"])
def feedback_form(commune: str, broadcast_id: int) -> Response | tuple[str, int] | str:
    """Góp ý on one item: name optional, text required; pending until the officer approves."""
    service = get_service()
    item = service.replay.item(commune, broadcast_id)
    errors: dict[str, str] = {}
    values = {"name": "", "text": ""}
    status = 200
    if request.method == "POST":
        values = {key: request.form.get(key, "") for key in values}
        try:
            service.replay.give_feedback(
                commune, broadcast_id, values["name"], values["text"], request.remote_addr or ""
            )
        except ValidationError as exc:
            errors[exc.field] = error_text(exc)
            status = 429 if exc.code == "rate_limited" else 400
        else:
            where = {"commune": commune, "broadcast_id": broadcast_id, **_language()}
            return redirect(url_for("listen.thanks", **where))
    body = render_template(
        "listen/feedback.html",
        commune=commune,
        commune_name=service.replay.page(commune).commune_name,
        item=item,
        errors=errors,
        values=values,
        name_chars=NAME_CHARS,
        text_chars=TEXT_CHARS,
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@listen.get("/<commune>/<int:broadcast_id>/cam-on")
def thanks(commune: str, broadcast_id: int) -> str:
    item = get_service().replay.item(commune, broadcast_id)
    return render_template("listen/thanks.html", commune=commune, item=item)


# --- the officer's side ------------------------------------------------------------------------


def _flag(name: str) -> bool:
    return request.form.get(name, "") in ("1", "on", "true")


@bp.get("/")
@login_required
def manage() -> str:
    service = get_service()
    user_id = _user_id()
    communes = service.replay.communes(user_id)
    asked = request.args.get("commune", "")
    chosen = next((c for c in communes if c.id == asked), communes[0] if communes else None)
    recent = service.replay.recent(user_id, chosen.id) if chosen else []
    return render_template("replay/manage.html", communes=communes, chosen=chosen, recent=recent)


@bp.post("/public")
@login_required
def set_public() -> Response | tuple[str, int]:
    commune = request.form.get("commune", "")
    try:
        get_service().replay.set_public(_user_id(), commune, _flag("public"))
    except ValidationError as exc:
        flash(_("Chưa lưu được: %(message)s", message=error_text(exc)), "error")
        return render_template("errors.html", code=400), 400
    flash(_("Đã lưu."), "ok")
    return redirect(url_for("replay.manage", commune=commune))


@bp.post("/broadcasts/<int:broadcast_id>/internal")
@login_required
def broadcast_internal(broadcast_id: int) -> Response:
    get_service().replay.set_internal(_user_id(), broadcast_id, _flag("internal"))
    flash(_("Đã lưu."), "ok")
    return redirect(url_for("replay.manage", commune=request.form.get("commune", "")))


@bp.post("/bulletins/<int:bulletin_id>/internal")
@login_required
def bulletin_internal(bulletin_id: int) -> Response:
    get_service().replay.set_bulletin_internal(_user_id(), bulletin_id, _flag("internal"))
    flash(_("Đã lưu."), "ok")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.get("/feedback")
@login_required
def feedback() -> tuple[str, int] | str:
    status = request.args.get("status", FeedbackStatus.PENDING)
    try:
        found = get_service().replay.feedback(_user_id(), status)
    except ValidationError as exc:
        flash(error_text(exc), "error")
        return render_template("errors.html", code=400), 400
    return render_template(
        "replay/feedback.html",
        found=found,
        status=status,
        statuses=FEEDBACK_STATUS_LABELS,
        local_time=clock.format_local,
    )


@bp.post("/feedback/<int:feedback_id>")
@login_required
def moderate(feedback_id: int) -> Response | tuple[str, int]:
    try:
        get_service().replay.moderate(_user_id(), feedback_id, request.form.get("decision", ""))
    except ValidationError as exc:
        flash(error_text(exc), "error")
        return render_template("errors.html", code=400), 400
    flash(_("Đã lưu."), "ok")
    return redirect(url_for("replay.feedback", status=request.form.get("status", "pending")))
