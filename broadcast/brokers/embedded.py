"""The embedded MQTT broker: amqtt in a background thread, locked down by a `BrokerAccess`.

Single-machine installs (and the demo) need a broker without installing mosquitto. amqtt 0.12 is
configured with our own plugins so it enforces exactly what the mosquitto ACL file says:
`AccessAuthPlugin` checks username/password against the same `$7$` hashes (no anonymous
access) and `AccessTopicPlugin` applies the per-user publish/subscribe/receive ACL.

`_LoaBroker` corrects amqtt 0.12 behaviour that Loa depends on (each found by a test in
tests/brokers):

* logins are checked before the client id touches any session, so a client with a wrong
  password can neither wipe nor take over a receiver's persistent session, and a session is
  never resumed by a different user (amqtt would hand it the owner's queued commands);
* a client that stays silent past 1.5 x its keep-alive is disconnected (amqtt never does), so a
  receiver that loses power gets its `offline` last will published and its QoS 1 commands queued;
* a last will on a topic the user may not publish to is dropped (amqtt publishes any will);
* retained messages go only to a subscription's own client and only if its receive ACL allows
  (amqtt replays every retained message matching anyone's subscription on every connect);
* a client reconnecting while its old connection is half-open takes the session over like
  on mosquitto: the old connection's will is not sent, the session stays online, and QoS 1
  messages the old connection never acknowledged are re-sent (amqtt drops them after 5 s);
* messages queued for an offline session are delivered without the retain flag;
* a message is fanned out over a snapshot of the subscriptions, so a client subscribing while
  a command is being delivered cannot abort that delivery (amqtt iterates the live dict and
  loses the message with "dictionary changed size during iteration").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import contextvars
import errno
import logging
import math
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import amqtt
from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.errors import BrokerError as AmqttBrokerError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import (
    OUTGOING,
    IncomingApplicationMessage,
    OutgoingApplicationMessage,
    Session,
)
from amqtt.utils import gen_client_id

from broadcast.brokers.access import (
    DEFAULT_ITERATIONS,
    BrokerAccess,
    BrokerError,
    BrokerUser,
    verify_password,
)
from broadcast.brokers.net import check_port_free, format_address, wait_for_port

_LOGGER = logging.getLogger(__name__)

# A well-formed hash nobody knows the password of: unknown users cost as much as known ones.
_DUMMY_HASH = "$".join(
    (
        "$7",
        str(DEFAULT_ITERATIONS),
        base64.b64encode(bytes(12)).decode(),
        base64.b64encode(bytes(64)).decode(),
    )
)
_QUIET_LOGGERS = ("amqtt", "transitions")
# _LoaBroker overrides private amqtt methods; they were read and tested on this series.
_TESTED_AMQTT = "0.12."
_KEEPALIVE_FACTOR = 1.5  # MQTT 3.1.1 §3.1.2.10
_PUBACK_WAIT_S = 5.0  # as amqtt; after that the message waits for the client's reconnect
# Set while amqtt answers a SUBSCRIBE: the only time retained messages may be sent.
_ANSWERING_SUBSCRIBE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "loa_answering_subscribe", default=False
)


class _DropRedundantRecords(logging.Filter):
    """Drop amqtt.broker records that `_LoaBroker` reports better itself.

    amqtt logs a traceback when it cannot listen (we raise one clear BrokerError instead) and a
    warning for every connection that sends no CONNECT (port probes, scanners).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return message != "Broker startup failed" and not message.startswith(
            "Failed to initialize client session:"
        )


def quiet_amqtt_logs() -> None:
    """Keep amqtt's per-connection INFO chatter out of the console (the demo prints there)."""
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:  # leave a level someone chose on purpose
            logger.setLevel(logging.WARNING)
    broker_logger = logging.getLogger("amqtt.broker")
    if not any(isinstance(f, _DropRedundantRecords) for f in broker_logger.filters):
        broker_logger.addFilter(_DropRedundantRecords())


# --- plugins ----------------------------------------------------------------------------------


@dataclass
class _AccessConfig:
    """Plugin config: the users of a `BrokerAccess` as plain data (amqtt builds it with dacite)."""

    users: list[dict[str, Any]] = field(default_factory=list)


