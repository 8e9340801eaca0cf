"""UI language (Flask-Babel): Vietnamese by default, English available.

The UI is written in Vietnamese, so the Vietnamese text is the message id and needs no catalog;
`web/translations/en/LC_MESSAGES/messages.po` gives the English. Catalogs are compiled to `.mo`
into the data directory when the app starts (no compiled files in the repository, no build
step): a `.po` edit shows on the next start.

The language is, in order: `?lang=` (remembered in the session), the signed-in user's choice,
then Vietnamese (on the public replay pages, `web.replay`, `?lang=` alone: they are cached,
so they read no session); the browser's Accept-Language is not consulted, since an officer's
phone set to English should still show the commune's system in Vietnamese unless they ask.
The JSON API is read by programs, which ask for a language the HTTP way: there it is `?lang=`,
then `Accept-Language` (when sent), then the token's user's choice, then Vietnamese.

A domain error (`broadcast.errors`) carries a Vietnamese message id and its parameters:
`error_text` is its message in the request's language, for pages and API alike.

Extracting new strings: `pybabel extract -F web/babel.cfg -o /tmp/messages.pot .` then
`pybabel update -i /tmp/messages.pot -d web/translations`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, request, session
from flask_babel import Babel, get_locale, gettext
from flask_login import current_user

from broadcast.errors import LoaError, Msgid
from wire.files import atomic_output

_LOGGER = logging.getLogger(__name__)

LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"
SOURCE_DIR = Path(__file__).parent / "translations"
LOCALE_NAMES = {"vi": "Tiếng Việt", "en": "English"}


def compile_catalogs(target: Path) -> Path:
    """Compile every `.po` under SOURCE_DIR to `.mo` under `target`; returns `target`."""
    for po_path in sorted(SOURCE_DIR.glob("*/LC_MESSAGES/messages.po")):
        locale = po_path.parent.parent.name
        mo_path = target / locale / "LC_MESSAGES" / "messages.mo"
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as source:
            catalog = read_po(source, locale=locale)
        # a temporary name of its own: web workers starting together all compile at once
        with (
            atomic_output(mo_path, prefix=".messages.", suffix=".mo") as output,
            output.path.open("wb") as out,
        ):
            write_mo(out, catalog)
    return target


def select_locale() -> str:
    asked = request.args.get("lang", "")
    if request.blueprint == "api":
        return _api_locale(asked)
    if request.blueprint == "listen":  # public and cached: the URL alone says, no session
        return asked if asked in LOCALES else DEFAULT_LOCALE
    if asked in LOCALES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in LOCALES:
        return str(remembered)
    if current_user and current_user.is_authenticated:
        chosen = getattr(current_user, "locale", None)
        if chosen in LOCALES:
            return str(chosen)
    return DEFAULT_LOCALE


def locale_without_database() -> str:
    """The request's language from what it carries (`?lang=`, the page session's choice, its
    Accept-Language), for an answer given while the database, and so the user's own choice,
    cannot be read."""
    asked = request.args.get("lang", "")
    if asked in LOCALES:
        return asked
    remembered = session.get("lang") if request.blueprint != "api" else None
    if remembered in LOCALES:
        return str(remembered)
    best = request.accept_languages.best_match(LOCALES) if request.accept_languages else None
    return str(best) if best is not None else DEFAULT_LOCALE


def _api_locale(asked: str) -> str:
    """The API's language: no session (a program's request), the headers it sends instead."""
    if asked in LOCALES:
        return asked
    if request.accept_languages:
        best = request.accept_languages.best_match(LOCALES)
        if best is not None:
            return str(best)
    chosen = g.get("api_user_locale")
    return str(chosen) if chosen in LOCALES else DEFAULT_LOCALE


def error_text(error: LoaError) -> str:
    """The error's message in the request's language; a parameter that is a message id itself
    (a status's label) translated with it. A message not in the catalog shows as it is."""
    if not error.msgid:
        return ""
    params = {
        name: gettext(value) if isinstance(value, Msgid) and value else value
        for name, value in error.params.items()
    }
    return gettext(error.msgid, **params) if params else gettext(error.msgid)


def init_app(app: Flask, compiled_dir: Path) -> None:
    compile_catalogs(compiled_dir)
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LOCALE
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Asia/Ho_Chi_Minh"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled_dir)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(LOCALES=LOCALES, LOCALE_NAMES=LOCALE_NAMES, get_locale=get_locale)
