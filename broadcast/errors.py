"""Errors the domain raises for a person to act on; the web and CLI layers render them.

An error a person reads is a translation key, as Home Assistant's are: a stable `code`, a
Vietnamese message id marked with `N_` (extracted by Babel: `web/babel.cfg` lists `N_` as a
keyword) and the parameters it is formatted with (`%(name)s`; any name but `code`, the error's
own). The domain knows no Flask: `str(error)` is the Vietnamese text, for the CLI and the logs,
and the web layer translates `msgid` into the request's language (`web.i18n.error_text`). A
parameter that is itself a message id (a status's label, a verb) is marked with `N_` too, and
is translated with it. A plain string still works (`ValidationError("title", "…")`): it is
shown as it is.
"""

from __future__ import annotations


class Msgid(str):
    """A Vietnamese message id: shown as it is here, translated by the web layer."""

    __slots__ = ()


def N_(message: str) -> Msgid:  # noqa: N802 (gettext's name for a no-op marker)
    """Mark `message` for extraction without translating it: the domain has no locale."""
    return Msgid(message)


def format_message(msgid: str, params: dict[str, object]) -> str:
    """`msgid` with its parameters in (gettext's `%(name)s`); no parameters, no formatting,
    so a plain message may hold a "%"."""
    return msgid % params if params else msgid


class LoaError(Exception):
    """Base of every error that is the user's or the operator's to fix (no traceback shown).

    `code` is a stable reason a client can act on; `msgid` and `params` the message before
    formatting, for the web layer to translate."""

    def __init__(self, message: str = "", /, code: str = "", **params: object) -> None:
        self.msgid = message
        self.code = code
        self.params = params
        self.message = format_message(message, params)
        super().__init__(self.message)


class ValidationError(LoaError):
    """Bad input: `field` names the form/JSON field at fault; `code` is a stable reason the UI
    can translate (e.g. a refused recording's "too_long")."""

    def __init__(self, field: str, message: str, /, code: str = "", **params: object) -> None:

        super().__init__(message, code, **params)
        self.field = field
        self.args = (f"{field}: {self.message}",)


class Conflict(ValidationError):
    """The input is fine but the thing's state refuses it (approving an approved bulletin,
    stopping a stopped broadcast, a schedule that clashes with another): the API answers 409;
    pages show it like any other refusal, since it is a ValidationError."""


class PermissionDenied(LoaError):
    """The user may not do this (their role, or a zone outside their reach): a 403."""


class NotFound(LoaError):
    """The thing asked for does not exist (or is not the user's to see): a 404."""


class ServiceUnavailable(LoaError):
    """A part the server needs (the broker, the database) cannot be reached."""
