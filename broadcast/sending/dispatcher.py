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

`send()` stamps each message with its stream (the topic), the stream's next sequence number and
the current sequence epoch (`broadcast.store.sequences`), signs it, and publishes it while holding
the publish lock (`broadcast.store.locks`: a file beside SQLite, a PostgreSQL advisory lock across
hosts), so each stream's messages reach the broker in sequence order whichever process sends
them.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcast.errors import ServiceUnavailable
from broadcast.store.locks import ProcessLock
from wire import protocol

_LOGGER = logging.getLogger(__name__)

StatusHandler = Callable[[protocol.DeviceStatus], None]
EventHandler = Callable[[protocol.DeviceEvent], None]
SequenceSource = Callable[[str], int]
RejectHandler = Callable[[str, str], None]  # (device id from the topic, reason)

REJECT_LOG_INTERVAL_S = 60.0


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
    ) -> None:
        """`tls` (Settings.mqtt_tls_context) makes both connections TLS; None = plain MQTT.
        `on_rejected(device_id, reason)` hears of every refused answer-back message; `epoch()`
        is read for every message (a rotation takes effect without a restart; None = 0)."""
        self.host = host
        self.port = port
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
        return f"{self.host}:{self.port}"

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
        client.reconnect_delay_set(1, 15)
        return client

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect the publishing link, or raise ServiceUnavailable naming host:port and why."""
        client = self._new_client(f"{self._client_id}-{uuid.uuid4().hex[:12]}", True)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        self._client = client
        try:
            client.connect(self.host, self.port, keepalive=30)
        except ssl.SSLCertVerificationError as exc:
            raise ServiceUnavailable(
                f"MQTT broker {self.address}: its TLS certificate is not trusted"
                f" ({exc.verify_message}); check LOA_MQTT_TLS_CA and that the certificate"
                f" names {self.host}"
            ) from exc
        except OSError as exc:
            raise ServiceUnavailable(
                f"MQTT broker {self.address} unreachable: {exc.strerror or exc}"
            ) from exc
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
        self._listener = listener
        listener.connect_async(self.host, self.port, keepalive=30)
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
        with self.exclusive():
            command = protocol.new_command(
                body, stream=topic, seq=self._next_seq(topic), ttl_s=ttl_s, epoch=self._epoch()
            )
            self._publish_payload(topic, protocol.sign_command(command, self._signing_key), retain)
        return command

    def _publish_payload(
        self, topic: str, payload: bytes, retain: bool, timeout_s: float = 10.0
    ) -> None:
        if self._client is None:
            raise ServiceUnavailable("the MQTT link is not started")
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise ServiceUnavailable(
                f"MQTT publish to {topic} failed: {mqtt.error_string(info.rc)}"
            )
        if not self.connected:
            _LOGGER.warning("broker %s is down: message on %s queued", self.address, topic)
            return
        info.wait_for_publish(timeout_s)

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
        _LOGGER.info("connected to MQTT broker %s", self.address)
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
        if reason.is_failure:
            _LOGGER.error("MQTT broker %s refused the answer-back link: %s", self.address, reason)
            return
        client.subscribe([(protocol.STATE_TOPIC_FILTER, 1), (protocol.EVENT_TOPIC_FILTER, 1)])
        _LOGGER.info("listening for receivers' answer-back on %s", self.address)

    def _handle_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: mqtt.ReasonCode,
        _properties: mqtt.Properties | None,
    ) -> None:
        if self._connected.is_set() and not self._refused and not self._stopping:
            _LOGGER.warning("lost MQTT broker %s (%s); reconnecting", self.address, reason)
        self._connected.clear()

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
