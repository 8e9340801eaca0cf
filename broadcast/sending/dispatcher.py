"""The server's MQTT link: publishes signed commands and manifests, hears receivers' answer-back.

It owns the connection state (Home Assistant's coordinator pattern); the rest of the server calls
`send()` and gets answer-back through the two callbacks it registers (and a third that hears
of reconnections, after which the broker may have lost its retained manifests).

Two connections, because several server processes may share one data directory:

* every process publishes on its own connection (client id `<client_id>-<random>`, clean
  session);
* only the process that runs the scheduler (`broadcast.programme.leadership`) calls `listen()`: a
  connection with the fixed client id `client_id` (the service gives `loa-server-<secret token>`
  of the installation, so no stolen receiver's login can guess it) and a persistent session
  subscribes to states and events, so the broker queues answer-back while no server listens and
  no event is handled twice.

`send_many()` stamps each message with its stream (the topic), the stream's next sequence number
and the current sequence epoch (`broadcast.store.sequences`, every number of the batch and the
epoch taken in one transaction), signs them all, publishes them all, then waits for the broker's
PUBACK of each (one deadline for the batch), all while holding the publish lock
(`broadcast.store.locks`: a file beside SQLite, a PostgreSQL advisory lock across hosts), so each
stream's messages reach the broker in sequence order whichever process sends them. A broadcast
to a hundred communes thus costs one database round trip and one broker round trip, not a
hundred of each. `send()` is a batch of one.

A PUBACK that does not come within the deadline is not an error (as with one message): the
client keeps the message in flight and sends it again on reconnecting, and what receivers have
not answered is sent again by `broadcast.sending.redelivery`. Published while the broker is
down, the batch is queued by the client the same way, with one warning.

With several brokers (the nodes of a cluster: `Settings.server_brokers`), both connections fail
over between them as receivers do (`wire.brokers.Failover`: the next broker after a failed
attempt, or after a lost connection that has not come back within `failover_after_s`; backoff
with jitter from 1 s to 15 s), each keeping its client id and session flag.

Answer-back that does not parse (any malformed payload, or one claiming another device) is
refused in one log line per sender per minute and counted (`on_rejected`), so a stolen
receiver can neither crash the listener nor fill the server's log.
"""

from __future__ import annotations

import logging
import math
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcast.errors import ServiceUnavailable
from broadcast.store.locks import ProcessLock
from wire import protocol
from wire.brokers import (
    DEFAULT_FAILOVER_AFTER_S,
    Backoff,
    BrokerAddress,
    Failover,
    aim_reconnect,
)

_LOGGER = logging.getLogger(__name__)

StatusHandler = Callable[[protocol.DeviceStatus], None]
EventHandler = Callable[[protocol.DeviceEvent], None]
SequenceSource = Callable[[str], int]
# the next number of each topic (in order; a topic named twice gets two) and the current epoch
NumberSource = Callable[[Sequence[str]], tuple[list[int], int]]
Message = tuple[str, protocol.Body]  # (topic, body)
RejectHandler = Callable[[str, str], None]  # (device id from the topic, reason)

REJECT_LOG_INTERVAL_S = 60.0
RECONNECT_MAX_S = 15.0
PUBACK_TIMEOUT_S = 10.0
PUBACK_SLICE_S = 0.25  # how often a wait for PUBACKs looks whether the connection is still up
MAX_INFLIGHT = 1000  # QoS 1 messages awaiting their PUBACK: a province's batch goes out at once


