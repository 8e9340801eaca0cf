"""Loa's amqtt plugins: the embedded broker enforces exactly what the mosquitto ACL file says.

amqtt loads plugins by the dotted path given in its config (`embedded.broker_config` names
these two), so they live in a module of their own, importable on their own:
`AccessAuthPlugin` checks username/password against the same `$7$` hashes as mosquitto (no
anonymous access) and the client id against the user (a receiver connects only as itself),
and `AccessTopicPlugin` applies the per-user publish/subscribe/receive ACL.
Both are built from the users of a `BrokerAccess`, passed as plain data in the plugin config;
given the access file's path too, they follow the file (checked at most once a second), so a
receiver registered while the broker runs can log in at once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broadcast.fleet.brokers.access import (
    DEFAULT_ITERATIONS,
    BrokerAccess,
    BrokerError,
    BrokerUser,
    verify_password,
)

# Logged under the embedded broker's name, as before the plugins had a module of their own.
_LOGGER = logging.getLogger("broadcast.fleet.brokers.embedded")

# Set on a session whose login is right but whose client id is not the user's: the broker then
# answers CONNACK "identifier rejected" instead of "not authorized".
IDENTIFIER_REFUSED = "loa_identifier_refused"

# A well-formed hash nobody knows the password of: unknown users cost as much as known ones.
_DUMMY_HASH = "$".join(
    (
        "$7",
        str(DEFAULT_ITERATIONS),
        base64.b64encode(bytes(12)).decode(),
        base64.b64encode(bytes(64)).decode(),
    )
)


@dataclass
class _AccessConfig:
    """Plugin config: the users of a `BrokerAccess` as plain data (amqtt builds it with dacite)."""

    users: list[dict[str, Any]] = field(default_factory=list)
    access_path: str = ""  # when set, the file is followed: changes apply without a restart


class AccessSource:
    """The broker's users: from the config, then from the access file whenever it changes."""

    CHECK_EVERY_S = 1.0

    def __init__(self, config: Any) -> None:
        users = getattr(config, "users", None)
        if users is None:
            raise ValueError("the plugin config needs 'users'")
        self._access = BrokerAccess.from_dict({"version": 1, "users": users})
        path = getattr(config, "access_path", "") or ""
        self._path = Path(path) if path else None
        self._stamp = self._file_stamp()
        self._checked_at = time.monotonic()

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def current(self) -> BrokerAccess:
        now = time.monotonic()
        if self._path is None or now - self._checked_at < self.CHECK_EVERY_S:
            return self._access
        self._checked_at = now
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return self._access
        try:
            access = BrokerAccess.load(self._path)
        except BrokerError as exc:  # a half-written or broken file: keep the users we have
            _LOGGER.error("kept the previous MQTT users: %s", exc)
            return self._access
        self._stamp = stamp
        self._access = access
        _LOGGER.info("MQTT users reloaded from %s (%d users)", self._path, len(access.users))
        return access


class AccessAuthPlugin(BaseAuthPlugin):
    """Logins: username + password checked against the `$7$` hashes; nobody else gets in."""

    Config = _AccessConfig

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._access = AccessSource(self.config)

    async def authenticate(self, *, session: Session) -> bool:
        username = session.username
        user = self._access.current().user(username) if username else None
        password = session.password or ""
        # Verify even for unknown users, off the event loop: PBKDF2 takes milliseconds.
        ok = await asyncio.to_thread(
            verify_password, password, user.password_hash if user else _DUMMY_HASH
        )
        who = f"user {username!r} (client id {session.client_id!r}) from {session.remote_address}"
        if user is None:
            reason = "unknown user" if username else "no username (anonymous)"
            _LOGGER.warning("MQTT login refused, %s: %s", reason, who)
            return False
        if not ok:
            _LOGGER.warning("MQTT login refused, wrong password: %s", who)
            return False
        refusal = self._access.current().client_id_refusal(username, session.client_id or "")
        if refusal is not None:
            # Refused before any session is touched: the client holding that id stays connected.
            _LOGGER.warning("MQTT client id refused (%s): %s", refusal, who)
            setattr(session, IDENTIFIER_REFUSED, True)
            return False
        if session.will_flag and not user.may_publish(session.will_topic or ""):
            # amqtt would publish any will unchecked; mosquitto drops a forbidden one. Do that.
            _LOGGER.warning(
                "MQTT last will on %r is not allowed and will not be sent: %s",
                session.will_topic,
                who,
            )
            session.will_flag = False
            session.will_retain = False
        session.is_anonymous = False
        return True


class AccessTopicPlugin(BaseTopicPlugin):
    """Per-user topic ACL with mosquitto's meaning: publish (write), subscribe + receive (read)."""

    Config = _AccessConfig

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._access = AccessSource(self.config)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        access = self._access.current()
        user: BrokerUser | None = access.user(session.username) if session else None
        if user is None or not topic:
            return False
        if action == Action.PUBLISH:
            allowed = user.may_publish(topic)
        elif action == Action.SUBSCRIBE:
            allowed = user.may_subscribe(topic)
        elif action == Action.RECEIVE:
            allowed = user.may_receive(topic)
        else:
            allowed = False
        if not allowed and action != Action.RECEIVE:
            _LOGGER.warning("MQTT %s on %r denied for user %r", action, topic, user.username)
        return allowed
