"""UI language (Flask-Babel): Vietnamese by default, English available.

The UI is written in Vietnamese, so the Vietnamese text is the message id and needs no catalog;
`web/translations/en/LC_MESSAGES/messages.po` gives the English. Catalogs are compiled to `.mo`
into the data directory when the app starts (no compiled files in the repository, no build
step): a `.po` edit shows on the next start.

The language is, in order: `?lang=` (remembered in the session), the signed-in user's choice,
then Vietnamese; the browser's Accept-Language is not consulted, since an officer's phone set to
English should still show the commune's system in Vietnamese unless they ask.

Extracting new strings: `pybabel extract -F web/babel.cfg -o /tmp/messages.pot .` then
`pybabel update -i /tmp/messages.pot -d web/translations`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import Babel, get_locale
from flask_login import current_user

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


def init_app(app: Flask, compiled_dir: Path) -> None:
    compile_catalogs(compiled_dir)
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LOCALE
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Asia/Ho_Chi_Minh"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled_dir)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(LOCALES=LOCALES, LOCALE_NAMES=LOCALE_NAMES, get_locale=get_locale)
