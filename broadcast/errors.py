"""Errors the domain raises for a person to act on; the web and CLI layers render them."""

from __future__ import annotations


class LoaError(Exception):
    """Base of every error that is the user's or the operator's to fix (no traceback shown)."""


class ValidationError(LoaError):
    """Bad input: `field` names the form/JSON field at fault; `code` is a stable reason the UI
    can translate (e.g. a refused recording's "too_long")."""

    def __init__(self, field: str, message: str, code: str = "") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


class Conflict(ValidationError):
    """The input is fine but the thing's state refuses it (approving an approved bulletin,
    stopping a stopped broadcast, a schedule that clashes with another): the API answers 409;
    pages show it like any other refusal, since it is a ValidationError."""


class PermissionDenied(LoaError):
    pass


class NotFound(LoaError):
    pass


class ServiceUnavailable(LoaError):
    """A part the server needs (the broker, the database) cannot be reached."""
