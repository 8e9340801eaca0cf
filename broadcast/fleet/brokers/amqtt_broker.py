"""amqtt 0.12's Broker, corrected where Loa depends on mosquitto's behaviour.

The embedded broker must behave like mosquitto for Loa's clients (tests/broadcast/fleet/brokers
proves it on both). `LoaBroker` overrides private amqtt methods to get there, so everything that
knows amqtt's internals lives here, pinned to the series it was read and tested on
(`check_amqtt_version`). Each correction was found by a test in tests/broadcast/fleet/brokers:

* logins are checked before the client id touches any session, so a client with a wrong
  password can neither wipe nor take over a receiver's persistent session, and a session is
  never resumed by a different user (amqtt would hand it the owner's queued commands);
* a login whose client id is not its own (a receiver's is its username; the server's any id
  no other user has) is answered CONNACK "identifier rejected" and the client holding that
  id stays connected (amqtt closes the holder's connection: any login could silence any
  receiver; mosquitto gets the same from `use_username_as_clientid`);
* a client that stays silent past 1.5 x its keep-alive is disconnected (amqtt never does), so a
  receiver that loses power gets its `offline` last will published and its QoS 1 commands queued;
* a last will on a topic the user may not publish to is dropped (amqtt publishes any will; done
  by `amqtt_plugins.AccessAuthPlugin` at login);
* retained messages go only to a subscription's own client and only if its receive ACL allows
  (amqtt replays every retained message matching anyone's subscription on every connect);
* a client reconnecting while its old connection is half-open takes the session over like
  on mosquitto: the old connection's will is not sent, the session stays online, and QoS 1
  messages the old connection never acknowledged are re-sent (amqtt drops them after 5 s);
* messages queued for an offline session are delivered without the retain flag;
* a message is fanned out over a snapshot of the subscriptions, so a client subscribing while
  a command is being delivered cannot abort that delivery (amqtt iterates the live dict and
  loses the message with "dictionary changed size during iteration").

`quiet_amqtt_logs` keeps amqtt's per-connection chatter, and the records `LoaBroker` reports
better itself, out of the log.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from typing import Any

import amqtt
from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import IDENTIFIER_REJECTED, NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import (
    OUTGOING,
    IncomingApplicationMessage,
    OutgoingApplicationMessage,
    Session,
)
from amqtt.utils import gen_client_id

from broadcast.fleet.brokers.amqtt_plugins import IDENTIFIER_REFUSED

# Logged under the embedded broker's name, as before this module was split out of it.
_LOGGER = logging.getLogger("broadcast.fleet.brokers.embedded")

_QUIET_LOGGERS = ("amqtt", "transitions")
# LoaBroker overrides private amqtt methods; they were read and tested on this series.
_TESTED_AMQTT = "0.12."
_KEEPALIVE_FACTOR = 1.5  # MQTT 3.1.1 §3.1.2.10
_PUBACK_WAIT_S = 5.0  # as amqtt; after that the message waits for the client's reconnect
# Set while amqtt answers a SUBSCRIBE: the only time retained messages may be sent.
_ANSWERING_SUBSCRIBE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "loa_answering_subscribe", default=False
)


def check_amqtt_version() -> None:
    """Warn when the installed amqtt is not the series `LoaBroker`'s overrides were tested on."""
    version = getattr(amqtt, "__version__", "?")
    if not version.startswith(_TESTED_AMQTT):
        _LOGGER.warning(
            "embedded MQTT broker is tested with amqtt %sx, found %s: "
            "run tests/broadcast/fleet/brokers",
            _TESTED_AMQTT,
            version,
        )


class _DropRedundantRecords(logging.Filter):
    """Drop amqtt.broker records that `LoaBroker` reports better itself.

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


class LoaBroker(Broker):
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
            refused_id = getattr(session, IDENTIFIER_REFUSED, False)
            code = IDENTIFIER_REJECTED if refused_id else NOT_AUTHORIZED
            await ConnackPacket.build(0, code).to_stream(writer)
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
