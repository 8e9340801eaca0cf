"""Test helpers for real MQTT brokers: free ports, broker processes, and a bounded paho client.

Shared by tests/conftest.py (broker fixtures) and any test that talks MQTT. Every wait here is
bounded in time so a broken broker fails a test instead of hanging it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
import wave
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy
from paho.mqtt.reasoncodes import ReasonCode

import broadcast
from broadcast.const import SERVER_MQTT_USERNAME
from broadcast.fleet.brokers import BrokerAccess, BrokerError, wait_for_port
from broadcast.settings import Secrets

_LOGGER = logging.getLogger(__name__)

BROKER_KINDS = ("amqtt", "mosquitto", "nats")
# The kinds the whole product (receivers, server, faults) is tested on: nats-server (the
# clustered candidate, broadcast.fleet.brokers.nats, one node) too, since receivers and the
# server carry secret client ids (it cannot bind ids to logins). It needs the passwords
# (`loa_passwords` for a data directory), as it cannot read `$7$` hashes.
PRODUCT_BROKER_KINDS = ("amqtt", "mosquitto", "nats")
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 10.0
WAIT_S = 5.0  # how long to wait for something that must happen
QUIET_S = 0.5  # how long to watch for something that must NOT happen
REPO_ROOT = Path(broadcast.__file__).resolve().parent.parent


@contextmanager
def sql_statements(engine: sqlalchemy.Engine) -> Iterator[list[str]]:
    """The SQL text of every statement `engine` runs meanwhile: what the scale tests count
    (a query per zone or per receiver would make the count grow with the province)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)


def loa_passwords(data_dir: Path) -> dict[str, str]:
    """Every broker login's password in a Loa data directory (the server's secret, each
    receiver's config): what a nats broker needs, since it cannot read `$7$` hashes."""
    passwords = {SERVER_MQTT_USERNAME: Secrets(data_dir).mqtt_password}
    for path in sorted((data_dir / "devices").glob("*.json")):
        mqtt_login = json.loads(path.read_text(encoding="utf-8"))["mqtt"]
        passwords[mqtt_login["username"]] = mqtt_login["password"]
    return passwords


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out for bind(0) and for every outgoing connection."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _worker_slice() -> range:
    """This test process's own stretch of ports, below the ephemeral range.

    A port from bind(0) lies in the ephemeral range, so once its server stopped (a broker or a
    server restarted by a fault test) any outgoing connection on the machine could take it as
    its source port, and the restart found it "already in use". Ports below the range are never
    handed out by the kernel; each xdist worker gets its own slice so two workers never pick
    the same one.
    """
    floor = 20000
    ceiling = max(floor + 1000, _ephemeral_range()[0])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(worker) % workers if worker.isdigit() else 0
    size = (ceiling - floor) // workers
    return range(floor + index * size, floor + (index + 1) * size)


