"""Users, API tokens and sign-in limits.

Passwords are argon2 hashes; tokens are stored as sha256 only (256 random bits: there is nothing
to guess, so the API has no attempt limit and no lever to lock anyone out).

Sign-in limits keep guessing slow without letting a stranger lock a user out (a village head
must reach the urgent page during a storm whoever is typing wrong passwords for their name).
Failed attempts are counted in the database (`login_attempts`), so the limits hold across every
web worker, per source: the client's network (an IPv4 address, or an IPv6 /64, which one
household or phone holds whole) or, for a device that has signed in as that user before (the
web layer's signed cookie), that device.

* Per user name and source: `FREE_FAILURES` failures, then each further attempt waits
  `FIRST_DELAY`, doubling with every failure up to `MAX_DELAY`, counted over `FAILURE_MEMORY`.
  A refused attempt checks no password and is not counted.
* Per network, any user names: `MAX_FAILURES_PER_ADDRESS` failures within `ADDRESS_WINDOW`.
* Per user name, from devices not known for it: `MAX_FAILURES_PER_NAME` within `NAME_WINDOW`,
  a ceiling on guessing from many networks at once that no one network reaches quickly.

None of them stops the right password from a known device of that user; only that device's own
failures slow it down. A success clears the failures of its own source, not the others'.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from broadcast.const import Role, ZoneKind
from broadcast.errors import N_, Msgid, NotFound, PermissionDenied, ValidationError
from broadcast.people import permissions
from broadcast.people.permissions import Action
from broadcast.store.models import ApiToken, LoginAttempt, User, Zone, utcnow

_LOGGER = logging.getLogger(__name__)
_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "loa_"
TOKEN_USE_RESOLUTION = timedelta(minutes=1)  # how exactly a token's last use is kept
FREE_FAILURES = 3  # per user name and source, before any wait
FIRST_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(hours=24)  # the back-off's memory; older attempts are deleted
MAX_FAILURES_PER_ADDRESS = 20
ADDRESS_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 100
NAME_WINDOW = timedelta(hours=1)
IPV6_NETWORK_PREFIX = 64
_DEVICE_SOURCE = "device:"


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
        raise ValidationError(
            "username", N_("tên đăng nhập dài 1 đến 80 ký tự"), "invalid_username"
        )
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValidationError(
            "username",
            N_("tên đăng nhập “%(name)s” đã có người dùng"),
            "already_exists",
            name=username,
        )
    zone = session.get(Zone, zone_id) if zone_id is not None else None
    if zone_id is not None and zone is None:
        raise ValidationError("zone", N_("không có khu vực “%(id)s”"), "unknown_zone", id=zone_id)
    check_role_zone(session, role, zone)
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


# What an account of a role bound to the wrong kind of zone (or to none) is told.
_WANTED_ZONE: dict[Role, Msgid] = {
    Role.ADMIN: N_("quản trị chỉ gán được cho một tỉnh hoặc một xã"),
    Role.PROVINCE_EDITOR: N_("biên tập viên tỉnh phải được gán một tỉnh"),
    Role.OFFICER: N_("cán bộ văn hóa phải được gán một xã"),
    Role.LEADER: N_("lãnh đạo phải được gán một xã"),
    Role.VIEWER: N_("tài khoản xem phải được gán một xã"),
    Role.VILLAGE_HEAD: N_("trưởng thôn phải được gán một thôn"),
    Role.SOURCE: N_("hệ thống nguồn phải được gán một tỉnh"),
}


def check_role_zone(session: Session, role: Role, zone: Zone | None) -> None:
    """A ValidationError on `zone` unless an account of `role` may be bound to `zone`
    (`permissions.ZONE_KINDS`). Once a province is set up, only an admin or a province editor
    may be bound to no zone: a commune's staff must not see every commune by an omission."""
    kinds = permissions.zone_kinds(role)
    kind = None if zone is None else ZoneKind(zone.kind)
    bound_kinds = [k for k in kinds if k is not None]
    if kind in kinds and not (
        zone is None
        and ZoneKind.COMMUNE in bound_kinds
        and role is not Role.ADMIN
        and session.scalar(select(Zone.id).where(Zone.kind == ZoneKind.PROVINCE.value).limit(1))
    ):
        return
    raise ValidationError("zone", _WANTED_ZONE[role], "wrong_zone_kind")


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            "password",
            N_("mật khẩu phải có ít nhất %(min)s ký tự"),
            "too_short",
            min=MIN_PASSWORD_LENGTH,
        )
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
        raise NotFound(N_("không có người dùng “%(name)s”"), "not_found", name=username)
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


def require_user(session: Session, user_id: int, action: Action) -> User:
    """The active user `user_id` if `permissions` lets their role do `action`; else
    PermissionDenied."""
    return permissions.require(session.get(User, user_id), action)


