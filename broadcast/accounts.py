"""Users and API tokens. Passwords are argon2 hashes; tokens are stored as sha256 only."""

from __future__ import annotations

import hashlib
import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast.const import Role
from broadcast.errors import NotFound, ValidationError
from broadcast.models import ApiToken, User, Zone, utcnow

_LOGGER = logging.getLogger(__name__)
_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "loa_"


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


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_hash(token)))
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    return row.user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
