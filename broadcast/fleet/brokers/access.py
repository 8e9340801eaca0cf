"""Who may talk to the MQTT broker, and about what: one description for every broker back-end.

The same `BrokerAccess` is rendered as a mosquitto password file + ACL file and loaded by the
embedded amqtt broker's plugins, so the two back-ends cannot disagree. Password hashes use
mosquitto 2's PBKDF2-SHA512 `$7$` format so one hash serves both; a user may also carry a bcrypt
hash of the same password, the only kind nats-server 2.9 verifies (`broadcast.fleet.brokers.nats`).
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import logging
import re
import secrets
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wire import protocol
from wire.files import write_private_file

_LOGGER = logging.getLogger(__name__)

ACCESS_FORMAT_VERSION = 1
HASH_PREFIX = "$7$"
# mosquitto_passwd 2.0 uses 101 iterations; broker passwords are random machine secrets, so a
# moderate count keeps logins cheap (one PBKDF2 per CONNECT) while costing a brute force more.
DEFAULT_ITERATIONS = 10_000
_MAX_ITERATIONS = 10_000_000
_SALT_BYTES = 12  # what mosquitto_passwd uses
_HASH_BYTES = 64  # SHA-512 output, what mosquitto compares
# Usernames end up in mosquitto's passwd ("user:hash") and ACL ("user <name>") files: no ':' and
# no whitespace or control characters, so a name can never inject a line into either file.
_USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_MAX_TOPIC_BYTES = 512
CLIENT_TOKEN_BYTES = 16  # 128 bits: a secret client id suffix nobody guesses
# bcrypt is checked on every CONNECT: 2,000 receivers reconnecting after a node's death cost
# 2,000 hashes; cost 10 (~50 ms each) keeps that under two core-minutes across a cluster.
BCRYPT_COST = 10
_BCRYPT_PATTERN = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
_crypt_lock = threading.Lock()


class BrokerError(RuntimeError):
    """A broker problem a person can act on; the message is one line naming host:port or file."""


# --- passwords --------------------------------------------------------------------------------


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """Hash in mosquitto 2's `$7$<iterations>$<b64 salt>$<b64 sha512-pbkdf2>` format."""
    if not isinstance(password, str) or not password:
        raise ValueError("a broker password must be a non-empty string")
    if not 1 <= iterations <= _MAX_ITERATIONS:
        raise ValueError(f"iterations must be 1..{_MAX_ITERATIONS}")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, _HASH_BYTES)
    salt_text = base64.b64encode(salt).decode("ascii")
    digest_text = base64.b64encode(digest).decode("ascii")
    return f"{HASH_PREFIX}{iterations}${salt_text}${digest_text}"


def _parse_hash(password_hash: str) -> tuple[int, bytes, bytes]:
    """Split a `$7$` hash; raises ValueError for anything mosquitto would not accept either."""
    if not isinstance(password_hash, str) or not password_hash.startswith(HASH_PREFIX):
        raise ValueError("not a mosquitto $7$ (PBKDF2-SHA512) hash")
    parts = password_hash[len(HASH_PREFIX) :].split("$")
    if len(parts) != 3 or not parts[0].isdigit():
        raise ValueError("a $7$ hash has the form $7$<iterations>$<salt>$<hash>")
    iterations = int(parts[0])
    if not 1 <= iterations <= _MAX_ITERATIONS:
        raise ValueError(f"iterations must be 1..{_MAX_ITERATIONS}")
    try:
        salt = base64.b64decode(parts[1], validate=True)
        digest = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("salt and hash must be base64") from exc
    if not salt or len(digest) != _HASH_BYTES:
        raise ValueError(f"a $7$ hash needs a salt and a {_HASH_BYTES}-byte digest")
    return iterations, salt, digest


def _libcrypt() -> tuple[ctypes.CDLL, str]:
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise BrokerError(f"cannot load libcrypt ({name}) for bcrypt hashes: {exc}") from None
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib, name


def bcrypt_hash(password: str, cost: int | None = None) -> str:
    """A bcrypt hash of `password` as nats-server verifies it (default cost `BCRYPT_COST`),
    made by the system's libcrypt (libxcrypt, always on Debian) so that no Python package is
    needed."""
    if not isinstance(password, str) or not password:
        raise ValueError("a broker password must be a non-empty string")
    lib, name = _libcrypt()
    with _crypt_lock:  # both return static buffers
        setting = lib.crypt_gensalt(b"$2b$", BCRYPT_COST if cost is None else cost, None, 0)
        result = lib.crypt(password.encode("utf-8"), setting) if setting else None
    if not result or not result.startswith(b"$2b$"):
        raise BrokerError(f"libcrypt ({name}) cannot make bcrypt hashes for NATS passwords")
    return result.decode("ascii")