def _access_from_config(config: Any) -> BrokerAccess:
    users = getattr(config, "users", None)
    if users is None:
        raise ValueError("the plugin config needs 'users'")
    return BrokerAccess.from_dict({"version": 1, "users": users})


class AccessAuthPlugin(BaseAuthPlugin):
    """Logins: username + password checked against the `$7$` hashes; nobody else gets in."""

    Config = _AccessConfig

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._access = _access_from_config(self.config)

    async def authenticate(self, *, session: Session) -> bool:
        username = session.username
        user = self._access.user(username) if username else None
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
        self._access = _access_from_config(self.config)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        user: BrokerUser | None = self._access.user(session.username) if session else None
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


# --- the broker -------------------------------------------------------------------------------


class _LoaProtocolHandler(BrokerProtocolHandler):
    """amqtt's broker-side connection handler with two delivery fixes for flaky receivers."""

    taken_over = False  # set when a new connection with the same client id replaces this one

    def handle_read_timeout(self) -> None:
        """amqtt ignores keep-alive expiry; a silent client must be dropped (and its will sent)."""
        client_id = self.session.client_id if self.session else None
        _LOGGER.info("MQTT client %r missed its keep-alive, disconnecting it", client_id)
        # Same path amqtt takes for a forbidden packet: the broker then sends the last will and
        # stops this handler. Keep a reference so the task is not garbage-collected early.
        self._loa_closing = asyncio.ensure_future(self.handle_connection_closed())

    async def _handle_qos1_message_flow(
        self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage
    ) -> None:
        """Outgoing QoS 1 stays in the session until PUBACK'd, so it is re-sent on reconnect.

        amqtt drops it when the PUBACK does not come within 5 s or the connection is replaced,
        i.e. a command sent into a half-open connection would be lost.
        """
        session = self.session
        if app_message.direction != OUTGOING or session is None or app_message.packet_id is None:
            await super()._handle_qos1_message_flow(app_message)
            return
        packet_id = app_message.packet_id
        if isinstance(app_message, OutgoingApplicationMessage):
            session.inflight_out.setdefault(packet_id, app_message)
        packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        # Register the PUBACK waiter before sending: on a fast link the PUBACK can arrive while
        # _send_packet is still draining, and amqtt would discard it as "unknown".
        waiter: asyncio.Future[PubackPacket] = asyncio.Future()
        self._puback_waiters[packet_id] = waiter
        try:
            await self._send_packet(packet)
            app_message.publish_packet = packet
            app_message.puback_packet = await asyncio.wait_for(waiter, timeout=_PUBACK_WAIT_S)
        except TimeoutError:
            _LOGGER.info(
                "MQTT client %r sent no PUBACK for %r; it is re-sent when the client reconnects",
                session.client_id,
                app_message.topic,
            )
            return
        finally:
            self._puback_waiters.pop(packet_id, None)
        session.inflight_out.pop(packet_id, None)


def _mark_taken_over(handler: BrokerProtocolHandler | None) -> None:
    if isinstance(handler, _LoaProtocolHandler):
        handler.taken_over = True


class _SnapshotSubscriptions(dict[str, list[tuple[Session, int]]]):
    """Iterating `items()` walks a copy, so subscribe/unsubscribe during a fan-out is safe."""

    def items(self) -> list[tuple[str, list[tuple[Session, int]]]]:  # type: ignore[override]
        return [(key, list(value)) for key, value in super().items()]