def _acknowledged(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return False  # lost with the connection: the client sends it again on reconnecting


class RejectLog:
    """At most one log line per sender per interval; the lines skipped are counted in the next."""

    def __init__(self, interval_s: float = REJECT_LOG_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._senders: dict[str, tuple[float, int]] = {}

    def warn(self, sender: str, topic: str, error: protocol.ProtocolError) -> None:
        now = time.monotonic()
        with self._lock:
            logged_at, skipped = self._senders.get(sender, (-math.inf, 0))
            if now - logged_at < self._interval_s:
                self._senders[sender] = (logged_at, skipped + 1)
                return
            self._senders[sender] = (now, 0)
        more = (
            f" ({skipped} more from {sender or 'an unreadable topic'} in the last"
            f" {self._interval_s:.0f} s not logged)"
            if skipped
            else ""
        )
        _LOGGER.warning("ignored message on %s: %s%s", topic[:200], error, more)


class Dispatcher:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        signing_key: Ed25519PrivateKey,
        next_seq: SequenceSource,
        publish_lock: ProcessLock,
        on_status: StatusHandler,
        on_event: EventHandler,
        client_id: str = "loa-server",
        on_reconnect: Callable[[], None] | None = None,
        tls: ssl.SSLContext | None = None,
        on_rejected: RejectHandler | None = None,
        epoch: Callable[[], int] | None = None,
        brokers: Sequence[BrokerAddress] = (),
        failover_after_s: float = DEFAULT_FAILOVER_AFTER_S,
        numbers: NumberSource | None = None,
    ) -> None:
        """`tls` (Settings.mqtt_tls_context) makes both connections TLS; None = plain MQTT.
        `on_rejected(device_id, reason)` hears of every refused answer-back message; `epoch()`
        is read for every batch (a rotation takes effect without a restart; None = 0).
        `numbers(topics)`, when given, takes a batch's sequence numbers and the epoch at once
        (otherwise `next_seq` per topic and `epoch()`).
        `brokers`, when given, are every broker in the order tried (`host`/`port` then unused)."""
        self.brokers = tuple(brokers) or (BrokerAddress(host, port),)
        self._failover_after_s = failover_after_s
        self._failover = self._new_failover()  # the publishing connection's
        self._listener_failover = self._new_failover()
        self._listener_up = False
        self._tls = tls
        self._username = username
        self._password = password
        self._signing_key = signing_key
        self._next_seq = next_seq
        self._publish_lock = publish_lock
        self._on_status = on_status
        self._on_event = on_event
        self._client_id = client_id
        self._on_reconnect = on_reconnect
        self._on_rejected = on_rejected
        self._epoch = epoch or (lambda: 0)
        self._numbers = numbers or self._numbers_one_by_one
        self._reject_log = RejectLog()
        self._was_connected = False
        self._connected = threading.Event()
        self._refused: str | None = None
        self._stopping = False
        self._client: mqtt.Client | None = None
        self._listener: mqtt.Client | None = None
        self._lock = threading.RLock()
        self._lock_depth = 0

    @property
    def address(self) -> str:
        """The broker the publishing connection is on (or trying next)."""
        return str(self._failover.current)

    @property
    def host(self) -> str:
        return self._failover.current.host

    @property
    def port(self) -> int:
        return self._failover.current.port

    def _new_failover(self) -> Failover:
        return Failover(self.brokers, Backoff(max_s=RECONNECT_MAX_S), self._failover_after_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _new_client(self, client_id: str, clean_session: bool) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(self._username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.reconnect_delay_set(1, 1)  # every later wait is set by `_retry`
        client.max_inflight_messages_set(MAX_INFLIGHT)
        return client

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect the publishing link to the first broker that answers, or raise
        ServiceUnavailable naming the broker(s) and why."""
        client = self._new_client(f"{self._client_id}-{uuid.uuid4().hex[:12]}", True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_connect_fail = self._handle_connect_fail
        self._client = client
        for attempt in range(len(self.brokers)):
            try:
                client.connect(self.host, self.port, keepalive=30)
                break
            except ssl.SSLCertVerificationError as exc:
                raise ServiceUnavailable(
                    f"MQTT broker {self.address}: its TLS certificate is not trusted"
                    f" ({exc.verify_message}); check LOA_MQTT_TLS_CA and that the certificate"
                    f" names {self.host}"
                ) from exc
            except OSError as exc:
                if attempt == len(self.brokers) - 1:
                    every = ", ".join(str(address) for address in self.brokers)
                    raise ServiceUnavailable(
                        f"MQTT broker {every} unreachable: {exc.strerror or exc}"
                    ) from exc
                _LOGGER.warning(
                    "MQTT broker %s unreachable (%s); trying the next",
                    self.address,
                    exc.strerror or exc,
                )
                self._failover.failed()
        client.loop_start()
        if not self._connected.wait(timeout_s) or self._refused:
            client.loop_stop()
            reason = self._refused or f"no answer within {timeout_s:.0f} s"
            raise ServiceUnavailable(f"MQTT broker {self.address} refused the server: {reason}")

    def listen(self) -> None:
        """Subscribe to every receiver's state and events (the scheduler-holding process)."""
        if self._listener is not None:
            return
        listener = self._new_client(self._client_id, False)
        listener.on_connect = self._handle_listener_connect
        listener.on_message = self._handle_message
        listener.on_disconnect = self._handle_listener_disconnect
        listener.on_connect_fail = self._handle_listener_connect_fail
        self._listener = listener
        first = self._listener_failover.current
        listener.connect_async(first.host, first.port, keepalive=30)
        listener.loop_start()

    def stop(self) -> None:
        self._stopping = True
        for client in (self._listener, self._client):
            if client is not None:
                client.disconnect()
                client.loop_stop()
        self._listener = None
        self._connected.clear()

    # --- sending ------------------------------------------------------------------------------

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the publish lock (re-entrant in this process, exclusive across processes)."""
        with self._lock:
            if self._lock_depth == 0:
                self._publish_lock.acquire(blocking=True)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    self._publish_lock.release()

    def send(
        self,
        topic: str,
        body: protocol.Body,
        *,
        ttl_s: float = protocol.DEFAULT_COMMAND_TTL_S,
        retain: bool = False,
    ) -> protocol.Command:
        """Sign and publish one message on `topic` (its stream) with the stream's next number."""
        return self.send_many([(topic, body)], ttl_s=ttl_s, retain=retain)[0]

    def send_many(
        self,
        messages: Sequence[Message],
        *,
        ttl_s: float = protocol.DEFAULT_COMMAND_TTL_S,
        retain: bool = False,
        timeout_s: float = PUBACK_TIMEOUT_S,
    ) -> list[protocol.Command]:
        """Sign and publish each (topic, body) with its stream's next number, in order; return
        once the broker has acknowledged them all or `timeout_s` has passed."""
        if not messages:
            return []
        topics = [topic for topic, _body in messages]
        with self.exclusive():
            seqs, epoch = self._numbers(topics)
            commands = [
                protocol.new_command(body, stream=topic, seq=seq, ttl_s=ttl_s, epoch=epoch)
                for (topic, body), seq in zip(messages, seqs, strict=True)
            ]
            payloads = [protocol.sign_command(command, self._signing_key) for command in commands]
            pending = [
                self._publish_payload(topic, payload, retain)
                for topic, payload in zip(topics, payloads, strict=True)
            ]
            self._wait_for_pubacks(topics, pending, timeout_s)
        return commands

    def _numbers_one_by_one(self, topics: Sequence[str]) -> tuple[list[int], int]:
        return [self._next_seq(topic) for topic in topics], self._epoch()

    def _publish_payload(
        self, topic: str, payload: bytes, retain: bool
    ) -> mqtt.MQTTMessageInfo | None:
        """Hand one message to the client; what to wait on for its PUBACK (None: nothing, the
        client queued it for the next connection)."""
        if self._client is None:
            raise ServiceUnavailable("the MQTT link is not started")
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            return None
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ServiceUnavailable(
                f"MQTT publish to {topic} failed: {mqtt.error_string(info.rc)}"
            )
        return info

    def _wait_for_pubacks(
        self,
        topics: Sequence[str],
        pending: Sequence[mqtt.MQTTMessageInfo | None],
        timeout_s: float,
    ) -> None:
        """Wait (one deadline for them all) until the broker has acknowledged every message
        handed over; stop waiting as soon as the connection is down (the client sends them
        again on reconnecting)."""
        deadline = time.monotonic() + timeout_s
        queued = [topic for topic, info in zip(topics, pending, strict=True) if info is None]
        for info in pending:
            while info is not None and not _acknowledged(info) and self.connected:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                info.wait_for_publish(min(remaining, PUBACK_SLICE_S))
        unacknowledged = sum(1 for info in pending if info is not None and not _acknowledged(info))
        missing = len(queued) + unacknowledged
        if missing and not self.connected:
            _LOGGER.warning(
                "broker %s is down: %d message(s) queued (on %s)",
                self.address,
                missing,
                ", ".join(topics[:5]) + (", …" if len(topics) > 5 else ""),
            )
        elif missing:
            _LOGGER.warning(
                "broker %s: %d of %d message(s) not acknowledged within %.0f s",
                self.address,
                missing,
                len(topics),
                timeout_s,
            )

    # --- callbacks ----------------------------------------------------------------------------

    def _handle_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: mqtt.ReasonCode,
        _properties: mqtt.Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            _LOGGER.error("MQTT broker %s refused the server: %s", self.address, reason)
            client.disconnect()
            self._connected.set()
            return
        self._failover.connected()
        _LOGGER.info("connected to MQTT broker %s", self._failover.position)
        self._connected.set()
        if self._was_connected and self._on_reconnect is not None:
            self._on_reconnect()  # the broker may have lost retained messages: republish
        self._was_connected = True

    def _handle_listener_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: mqtt.ReasonCode,
        _properties: mqtt.Properties | None,
    ) -> None:
        where = self._listener_failover.position
        if reason.is_failure:
            _LOGGER.error("MQTT broker %s refused the answer-back link: %s", where, reason)
            return
        self._listener_failover.connected()
        self._listener_up = True
        client.subscribe([(protocol.STATE_TOPIC_FILTER, 1), (protocol.EVENT_TOPIC_FILTER, 1)])
        _LOGGER.info("listening for receivers' answer-back on %s", where)

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: mqtt.ReasonCode,
        _properties: mqtt.Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._refused or self._stopping:
            return
        if was_connected:
            _LOGGER.warning("lost MQTT broker %s (%s); reconnecting", self.address, reason)
        failover = self._failover
        self._retry(client, failover, failover.lost() if was_connected else failover.failed())

    def _handle_connect_fail(self, client: mqtt.Client, _userdata: object) -> None:
        if not self._stopping:
            self._retry(client, self._failover, self._failover.failed())

    def _handle_listener_disconnect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: mqtt.ReasonCode,
        _properties: mqtt.Properties | None,
    ) -> None:
        was_connected, self._listener_up = self._listener_up, False
        if self._stopping:
            return
        failover = self._listener_failover
        if was_connected:
            _LOGGER.warning("answer-back link lost MQTT broker %s (%s)", failover.current, reason)
        self._retry(client, failover, failover.lost() if was_connected else failover.failed())

    def _handle_listener_connect_fail(self, client: mqtt.Client, _userdata: object) -> None:
        if not self._stopping:
            failover = self._listener_failover
            self._retry(client, failover, failover.failed())

    @staticmethod
    def _retry(client: mqtt.Client, failover: Failover, delay_s: float) -> None:
        if aim_reconnect(client, failover.current, delay_s):
            _LOGGER.info("trying MQTT broker %s in %.1f s", failover.position, delay_s)

    def _handle_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        device_id = ""
        try:
            device_id = protocol.device_id_from_topic(message.topic)
            if message.topic.endswith("/state"):
                status = protocol.DeviceStatus.from_json(message.payload)
                self._check_sender(device_id, status.device_id, message.topic)
                self._on_status(status)
            else:
                event = protocol.DeviceEvent.from_json(message.payload)
                self._check_sender(device_id, event.device_id, message.topic)
                self._on_event(event)
        except protocol.ProtocolError as exc:
            self._reject_log.warn(device_id, message.topic, exc)
            if self._on_rejected is not None:
                self._on_rejected(device_id, exc.reason)
        except Exception:
            _LOGGER.exception("failed to handle message on %s", message.topic)

    @staticmethod
    def _check_sender(topic_device: str, payload_device: str, topic: str) -> None:
        """The broker ACL proves who wrote the topic; the payload must not claim another device."""
        if topic_device != payload_device:
            raise protocol.ProtocolError("spoofed", f"{payload_device} written on {topic}")