def verify_bcrypt(password: str, password_hash: str) -> bool:
    """True if `password` matches the bcrypt hash; malformed hashes simply fail."""
    if not isinstance(password, str) or not _BCRYPT_PATTERN.fullmatch(password_hash or ""):
        return False
    lib, _name = _libcrypt()
    with _crypt_lock:
        result = lib.crypt(password.encode("utf-8"), password_hash.encode("ascii"))
    return result is not None and hmac.compare_digest(result, password_hash.encode("ascii"))


def check_bcrypt_hash(password_hash: str) -> str:
    """Return a bcrypt hash (`$2b$<cost>$<53 characters>`) unchanged; raise ValueError if not."""
    if not isinstance(password_hash, str) or not _BCRYPT_PATTERN.fullmatch(password_hash):
        raise ValueError("not a bcrypt hash ($2b$<cost>$<salt and hash>)")
    return password_hash


def check_password_hash(password_hash: str) -> str:
    """Return the hash unchanged if well-formed; raise ValueError saying what is wrong."""
    _parse_hash(password_hash)
    return password_hash


def verify_password(password: str, password_hash: str) -> bool:
    """True if `password` matches; malformed hashes simply fail. Constant-time comparison."""
    try:
        iterations, salt, expected = _parse_hash(password_hash)
    except ValueError:
        return False
    if not isinstance(password, str):
        return False
    actual = hashlib.pbkdf2_hmac(
        "sha512", password.encode("utf-8"), salt, iterations, len(expected)
    )
    return hmac.compare_digest(actual, expected)


# --- topics -----------------------------------------------------------------------------------


