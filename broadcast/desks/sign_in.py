"""The sign-in desk (`service.sign_in`): who is signed in, a sign-in attempt with its limits
and audit, and bearer tokens, so the web reads no user row and no password hash.

A session remembers the user and a stamp of their password hash (`credential_stamp`): a new
password, set by themself or reset by an admin, ends every other session at its next request.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from broadcast.people import accounts, audit, permissions
from broadcast.people.permissions import Action
from broadcast.store.db import Database
from broadcast.store.models import User

_LOGGER = logging.getLogger(__name__)

KnownDevice = accounts.KnownDevice  # a browser that signed in before, as its cookie says


@dataclass(frozen=True)
class SignedInUser:
    """What a page knows of the signed-in user: a snapshot, never the row."""

    id: int
    username: str
    role: str
    zone_id: str | None
    full_name: str
    locale: str | None
    credential_stamp: str

    @classmethod
    def of(cls, user: User) -> SignedInUser:
        return cls(
            user.id,
            user.username,
            user.role,
            user.zone_id,
            user.full_name,
            user.locale,
            credential_stamp(user.password_hash),
        )


@dataclass(frozen=True)
class SignIn:
    """How an attempt went: refused by the limits before the password was read (`retry_after_s`
    says when to try again), a wrong name or password (`user` None), or signed in."""

    allowed: bool
    retry_after_s: int
    source: str  # what the limits counted the attempt against (`accounts.login_source`)
    user: SignedInUser | None


@dataclass(frozen=True)
class TokenUser:
    """Whom a bearer token speaks for: their id, and their language for the API's words when
    a request asks for none."""

    id: int
    locale: str | None


def credential_stamp(password_hash: str) -> str:
    return hashlib.sha256(f"loa-session:{password_hash}".encode()).hexdigest()[:16]


def session_user(session: Session, user_id: int) -> User | None:
    """The user row in the caller's session. Only for the pages that still open a session of
    their own (web/announce.py, web/api/announcements.py) until their desk reads for them."""
    return session.get(User, user_id)


def set_audit_origin(origin: str | None) -> None:
    """Privileged actions of the current request are audited as coming from `origin` ("web
    10.0.0.5", "api 10.0.0.5"); None: from the system again, once the request is over."""
    audit.set_origin(audit.SYSTEM if origin is None else origin)


class SignInDesk:
    def __init__(self, db: Database) -> None:
        self.db = db

    def signed_in(self, user_id: int, stamp: str) -> SignedInUser | None:
        """The user a session names, if they are active and their password has not changed
        since it began; None otherwise (the session is over)."""
        with self.db.session() as session:
            user = session.get(User, user_id)
            if user is None or not user.active or stamp != credential_stamp(user.password_hash):
                return None
            return SignedInUser.of(user)

    def sign_in(
        self, username: str, password: str, address: str, device: KnownDevice | None
    ) -> SignIn:
        """One attempt: the limits (`accounts.login_limit`) before the password, then the
        attempt counted and audited, in one transaction."""
        with self.db.session() as session:
            source = accounts.login_source(session, username, address, device)
            limit = accounts.login_limit(session, username, source)
            if not limit.allowed:
                return SignIn(False, limit.retry_after_s, source.key, None)
            user = accounts.authenticate(session, username, password)
            if user is not None and not permissions.allowed(user.role, Action.VIEW):
                user = None  # a source system's account works over the API only
            accounts.record_login(session, username, source, success=user is not None)
            if user is None:
                audit.record(session, None, audit.Action.LOGIN_FAILED, f"username:{username}")
                return SignIn(True, 0, source.key, None)
            audit.record(session, user, audit.Action.LOGIN, f"user:{user.id}")
            return SignIn(True, 0, source.key, SignedInUser.of(user))

    def token_user(self, token: str) -> TokenUser | None:
        """The active user a bearer token belongs to; None for an unknown or revoked token."""
        with self.db.session() as session:
            user = accounts.user_for_token(session, token)
            return None if user is None else TokenUser(user.id, user.locale)

    def token_may(self, token: str, action: Action) -> bool:
        """Whether a bearer token's user may do `action` somewhere (their role; where is the
        caller's: a Prometheus scrape asks `service.metrics.may_read`, installation-wide only)."""
        with self.db.session() as session:
            user = accounts.user_for_token(session, token)
            return user is not None and permissions.allowed(user.role, action)
