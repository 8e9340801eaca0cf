"""The server's MQTT link: publishes signed commands, receives receivers' states and events.

It owns the connection state (Home Assistant's coordinator pattern); the rest of the server calls
`publish()` and gets answer-back through the two callbacks it registers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broadcast.errors import ServiceUnavailable
from devices import protocol

_LOGGER = logging.getLogger(__name__)

StatusHandler = Callable[[protocol.DeviceStatus], None]
EventHandler = Callable[[protocol.DeviceEvent], None]


class Dispatcher:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        signing_key: Ed25519PrivateKey,
        on_status: StatusHandler,
        on_event: EventHandler,
        client_id: str = "loa-server",
    ) -> None:
        self.host = host
        self.port = port
        self._signing_key = signing_key
        self._on_status = on_status
        self._on_event = on_event
        self._connected = threading.Event()
        self._refused: str | None = None
        self._stopping = False
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(1, 15)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect, or raise ServiceUnavailable naming host:port and why."""
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise ServiceUnavailable(
                f"MQTT broker {self.address} unreachable: {exc.strerror or exc}"
            ) from exc
        self._client.loop_start()
        if not self._connected.wait(timeout_s) or self._refused:
            self._client.loop_stop()
            reason = self._refused or f"no answer within {timeout_s:.0f} s"
            raise ServiceUnavailable(f"MQTT broker {self.address} refused the server: {reason}")

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def publish(self, topic: str, command: protocol.Command, timeout_s: float = 10.0) -> None:
        payload = protocol.sign_command(command, self._signing_key)
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise ServiceUnavailable(
                f"MQTT publish to {topic} failed: {mqtt.error_string(info.rc)}"
            )
        if not self.connected:
            _LOGGER.warning("broker %s is down: command %s queued", self.address, command.id)
            return
        info.wait_for_publish(timeout_s)

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
        client.subscribe([(protocol.STATE_TOPIC_FILTER, 1), (protocol.EVENT_TOPIC_FILTER, 1)])
        _LOGGER.info("connected to MQTT broker %s", self.address)
        self._connected.set()

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
            _LOGGER.warning("ignored message on %s: %s", message.topic, exc)
        except Exception:
            _LOGGER.exception("failed to handle message on %s", message.topic)

    @staticmethod
    def _check_sender(topic_device: str, payload_device: str, topic: str) -> None:
        """The broker ACL proves who wrote the topic; the payload must not claim another device."""
        if topic_device != payload_device:
            raise protocol.ProtocolError("spoofed", f"{payload_device} written on {topic}")