def check_topic_filter(topic_filter: str) -> str:
    """Validate an MQTT topic filter that will be written into an ACL (one line, well-formed)."""
    if not isinstance(topic_filter, str) or not topic_filter:
        raise ValueError("a topic filter must be a non-empty string")
    if len(topic_filter.encode("utf-8")) > _MAX_TOPIC_BYTES:
        raise ValueError(f"topic filter longer than {_MAX_TOPIC_BYTES} bytes")
    if (
        any(ord(ch) < 0x20 or ch == "\x7f" for ch in topic_filter)
        or topic_filter != topic_filter.strip()
    ):
        raise ValueError(f"topic filter {topic_filter!r} has control characters or outer spaces")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"'#' must be the whole last level in {topic_filter!r}")
        if "+" in level and level != "+":
            raise ValueError(f"'+' must be a whole level in {topic_filter!r}")
    return topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching of a concrete topic name against a filter (as a broker delivers)."""
    if topic.startswith("$") and topic_filter.startswith(("+", "#")):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


def filter_covers(allowed: str, requested: str) -> bool:
    """True if every topic `requested` can match is also matched by `allowed`.

    Used for SUBSCRIBE checks, the way mosquitto checks a subscription against a `topic read`
    ACL line: `loa/v1/device/+/state` covers `loa/v1/device/a/state` but not `loa/v1/#`.
    """
    allowed_levels = allowed.split("/")
    requested_levels = requested.split("/")
    for index, level in enumerate(allowed_levels):
        if level == "#":
            return True
        if index >= len(requested_levels):
            return False
        wanted = requested_levels[index]
        if wanted == "#":
            return False
        if level == "+":
            continue
        if wanted == "+" or wanted != level:
            return False
    return len(allowed_levels) == len(requested_levels)


# --- users and access -------------------------------------------------------------------------


def check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME_PATTERN.fullmatch(username):
        raise ValueError(f"broker username {username!r} must match {_USERNAME_PATTERN.pattern}")
    return username


@dataclass(frozen=True)
class BrokerUser:
    """One broker login and the topic filters it may publish to and subscribe to (read).

    `bcrypt_hash`, when known, is a bcrypt hash of the same password (what nats-server verifies).
    `any_client_id` False (a receiver) binds the login to its own client ids: the username, or
    one of `client_ids` (`<username>-<secret token>`, unguessable, for engines that cannot bind
    ids to logins), so no login can connect as another client and make the broker close that
    client's connection. True is for the server, whose processes each need a session of their own.
    """

    username: str
    password_hash: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    any_client_id: bool = False
    client_ids: tuple[str, ...] = ()
    bcrypt_hash: str = ""  # the same password for nats-server; "" = not known

    def __post_init__(self) -> None:
        check_username(self.username)
        try:
            check_password_hash(self.password_hash)
            if self.bcrypt_hash:
                check_bcrypt_hash(self.bcrypt_hash)
        except ValueError as exc:
            raise ValueError(f"user {self.username!r}: {exc}") from exc
        object.__setattr__(self, "publish", tuple(check_topic_filter(t) for t in self.publish))
        object.__setattr__(self, "subscribe", tuple(check_topic_filter(t) for t in self.subscribe))
        if not isinstance(self.any_client_id, bool):
            raise ValueError(f"user {self.username!r}: any_client_id must be true or false")
        object.__setattr__(self, "client_ids", tuple(self.client_ids))
        for client_id in self.client_ids:
            if not isinstance(client_id, str) or not _USERNAME_PATTERN.fullmatch(client_id):
                raise ValueError(
                    f"user {self.username!r}: client id {client_id!r} must match"
                    f" {_USERNAME_PATTERN.pattern}"
                )
            if not client_id.startswith(f"{self.username}-"):
                raise ValueError(
                    f"user {self.username!r}: client id {client_id!r} must start with"
                    f" {self.username + '-'!r}"
                )

    def may_publish(self, topic: str) -> bool:
        return any(topic_matches(allowed, topic) for allowed in self.publish)

    def may_subscribe(self, topic_filter: str) -> bool:
        return any(filter_covers(allowed, topic_filter) for allowed in self.subscribe)

    def may_receive(self, topic: str) -> bool:
        return any(topic_matches(allowed, topic) for allowed in self.subscribe)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "username": self.username,
            "password_hash": self.password_hash,
            "publish": list(self.publish),
            "subscribe": list(self.subscribe),
            "any_client_id": self.any_client_id,
            "client_ids": list(self.client_ids),
        }
        if self.bcrypt_hash:
            data["bcrypt_hash"] = self.bcrypt_hash
        return data

    @classmethod
    def from_dict(cls, data: Any) -> BrokerUser:
        if not isinstance(data, dict):
            raise ValueError("each user must be a JSON object")
        known = {
            "username",
            "password_hash",
            "publish",
            "subscribe",
            "any_client_id",
            "client_ids",
            "bcrypt_hash",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown user field(s) {sorted(unknown)}")
        for key in ("publish", "subscribe", "client_ids"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise ValueError(f"user {data.get('username')!r}: {key} must be a list of strings")
        return cls(
            username=data.get("username"),  # type: ignore[arg-type]  # checked in __post_init__
            password_hash=data.get("password_hash"),  # type: ignore[arg-type]
            publish=tuple(data.get("publish", [])),
            subscribe=tuple(data.get("subscribe", [])),
            # a file written before client ids were bound: only the server's role (it may
            # command every device) keeps choosing its ids
            any_client_id=data.get(
                "any_client_id", DEVICE_COMMAND_FILTER in data.get("publish", [])
            ),
            client_ids=tuple(data.get("client_ids", [])),
            bcrypt_hash=data.get("bcrypt_hash", ""),
        )


@dataclass(frozen=True)
class BrokerAccess:
    """Every broker user; no user means nobody can connect (there is no anonymous access)."""

    users: tuple[BrokerUser, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", tuple(self.users))
        names = [user.username for user in self.users]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate broker user(s): {', '.join(duplicates)}")

    def user(self, username: str | None) -> BrokerUser | None:
        for candidate in self.users:
            if candidate.username == username:
                return candidate
        return None

    def client_id_refusal(self, username: str | None, client_id: str) -> str | None:
        """Why `username` may not connect as `client_id`, or None when it may.

        A receiver connects only as itself (client id = username, or one of its secret
        `client_ids`); the server with any client id except another user's, so no login can take
        over another client's session.
        """
        user = self.user(username)
        if user is None or client_id == user.username or client_id in user.client_ids:
            return None
        if not user.any_client_id:
            secret = " or its secret one" if user.client_ids else ""
            return (
                f"user {user.username!r} may connect only with client id {user.username!r}{secret}"
            )
        owner = self._client_id_owner(client_id)
        if owner is not None:
            return f"client id {client_id!r} belongs to user {owner!r}"
        return None

    def _client_id_owner(self, client_id: str) -> str | None:
        for candidate in self.users:
            if client_id == candidate.username or client_id in candidate.client_ids:
                return candidate.username
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"version": ACCESS_FORMAT_VERSION, "users": [u.to_dict() for u in self.users]}

    @classmethod
    def from_dict(cls, data: Any) -> BrokerAccess:
        if not isinstance(data, dict):
            raise ValueError("the top level must be a JSON object")
        if data.get("version") != ACCESS_FORMAT_VERSION:
            raise ValueError(f"'version' must be {ACCESS_FORMAT_VERSION}")
        users = data.get("users")
        if not isinstance(users, list):
            raise ValueError("'users' must be a list")
        return cls(tuple(BrokerUser.from_dict(item) for item in users))

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600: the hashes are secrets worth protecting."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        write_private_file(path, text)

    @classmethod
    def load(cls, path: Path) -> BrokerAccess:
        """Read an access file; every problem becomes one BrokerError line naming the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise BrokerError(f"broker access file {path} does not exist") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise BrokerError(f"cannot read broker access file {path}: {_reason(exc)}") from exc
        try:
            access = cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise BrokerError(
                f"broker access file {path} is not valid JSON (line {exc.lineno}: {exc.msg})"
            ) from exc
        except (ValueError, TypeError) as exc:
            raise BrokerError(f"bad broker access file {path}: {exc}") from exc
        _warn_if_readable_by_others(path)
        return access


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _LOGGER.warning("broker access file %s is readable by others: chmod 600 %s", path, path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# --- the Loa roles ----------------------------------------------------------------------------

# wire.protocol has the state/event filters; the command filters follow its topic layout.
DEVICE_COMMAND_FILTER = f"{protocol.TOPIC_ROOT}/device/+/cmd"
ZONE_COMMAND_FILTER = f"{protocol.TOPIC_ROOT}/zone/+/cmd"
DEVICE_MANIFEST_FILTER = f"{protocol.TOPIC_ROOT}/device/+/manifest"


def locked_hash() -> str:
    """A well-formed `$7$` hash no password matches (random digest): a user who cannot log in."""
    salt = base64.b64encode(secrets.token_bytes(_SALT_BYTES)).decode("ascii")
    digest = base64.b64encode(secrets.token_bytes(_HASH_BYTES)).decode("ascii")
    return f"{HASH_PREFIX}{DEFAULT_ITERATIONS}${salt}${digest}"


def _role_hash(password: str, password_hash: str | None) -> str:
    """Hash `password`, or take a stored hash; an empty password never becomes a login."""
    if password_hash is not None:
        return check_password_hash(password_hash)
    return hash_password(password) if password else locked_hash()


def server_user(
    username: str, password: str, *, password_hash: str | None = None, bcrypt_hash: str = ""
) -> BrokerUser:
    """The Loa server: sends commands to any device or zone and every device's (retained)
    manifest, reads every state and event.

    Pass the stored `password_hash` instead of a password to rebuild the user from a database;
    an empty password gives a locked user (no password verifies), never a password-less one.
    `bcrypt_hash` is the stored bcrypt hash of the same password, if any.
    """
    return BrokerUser(
        username=username,
        password_hash=_role_hash(password, password_hash),
        publish=(DEVICE_COMMAND_FILTER, ZONE_COMMAND_FILTER, DEVICE_MANIFEST_FILTER),
        subscribe=(protocol.STATE_TOPIC_FILTER, protocol.EVENT_TOPIC_FILTER),
        any_client_id=True,
        bcrypt_hash=bcrypt_hash,
    )


def new_client_token() -> str:
    """A secret part of a client id: 128 random bits, lowercase hex (any broker takes it)."""
    return secrets.token_hex(CLIENT_TOKEN_BYTES)


def secret_client_id(name: str, token: str) -> str:
    """`<name>-<token>`: a client id nobody can guess, for engines (nats-server) that let any
    login connect with any id and so close its holder's connection; empty token = `name`."""
    return f"{name}-{token}" if token else name


def device_user(
    device_id: str,
    password: str,
    zone_ids: Iterable[str],
    *,
    password_hash: str | None = None,
    client_token: str = "",
    bcrypt_hash: str = "",
) -> BrokerUser:
    """One receiver (username = device id): reads its own and its zones' commands and its own
    manifest, writes only its own state and events, so a stolen receiver cannot speak for
    another. It connects as its device id or, with `client_token`, as
    `<device id>-<client_token>` (what its config names).

    `password_hash`, `bcrypt_hash` and an empty password work as for `server_user`.
    """
    zones = tuple(dict.fromkeys(zone_ids))  # keep order, drop repeats
    return BrokerUser(
        username=protocol.check_id(device_id, "device id"),
        password_hash=_role_hash(password, password_hash),
        publish=(protocol.device_state_topic(device_id), protocol.device_event_topic(device_id)),
        subscribe=(
            protocol.device_command_topic(device_id),
            protocol.device_manifest_topic(device_id),
            *(protocol.zone_command_topic(zone) for zone in zones),
        ),
        client_ids=(secret_client_id(device_id, client_token),) if client_token else (),
        bcrypt_hash=bcrypt_hash,
    )