def require_installation_admin(session: Session, user_id: int) -> User:
    """The active admin `user_id` if bound to no zone: what concerns every province and
    commune at once (signing keys, every receiver's config, metrics, the tree's root) is
    theirs alone; else PermissionDenied."""
    user = require_user(session, user_id, Action.ADMINISTER)
    if user.zone_id is not None:
        raise PermissionDenied(
            N_("chỉ quản trị toàn hệ thống được làm việc này"), "installation_only"
        )
    return user


@dataclass(frozen=True)
class LoginLimit:
    allowed: bool
    retry_after_s: int = 0


@dataclass(frozen=True)
class LoginSource:
    """Where a sign-in attempt comes from, as the limits count it (`login_source`)."""

    key: str

    @property
    def known_device(self) -> bool:
        return self.key.startswith(_DEVICE_SOURCE)


def login_source(
    session: Session, username: str, remote_addr: str, known_device: KnownDevice | None = None
) -> LoginSource:
    """The device, if it has signed in as `username` before; else the client's network."""
    if known_device is not None:
        user_id = session.scalar(select(User.id).where(User.username == _name(username)))
        if user_id is not None and user_id in known_device.user_ids:
            return LoginSource(f"{_DEVICE_SOURCE}{known_device.device_id}"[:100])
    return LoginSource(client_network(remote_addr))


@dataclass(frozen=True)
class KnownDevice:
    """A browser that signed in before, as its signed cookie says (checked by the web layer)."""

    device_id: str
    user_ids: tuple[int, ...]  # who signed in on it, the latest first


def client_network(remote_addr: str) -> str:
    """What one client holds: its IPv4 address, or its IPv6 /64 (a whole /64 is routinely one
    subscriber's, so counting single IPv6 addresses would give a stranger endless fresh ones)."""
    try:
        address = ipaddress.ip_address(remote_addr.strip())
    except ValueError:
        return remote_addr.strip()[:100] or "?"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is just a.b.c.d
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_NETWORK_PREFIX), strict=False))
    return str(address)


def login_limit(
    session: Session, username: str, source: LoginSource, now: datetime | None = None
) -> LoginLimit:
    """Whether another sign-in attempt may be tried now (checked before the password is)."""
    now = now or utcnow()
    name = _name(username)
    failed = LoginAttempt.success.is_(False)
    waits = [_backoff_wait(session, name, source, now)]
    if not source.known_device:
        waits.append(
            _ceiling_wait(
                session,
                failed & (LoginAttempt.source == source.key),
                MAX_FAILURES_PER_ADDRESS,
                ADDRESS_WINDOW,
                now,
            )
        )
        waits.append(
            _ceiling_wait(
                session,
                failed
                & (LoginAttempt.username == name)
                & LoginAttempt.source.not_like(f"{_DEVICE_SOURCE}%"),
                MAX_FAILURES_PER_NAME,
                NAME_WINDOW,
                now,
            )
        )
    wait = max(waits)
    if wait <= 0:
        return LoginLimit(True)
    return LoginLimit(False, max(1, math.ceil(wait)))


def backoff_delay(failures: int) -> timedelta:
    """How long the next attempt waits after the latest of `failures` failures."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    doublings = min(failures - FREE_FAILURES, 32)  # MAX_DELAY is reached long before
    return min(FIRST_DELAY * 2**doublings, MAX_DELAY)


def _backoff_wait(session: Session, name: str, source: LoginSource, now: datetime) -> float:
    count, latest = session.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            LoginAttempt.username == name,
            LoginAttempt.source == source.key,
            LoginAttempt.success.is_(False),
            LoginAttempt.at >= now - FAILURE_MEMORY,
        )
    ).one()
    delay = backoff_delay(count)
    if latest is None or not delay:
        return 0.0
    # never longer than the delay itself, should the clock have been stepped back since
    return min((latest + delay - now).total_seconds(), delay.total_seconds())


def _ceiling_wait(
    session: Session, condition: ColumnElement[bool], limit: int, window: timedelta, now: datetime
) -> float:
    """Seconds until fewer than `limit` failures matching `condition` lie within `window`."""
    recent = condition & (LoginAttempt.at >= now - window)
    count = session.scalar(select(func.count()).where(recent)) or 0
    if count < limit:
        return 0.0
    leaving = session.scalar(  # the failure whose expiry brings the count below the limit
        select(LoginAttempt.at).where(recent).order_by(LoginAttempt.at).offset(count - limit)
    )
    if leaving is None:
        return 0.0
    return min((leaving + window - now).total_seconds(), window.total_seconds())


def record_login(
    session: Session,
    username: str,
    source: LoginSource,
    success: bool,
    now: datetime | None = None,
) -> None:
    """Count an attempt; a success clears its own source's failures (a stranger's stay).
    Attempts older than every limit's memory are dropped."""
    now = now or utcnow()
    name = _name(username)
    if success:
        session.execute(
            delete(LoginAttempt).where(
                LoginAttempt.username == name,
                LoginAttempt.source == source.key,
                LoginAttempt.success.is_(False),
            )
        )
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - FAILURE_MEMORY))
    session.add(LoginAttempt(at=now, username=name, source=source.key, success=success))


def _name(username: str) -> str:
    return username.strip()[:80]