_SLICE = _worker_slice()
_next_in_slice = [_SLICE.start + random.randrange(len(_SLICE))]  # another session may run too


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now, outside the kernel's ephemeral range."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` different free ports from this worker's slice (`_worker_slice`), each checked by
    binding it; the slice is walked round, so a test never gets a port it was given a moment
    ago by another call."""
    ports: list[int] = []
    for _ in range(len(_SLICE)):
        port = _next_in_slice[0]
        _next_in_slice[0] = port + 1 if port + 1 < _SLICE.stop else _SLICE.start
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"no {count} free ports in {_SLICE} on {host}")


@dataclass
class RunningBroker:
    """Where a test broker listens; `kind` is one of BROKER_KINDS.

    `port` is the receivers' listener; `server_port` the server's (mosquitto gives the server a
    listener of its own, `broadcast.fleet.brokers.mosquitto`; 0: the same as `port`, as on amqtt
    and nats).
    """

    kind: str
    host: str
    port: int
    server_port: int = 0

    @property
    def server(self) -> RunningBroker:
        """The same broker as the server reaches it."""
        return RunningBroker(self.kind, self.host, self.server_port or self.port)


class AmqttProcess:
    """The embedded broker as the `loa broker` command runs it, in its own process."""

    def __init__(self, directory: Path, host: str, port: int, access: BrokerAccess) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.access = access
        self.log_path = directory / "amqtt.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        access_path = self.directory / "access.json"
        self.access.save(access_path)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "broadcast.fleet.brokers.embedded",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--access",
                    str(access_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=self.directory,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"amqtt broker exited: {self.log_tail()}")
            if wait_for_port(self.host, self.port, 0.1):
                return
        self.stop()
        raise BrokerError(f"amqtt broker did not listen within {timeout_s:g} s: {self.log_tail()}")

    def stop(self, timeout_s: float = 10) -> None:
        """SIGTERM our own process (as `loa broker` gets on shutdown), kill it if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class MqttProbe:
    """A paho 2.x client driven synchronously with bounded waits; collects what it receives.

    Automatic reconnects are off so that a refused login stays refused.
    """

    broker: RunningBroker
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    clean_session: bool = True
    keepalive: int = 30
    messages: queue.Queue[Received] = field(default_factory=queue.Queue)
    seen: list[Received] = field(default_factory=list)  # skipped over by expect()

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=self.clean_session,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self._connack: queue.Queue[tuple[ReasonCode, bool]] = queue.Queue()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._suback_event = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._looping = False

    def _on_connect(self, _c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, rc: ReasonCode,
                    _p: object) -> None:  # fmt: skip
        self._connack.put((rc, bool(flags.session_present)))

    def _on_subscribe(self, _c: mqtt.Client, _u: object, mid: int, codes: list[ReasonCode],
                      _p: object) -> None:  # fmt: skip
        with self._suback_event:
            self._subacks[mid] = list(codes)
            self._suback_event.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.put(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    def will(self, topic: str, payload: bytes, qos: int = 1, retain: bool = True) -> MqttProbe:
        self.client.will_set(topic, payload, qos=qos, retain=retain)
        return self

    def connect(self, timeout_s: float = WAIT_S) -> tuple[ReasonCode, bool]:
        """Connect and wait for CONNACK; returns (reason code, session present)."""
        self.client.connect(self.broker.host, self.broker.port, keepalive=self.keepalive)
        self.client.loop_start()
        self._looping = True
        try:
            return self._connack.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no CONNACK within {timeout_s:g} s") from None

    def connect_ok(self) -> MqttProbe:
        code, _present = self.connect()
        assert not code.is_failure, f"{self.username} could not connect: {code}"
        return self

    def subscribe(self, topic: str, qos: int = 1, timeout_s: float = WAIT_S) -> ReasonCode:
        """Subscribe and wait for SUBACK; returns the granted QoS or failure reason code."""
        result, mid = self.client.subscribe(topic, qos=qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, f"subscribe not sent: {result}"
        deadline = time.monotonic() + timeout_s
        with self._suback_event:
            while mid not in self._subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no SUBACK for {topic} within {timeout_s:g} s")
                self._suback_event.wait(left)
            return self._subacks.pop(mid)[0]

    def subscribe_ok(self, topic: str, qos: int = 1) -> MqttProbe:
        code = self.subscribe(topic, qos)
        assert not code.is_failure, f"{self.username} could not subscribe to {topic}: {code}"
        return self

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                timeout_s: float = WAIT_S) -> None:  # fmt: skip
        """Publish and, for QoS > 0, wait until the broker acknowledged it."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=timeout_s)
        assert info.is_published(), f"{topic} not acknowledged within {timeout_s:g} s"

    def expect(self, topic: str, timeout_s: float = WAIT_S) -> Received:
        """The next message on `topic`, also one that came while another topic was awaited
        (MQTT orders messages per topic only; nats delivers each subscription on its own).
        Others received meanwhile are kept in `self.seen`."""
        for number, early in enumerate(self.seen):
            if early.topic == topic:
                return self.seen.pop(number)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"nothing on {topic} within {timeout_s:g} s; saw {self.seen}")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if message.topic == topic:
                return message
            self.seen.append(message)

    def drain(self, quiet_s: float = QUIET_S) -> list[Received]:
        """Everything received so far plus whatever arrives within `quiet_s`."""
        got = list(self.seen)
        self.seen.clear()
        deadline = time.monotonic() + quiet_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        while not self.messages.empty():
            got.append(self.messages.get_nowait())
        return got

    def close(self) -> None:
        """Clean DISCONNECT (no last will) and stop the network thread."""
        if self._looping:
            self.client.disconnect()
            self.client.loop_stop()
            self._looping = False

    def freeze(self) -> None:
        """Stop all traffic (no PINGREQ, no PUBACK) but keep the TCP connection open: what the
        broker sees of a receiver whose 3G link died without a FIN (a half-open connection)."""
        if self._looping:
            self.client.loop_stop()
            self._looping = False

    def drop(self) -> None:
        """Vanish without DISCONNECT, like a receiver losing power: the broker sends the will."""
        if self._looping:
            self.client.loop_stop()
            self._looping = False
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def connected(broker: RunningBroker, username: str, password: str, client_id: str = "",
              clean_session: bool = True) -> MqttProbe:  # fmt: skip
    """A probe logged in as `username`, or an AssertionError naming why not."""
    return MqttProbe(broker, client_id, username, password, clean_session).connect_ok()


def tone_wav(path: Path, seconds: float = 2.0, peak: float = 0.5, rate: int = 16000) -> Path:
    """A voiced, syllable-modulated tone: loud enough to broadcast, never silent."""
    samples = array(
        "h",
        (
            round(
                32767
                * peak
                * (0.35 + 0.65 * abs(math.sin(math.pi * 4 * n / rate)))
                * math.sin(2 * math.pi * 220 * n / rate)
            )
            for n in range(round(seconds * rate))
        ),
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def self_signed_ca_pem(rsa_bits: int = 0) -> str:
    """A throwaway CA certificate (P-256, or RSA of `rsa_bits`) as PEM, valid for a day."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        if rsa_bits
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Loa test CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