class _LoaBroker(Broker):
    """amqtt's Broker with the corrections listed in the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._subscriptions = _SnapshotSubscriptions(self._subscriptions)

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await _LoaProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except MQTTError as exc:
            _LOGGER.info("MQTT connection from %s refused: %s", remote_address, exc)
            await writer.close()
            raise
        except (AMQTTError, NoDataError) as exc:  # e.g. a port probe: connect, then close
            _LOGGER.debug("no MQTT CONNECT from %s:%s: %s", remote_address, remote_port, exc)
            raise AMQTTError(exc) from exc

        # Authenticate before the client id is looked up: amqtt would otherwise delete or take
        # over the session of that id (and kick its owner off) before refusing the login.
        if not await self._authenticate(session, None):  # type: ignore[arg-type]
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"login refused for client from {remote_address}:{remote_port}")

        existing, old_handler = self._sessions.get(session.client_id or "", (None, None))
        if existing is not None and existing.username != session.username:
            # Another user's session (amqtt would hand over its queued messages): start afresh.
            _LOGGER.warning(
                "MQTT user %r connected with client id %r of user %r; that session is discarded",
                session.username,
                session.client_id,
                existing.username,
            )
            await self._end_session(existing, old_handler)
            existing = None
        if session.clean_session:
            if existing is not None:
                await self._end_session(existing, old_handler)
            if not session.client_id:
                session.client_id = gen_client_id()
            session.parent = 0
        elif existing is not None:
            if existing.transitions.is_connected():
                # amqtt closes the old connection next; that must not publish the old
                # connection's will or mark the (shared) session offline. Same as mosquitto.
                _mark_taken_over(old_handler)
            for name in (
                "will_flag", "will_message", "will_topic", "will_qos", "will_retain",
                "keep_alive", "username", "password", "clean_session",
                "remote_address", "remote_port",
            ):  # fmt: skip
                setattr(existing, name, getattr(session, name))
            session = existing
            session.parent = 1
        else:
            session.parent = 0

        if session.keep_alive > 0:
            session.keep_alive = math.ceil(session.keep_alive * _KEEPALIVE_FACTOR)
        return handler, session

    async def _end_session(
        self, existing: Session, old_handler: BrokerProtocolHandler | None
    ) -> None:
        """Drop a session a new connection replaces; close its connection if it has one.

        amqtt deletes it but leaves its connection open, so two clients would share a client id.
        """
        if existing.transitions.is_connected() and old_handler is not None:
            _mark_taken_over(old_handler)
            await old_handler.handle_connection_closed()
        if existing.client_id:
            await self._delete_session(existing.client_id)

    async def _handle_disconnect(
        self,
        client_session: Session,
        handler: BrokerProtocolHandler,
        disconnect_waiter: asyncio.Future[Any],
    ) -> None:
        if getattr(handler, "taken_over", False):
            await self._stop_handler(handler)  # the session lives on in the new connection
            return
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    async def _handle_subscription(self, *args: Any, **kwargs: Any) -> None:
        token = _ANSWERING_SUBSCRIBE.set(True)
        try:
            await super()._handle_subscription(*args, **kwargs)
        finally:
            _ANSWERING_SUBSCRIBE.reset(token)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        if not _ANSWERING_SUBSCRIBE.get():
            return  # amqtt replays retained messages on reconnect; MQTT (and mosquitto) do not
        topic_filter, qos = subscription
        holders = self._subscriptions.get(topic_filter, [])
        if not any(holder.client_id == session.client_id for holder, _qos in holders):
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks: list[asyncio.Future[Any]] = []
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not await self._topic_filtering(session, topic, Action.RECEIVE):
                continue
            tasks.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(
                        retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
                    )
                )
            )
        await _wait_quietly(tasks)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks: list[asyncio.Future[Any]] = []
        while not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            tasks.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False)
                )
            )
        await _wait_quietly(tasks)


async def _wait_quietly(tasks: list[asyncio.Future[Any]]) -> None:
    """Wait for deliveries; one failing because its client vanished is not worth a traceback."""
    if not tasks:
        return
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.debug("MQTT delivery failed: %r", task.exception())


def _plugin_path(plugin: type) -> str:
    return f"{plugin.__module__}.{plugin.__qualname__}"


def broker_config(host: str, port: int, access: BrokerAccess) -> dict[str, Any]:
    """The amqtt 0.12 config dict: one TCP listener, only our two plugins (no $SYS, no logging)."""
    users = [user.to_dict() for user in access.users]
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "listeners": {"default": {"type": "tcp", "bind": bind}},
        "timeout_disconnect_delay": 0,
        "plugins": {
            _plugin_path(AccessAuthPlugin): {"users": users},
            _plugin_path(AccessTopicPlugin): {"users": users},
        },
    }


class EmbeddedBroker:
    """amqtt running on its own asyncio loop in a daemon thread, so callers stay synchronous."""

    def __init__(self, host: str, port: int, access: BrokerAccess) -> None:
        self.host = host
        self.port = port
        self.access = access
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._started.is_set()

    def start(self, timeout_s: float = 10) -> None:
        """Listen on host:port; return once connections are accepted. BrokerError otherwise."""
        if self._thread is not None:
            raise BrokerError(f"embedded MQTT broker on {self.address} was already started")
        quiet_amqtt_logs()
        version = getattr(amqtt, "__version__", "?")
        if not version.startswith(_TESTED_AMQTT):
            _LOGGER.warning(
                "embedded MQTT broker is tested with amqtt %sx, found %s: run tests/brokers",
                _TESTED_AMQTT,
                version,
            )
        check_port_free(self.host, self.port)
        # Made here, run in the thread: stop() can always reach the loop, even during startup.
        self._loop = asyncio.new_event_loop()
        self._stop_requested = asyncio.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-broker-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout_s):
            self.stop()
            raise BrokerError(
                f"embedded MQTT broker on {self.address} did not start in {timeout_s:g} s"
            )
        if self._startup_error is not None:
            error = self._startup_error
            self.stop()
            raise self._as_broker_error(error) from error
        if not wait_for_port(self.host, self.port, timeout_s):
            self.stop()
            raise BrokerError(f"embedded MQTT broker on {self.address} does not accept connections")
        _LOGGER.info(
            "embedded MQTT broker listening on %s (%d users)", self.address, len(self.access.users)
        )

    def stop(self) -> None:
        """Shut down cleanly (sessions closed, port released); safe to call more than once."""
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so the thread is ending anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_requested.set)
        thread.join(timeout=15)
        if thread.is_alive():
            _LOGGER.warning("embedded MQTT broker on %s did not stop within 15 s", self.address)
        self._thread = None
        self._loop = None
        self._stop_requested = None
        self._started.clear()
        self._startup_error = None

    def _as_broker_error(self, error: BaseException) -> BrokerError:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            return BrokerError(f"MQTT port {self.address} is already in use")
        if isinstance(cause, OSError):
            return BrokerError(f"cannot listen on MQTT {self.address}: {cause.strerror or cause}")
        return BrokerError(f"embedded MQTT broker on {self.address} failed to start: {error}")

    def _run(self) -> None:
        loop = self._loop
        if loop is None:
            return
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() or logged; the thread must not die loud
            if not self._started.is_set():
                self._startup_error = exc
                self._started.set()
            else:
                _LOGGER.error("embedded MQTT broker on %s stopped: %s", self.address, exc)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _serve(self) -> None:
        stop_requested = self._stop_requested
        if stop_requested is None:
            return
        try:
            broker = _LoaBroker(broker_config(self.host, self.port, self.access))
            await broker.start()
        except (AmqttBrokerError, OSError, ValueError) as exc:
            self._startup_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await stop_requested.wait()
        finally:
            await broker.shutdown()


# --- the `loa broker` command -----------------------------------------------------------------


def serve(host: str, port: int, access_path: Path) -> int:
    """Run the embedded broker until SIGINT/SIGTERM. Returns the process exit code.

    Problems a person can fix (bad access file, taken port) are printed as one line on stderr.
    """
    try:
        access = BrokerAccess.load(Path(access_path))
    except BrokerError as exc:
        print(f"loa broker: {exc}", file=sys.stderr)
        return 2
    broker = EmbeddedBroker(host, port, access)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"loa broker: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("received %s, stopping the MQTT broker", signal.Signals(signum).name)
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    exit_code = 0
    try:
        while not stop.wait(0.5):
            if not broker.running:
                print(
                    f"loa broker: MQTT broker on {broker.address} stopped unexpectedly",
                    file=sys.stderr,
                )
                exit_code = 1
                break
    finally:
        broker.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """`python -m broadcast.brokers.embedded`: what `loa broker` runs (and the tests start)."""
    parser = argparse.ArgumentParser(
        prog="python -m broadcast.brokers.embedded", description="Run Loa's embedded MQTT broker."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=1883, help="TCP port to listen on")
    parser.add_argument("--access", type=Path, required=True, help="broker access file (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return serve(args.host, args.port, args.access)


if __name__ == "__main__":
    # Run from the real module, not this `__main__` copy: amqtt imports the plugins by their
    # dotted path, and loggers should carry the module's name.
    from broadcast.brokers.embedded import main as _main

    sys.exit(_main())
