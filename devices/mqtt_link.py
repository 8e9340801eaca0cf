"""A receiver's MQTT link: one persistent session to the broker, kept up over a poor 3G link.

Everything paho-specific of the receiver agent lives here, so `devices.agent` only deals with
"a command arrived", "(re)connected", "publish this state or event":

* a persistent session (`clean_session=False`, client id = device id) lets the broker queue
  QoS 1 commands while the receiver is offline; paho reconnects with backoff and jitter (1 s
  doubling to `mqtt.reconnect_max_s`, 30 s by default), and with several brokers (`mqtt.hosts`)
  moves on to the next after a failed attempt, or after a lost connection that has not come
  back within `mqtt.failover_after_s` (`wire.brokers.Failover`, the server's rule too); the
  same client id and persistent session on every broker;
* on every (re)connect the command topics (the device's own and its zones') and the device's
  manifest topic (retained: the broker hands over the latest manifest at once) are subscribed;
  a subscription the broker refuses is asked for again after a wait (2 s doubling to 5 min,
  while connected): nats-server refuses SUBSCRIBEs for a moment while its cluster elects new
  stream leaders after a node's death, and an operator who fixes a receiver's ACL reloads the
  broker, not every receiver;
* a retained last will (the agent's `offline` state, carrying its boot id) is left with the
  broker; states are published retained, events as QoS 1 (paho queues them while offline);
* with `mqtt.tls` the link is TLS (1.2 or newer, the broker's certificate and host name
  verified against the config's CA); a CA file that cannot be read stops the agent at start
  (ConfigError), an untrusted broker certificate is logged, with what to check, and retried;
* connection problems are logged once per distinct problem, then retried forever; only a
  CONNACK refusal a retry cannot fix (bad credentials) is fatal.

paho's callbacks run in its network thread: nothing here blocks, and a failing command handler
is logged, never allowed to kill that thread.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from wire.brokers import Backoff, Failover, aim_reconnect
from wire.config import MqttSettings, tls_context
from wire.protocol import (
    DeviceEvent,
    DeviceStatus,
    device_command_topic,
    device_event_topic,
    device_manifest_topic,
    device_state_topic,
    zone_command_topic,
)

RESUBSCRIBE_FIRST_S = 2.0  # a refused subscription is asked for again after this, doubling
RESUBSCRIBE_MAX_S = 300.0

# The receiver logs as one component: lines keep saying `devices.agent` (operators grep for it).
_LOGGER = logging.getLogger("devices.agent")

# CONNACK refusals that a retry cannot fix (MQTT 3.1.1 codes 2, 4, 5 as paho's v5 reason codes).
_FATAL_CONNACK = {
    133: "client identifier rejected (check device_id and mqtt.client_id in the config)",
    134: "bad username or password (check mqtt.username and mqtt.password in the config)",
    135: "not authorized (check mqtt.username and mqtt.password in the config)",
}


class MqttLink:
    """The paho client of one receiver, its subscriptions and its connection-health reporting."""

    def __init__(
        self,
        device_id: str,
        settings: MqttSettings,
        zones: Sequence[str],
        on_command: Callable[[str, bytes, bool], None],
        on_connected: Callable[[], None],
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        """`on_command(topic, payload, retained)`, `on_connected()` and `on_subscribed()` (the
        broker answered the subscriptions: `refused_topics` is up to date) are called in paho's
        thread. Raises ConfigError if the TLS files of `settings.tls` cannot be used."""
        self.device_id = device_id
        self._settings = settings
        self._failover = Failover(
            settings.brokers,
            Backoff(max_s=max(1.0, settings.reconnect_max_s)),
            settings.failover_after_s,
        )
        self._tls = None if settings.tls is None else tls_context(settings.tls)
        self._zones = zones
        self._on_command = on_command
        self._on_connected = on_connected
        self._on_subscribed = on_subscribed
        self._subscribing: dict[int, list[str]] = {}  # SUBSCRIBE message id -> its topics
        self._subscribe_lock = threading.Lock()  # the retry timer subscribes from its thread
        self._refused_topics: tuple[str, ...] = ()
        self._resubscribe_backoff = Backoff(RESUBSCRIBE_FIRST_S, RESUBSCRIBE_MAX_S)
        self._resubscribe_timer: threading.Timer | None = None
        self._connection = 0  # counts connections: a retry timer is for the one it began on
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._last_failure = ""
        self._fatal: str | None = None
        self._fatal_event = threading.Event()
        self._closing = False
        self._connack_seen = False  # the broker answered this connection attempt

    @property
    def broker(self) -> str:
        """The broker (`host:port`) the link is on, or trying next."""
        return str(self._failover.current)

    @property
    def brokers(self) -> tuple[str, ...]:
        return tuple(str(address) for address in self._failover.brokers)

    @property
    def zones(self) -> tuple[str, ...]:
        """The zones whose command topics this link subscribes to (from the config file)."""
        return tuple(self._zones)

    @property
    def refused_topics(self) -> tuple[str, ...]:
        """Topics the broker refused at the last subscription (its ACL does not allow them).

        mosquitto grants a forbidden subscription and drops the messages instead, so the server
        also compares `zones` with the zones it registered the receiver in."""
        return self._refused_topics

    @property
    def opened(self) -> bool:
        return self._client is not None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def fatal_error(self) -> str | None:
        """Set when the broker refused our credentials: the process should exit non-zero."""
        return self._fatal

    def wait_fatal(self, timeout: float | None = None) -> bool:
        return self._fatal_event.wait(timeout)

    def open(self, will: DeviceStatus) -> None:
        """Create the client with `will` as its retained last will; `connect` starts it."""
        settings = self._settings
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.client_id_of(self.device_id),
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(settings.username, settings.password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.will_set(device_state_topic(self.device_id), will.to_json(), qos=1, retain=True)
        client.reconnect_delay_set(1, 1)  # every later wait is set by `_retry`
        client.suppress_exceptions = True  # an exception must never kill the network thread
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client

    def connect(self) -> None:
        """Connect in the background; paho retries with backoff until `close`."""
        if self._client is None:
            return
        first = self._failover.current
        self._client.connect_async(first.host, first.port, self._settings.keepalive)
        self._client.loop_start()

    def publish_state(self, status: DeviceStatus) -> mqtt.MQTTMessageInfo | None:
        """Publish the retained state (QoS 1); callers check `connected` first."""
        if self._client is None:
            return None
        return self._client.publish(
            device_state_topic(self.device_id), status.to_json(), qos=1, retain=True
        )

    def publish_event(self, event: DeviceEvent) -> None:
        """QoS 1 events are queued by paho while offline and delivered after reconnecting."""
        if self._client is None:
            return
        self._client.publish(device_event_topic(self.device_id), event.to_json(), qos=1)

    def expect_close(self) -> None:
        """The agent is stopping: losing the connection from now on is not worth a warning."""
        self._closing = True

    def close(self) -> None:
        if self._client is None:
            return
        self._cancel_resubscribe()
        self._client.disconnect()
        try:
            self._client.loop_stop()
        except AttributeError:
            # paho's loop_stop races its own network thread ending (it joins a thread it has
            # just cleared): the thread is gone either way, which is what we wanted.
            _LOGGER.debug("%s: network thread ended while stopping", self.broker)

    # --- paho callbacks (network thread: no blocking work here) --------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connack_seen = True
        if reason.is_failure:
            fatal = _FATAL_CONNACK.get(reason.value)
            if fatal is not None:
                self._fail(f"broker {self.broker} refused the connection: {fatal}")
                client.disconnect()
            else:
                self._warn_once(f"broker {self.broker} refused the connection: {reason}")
            return
        self._last_failure = ""
        self._failover.connected()
        self._cancel_resubscribe()
        self._connection += 1
        self._connected.set()
        _LOGGER.info(
            "%s: connected to broker %s (session present: %s)",
            self.device_id,
            self._failover.position,
            bool(getattr(flags, "session_present", False)),
        )
        topics = [device_command_topic(self.device_id), device_manifest_topic(self.device_id)]
        topics += [zone_command_topic(zone) for zone in self._zones]
        self._subscribe(client, topics)
        self._on_connected()

    def _on_connect_fail(self, client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this from inside its `except OSError`, so the cause is still at hand.
        exc = sys.exc_info()[1]
        if isinstance(exc, ssl.SSLError):
            self._warn_once(f"broker {self.broker}: {self._describe_tls(exc)}")
        else:
            self._warn_once(f"broker {self.broker} unreachable: {_describe(exc)}")
        if not self._closing:
            self._retry(client, self._failover.failed())

    def _on_disconnect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._cancel_resubscribe()  # the next connection subscribes to everything again
        if self._closing or self._fatal is not None:
            return
        answered, self._connack_seen = self._connack_seen, False
        if was_connected:
            self._warn_once(f"lost connection to broker {self.broker} ({reason})")
        elif not answered:
            # A plain client on a TLS-only port, or a TLS 1.3 client without the certificate
            # the broker requires: the broker hangs up instead of answering the CONNECT.
            hint = (
                "if it is a TLS port, add an 'mqtt.tls' section to the config"
                if self._tls is None
                else "if it requires client certificates, set mqtt.tls.cert_file and key_file"
            )
            self._warn_once(f"broker {self.broker} hung up without answering: {hint}")
        self._retry(client, self._failover.lost() if was_connected else self._failover.failed())

    def _retry(self, client: mqtt.Client, delay_s: float) -> None:
        if aim_reconnect(client, self._failover.current, delay_s):
            _LOGGER.info(
                "%s: trying broker %s in %.1f s", self.device_id, self._failover.position, delay_s
            )

    def _subscribe(self, client: mqtt.Client, topics: Sequence[str]) -> None:
        """SUBSCRIBE to `topics` (QoS 1), remembering them under the message id for the SUBACK."""
        with self._subscribe_lock:
            _result, mid = client.subscribe([(topic, 1) for topic in topics])
            if mid is not None:
                self._subscribing[mid] = list(topics)

    def _on_subscribe(
        self, client: mqtt.Client, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        with self._subscribe_lock:
            topics = self._subscribing.pop(mid, [])
        before = set(self._refused_topics)
        refused = []
        for index, reason in enumerate(reasons):
            if reason.is_failure:
                topic = topics[index] if index < len(topics) else "?"
                refused.append(topic)
                # once per topic refused in a row: a retry every few minutes must not flood
                log = _LOGGER.debug if topic in before else _LOGGER.error
                log(
                    "%s: broker %s refused the subscription to %s (%s): check its topic ACL"
                    " (`loa mqtt-config` on the server, then reload the broker); asking again",
                    self.device_id,
                    self.broker,
                    topic,
                    reason,
                )
        if refused:
            self._resubscribe_later(client, refused)
        else:
            self._resubscribe_backoff.reset()
            if before:
                _LOGGER.info(
                    "%s: broker %s granted the subscription to %s",
                    self.device_id,
                    self.broker,
                    ", ".join(topic for topic in topics if topic in before),
                )
        self._refused_topics = tuple(refused)
        if self._on_subscribed is not None:
            self._on_subscribed()

    def _resubscribe_later(self, client: mqtt.Client, topics: Sequence[str]) -> None:
        """Ask for `topics` again after the next wait, if this connection is still up then."""
        if self._closing:
            return
        connection = self._connection

        def again() -> None:
            if self._closing or connection != self._connection or not self.connected:
                return
            self._subscribe(client, topics)

        self._cancel_resubscribe()
        timer = threading.Timer(self._resubscribe_backoff.next_delay(), again)
        timer.daemon = True
        self._resubscribe_timer = timer
        timer.start()

    def _cancel_resubscribe(self) -> None:
        timer, self._resubscribe_timer = self._resubscribe_timer, None
        if timer is not None:
            timer.cancel()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._on_command(message.topic, bytes(message.payload), bool(message.retain))
        except Exception:
            _LOGGER.exception(
                "%s: unexpected error handling a message on %s", self.device_id, message.topic
            )

    # --- failures -------------------------------------------------------------------------------

    def _describe_tls(self, exc: ssl.SSLError) -> str:
        """What went wrong in the TLS handshake, and which part of the config to look at."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            trusted = "the CA in mqtt.tls (ca_pem or ca_file)"
            if not (
                self._settings.tls and (self._settings.tls.ca_pem or self._settings.tls.ca_file)
            ):
                trusted = "the system's CAs (no mqtt.tls.ca_pem or ca_file)"
            return (
                f"TLS: the broker's certificate is not trusted ({exc.verify_message}); it must be"
                f" signed by {trusted} and name {self._failover.current.host}"
            )
        reason = str(exc.reason or exc.strerror or exc).lower().replace("_", " ")
        return (
            f"TLS handshake failed ({reason}): check that port {self._failover.current.port} is the"
            " broker's TLS listener and whether it wants a client certificate"
            " (mqtt.tls.cert_file)"
        )

    def _warn_once(self, message: str) -> None:
        """One line per distinct connection problem: a flapping 3G link must not flood logs."""
        if message != self._last_failure:
            _LOGGER.warning("%s: %s; retrying", self.device_id, message)
        else:
            _LOGGER.debug("%s: %s; retrying", self.device_id, message)
        self._last_failure = message

    def _fail(self, message: str) -> None:
        if self._fatal is None:
            self._fatal = message
            _LOGGER.error("%s: %s", self.device_id, message)
        self._fatal_event.set()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "connection failed"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__
