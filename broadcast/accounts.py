"""Users, API tokens and sign-in limits.

Passwords are argon2 hashes; tokens are stored as sha256 only. Failed sign-ins are counted in
the database (`login_attempts`), so the limit holds across every web worker: after
`MAX_FAILURES_PER_USER` failures for one user name, or `MAX_FAILURES_PER_ADDRESS` from one
address, within `FAILURE_WINDOW`, sign-in is refused until the window has passed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from broadcast.const import Role
from broadcast.errors import NotFound, PermissionDenied, ValidationError
from broadcast.models import ApiToken, LoginAttempt, User, Zone, utcnow

_LOGGER = logging.getLogger(__name__)
_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "loa_"
FAILURE_WINDOW = timedelta(minutes=15)
TOKEN_USE_RESOLUTION = timedelta(minutes=1)  # how exactly a token's last use is kept
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    zone_id: str | None = None,
    full_name: str = "",
) -> User:
    username = username.strip()
    if not username or len(username) > 80:
        raise ValidationError("username", "must be 1 to 80 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValidationError("username", f"user {username!r} already exists")
    if role == Role.VILLAGE_HEAD and (zone_id is None or session.get(Zone, zone_id) is None):
        raise ValidationError("zone", "a village head needs the id of an existing village")
    user = User(
        username=username,
        password_hash="",
        role=role.value,
        zone_id=zone_id,
        full_name=full_name,
    )
    set_password(user, password)
    session.add(user)
    session.flush()
    _LOGGER.info("created user %s (%s)", username, role.value)
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = _HASHER.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active:
        _HASHER.hash(password)  # same cost whether or not the user exists
        return None
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def create_token(session: Session, user: User) -> str:
    """Return a new bearer token; only its hash is kept, so it is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_token_hash(token)))
    session.flush()
    return token


def revoke_tokens(session: Session, user: User) -> int:
    """Delete every API token of `user`; returns how many there were."""
    result = session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_hash(token)))
    if row is None or not row.user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_USE_RESOLUTION:
        row.last_used_at = now  # not on every call: an API read should not cost a write
    return row.user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def require_user(session: Session, user_id: int, roles: Iterable[Role | str]) -> User:
    """The active user `user_id` if their role is one of `roles`; else PermissionDenied."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise PermissionDenied("unknown or disabled user")
    if user.role not in {Role(role).value for role in roles}:
        raise PermissionDenied(f"role {user.role!r} may not do this")
    return user


@dataclass(frozen=True)
class LoginLimit:
    allowed: bool
    retry_after_s: int = 0


def login_limit(
    session: Session, username: str, remote_addr: str, now: datetime | None = None
) -> LoginLimit:
    """Whether another sign-in attempt may be tried now (checked before the password is)."""
    now = now or utcnow()
    since = now - FAILURE_WINDOW
    failed = select(func.count(), func.min(LoginAttempt.at)).where(
        LoginAttempt.at >= since, LoginAttempt.success.is_(False)
    )
    for condition, limit in (
        (LoginAttempt.username == username.strip()[:80], MAX_FAILURES_PER_USER),
        (LoginAttempt.remote_addr == remote_addr[:100], MAX_FAILURES_PER_ADDRESS),
    ):
        count, oldest = session.execute(failed.where(condition)).one()
        if count >= limit and oldest is not None:
            wait = (oldest + FAILURE_WINDOW - now).total_seconds()
            return LoginLimit(False, max(1, int(wait) + 1))
    return LoginLimit(True)


def record_login(
    session: Session, username: str, remote_addr: str, success: bool, now: datetime | None = None
) -> None:
    """Count an attempt; a success clears that user's failures. Old rows are dropped."""
    now = now or utcnow()
    if success:
        session.execute(
            delete(LoginAttempt).where(
                LoginAttempt.username == username.strip()[:80], LoginAttempt.success.is_(False)
            )
        )
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - FAILURE_WINDOW))
    session.add(
        LoginAttempt(
            at=now, username=username.strip()[:80], remote_addr=remote_addr[:100], success=success
        )
    )
