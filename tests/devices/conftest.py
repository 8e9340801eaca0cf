"""Fixtures for the receiver tests: a tiny media web server (with slow files and live relay
streams), real MP3s, signed commands and manifests, configs, brokers on a port of the test's
choosing, agent processes and an MQTT watcher.

Helpers are exposed as fixtures (not an importable module) so they work whatever import mode or
package layout the test tree ends up with.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import LOOPBACK, AmqttProcess

from audio.formats import OutputFormat
from broadcast.fleet.brokers import BrokerAccess
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.fleet.brokers.nats import NatsBroker
from wire import protocol

_LOGGER = logging.getLogger(__name__)

WAIT_S = 10.0


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_S, step: float = 0.02) -> Any:
    """Poll `predicate` until truthy; bounded in time, returns the truthy value or fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


LIVE_LIMIT_S = 60.0  # a live stream ends by itself after this, whoever listens


class MediaServer:
    """Serves in-memory files on 127.0.0.1 and counts requests, so tests see cache hits.

    `slow[name] = bytes per second` throttles a file (a 3G download to interrupt); a name under
    `live/` is a live relay stream: its bytes over and over at `rate` bytes per second, without
    a length, until the client goes (or `LIVE_LIMIT_S`)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        self.slow: dict[str, int] = {}
        self.live: dict[str, tuple[bytes, int]] = {}
        files, hits, slow, live = self.files, self.hits, self.slow, self.live

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                hits[name] = hits.get(name, 0) + 1
                if name in live:
                    self._stream(*live[name])
                    return
                data = files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                rate = slow.get(name)
                if rate is None:
                    self.wfile.write(data)
                    return
                step = max(1, rate // 20)
                for offset in range(0, len(data), step):
                    try:
                        self.wfile.write(data[offset : offset + step])
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.05)

            def _stream(self, data: bytes, rate: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.end_headers()
                step, began, offset = max(1, rate // 20), time.monotonic(), 0
                while time.monotonic() - began < LIVE_LIMIT_S:
                    chunk = (data * 2)[offset : offset + step]
                    offset = (offset + step) % len(data)
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.05)

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def unused_port() -> int:
    """A loopback port nothing listens on (the kernel just handed it out and we closed it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_mp3(seconds: float = 0.5, seed: bytes = b"") -> bytes:
    """Bytes that start with a valid MPEG-1 Layer III 32 kbps frame header, then noise."""
    header = bytes([0xFF, 0xFB, 0x10, 0xC4])  # MPEG-1, Layer III, 32 kbps, 44.1 kHz
    size = int(seconds * 32_000 / 8)
    body = hashlib.sha256(seed).digest() + os.urandom(max(0, size - 36))
    return header + body


@dataclass
class Watcher:
    """A paho client (the server's side) that records everything on the topics it watches."""

    client: mqtt.Client
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def snapshot(self, topic: str | None = None) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if topic is None or t == topic]

    def events(self, device_id: str, command_id: str | None = None) -> list[protocol.DeviceEvent]:
        found = [
            protocol.DeviceEvent.from_json(p)
            for p in self.snapshot(protocol.device_event_topic(device_id))
        ]
        return [e for e in found if command_id is None or e.command_id == command_id]

    def states(self, device_id: str) -> list[protocol.DeviceStatus]:
        return [
            protocol.DeviceStatus.from_json(p)
            for p in self.snapshot(protocol.device_state_topic(device_id))
        ]

    def wait_event(
        self, device_id: str, command_id: str, kind: protocol.EventKind, timeout: float = WAIT_S
    ) -> protocol.DeviceEvent:
        def find() -> protocol.DeviceEvent | None:
            for event in self.events(device_id, command_id):
                if event.kind is kind:
                    return event
            return None

        return wait_until(find, timeout)

    def wait_state(
        self,
        device_id: str,
        predicate: Callable[[protocol.DeviceStatus], bool],
        timeout: float = WAIT_S,
    ) -> protocol.DeviceStatus:
        return wait_until(
            lambda: next((s for s in self.states(device_id) if predicate(s)), None), timeout
        )

    def publish(
        self, topic: str, payload: bytes, timeout: float = WAIT_S, retain: bool = False
    ) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect_watcher(
    host: str, port: int, username: str, password: str, topics: list[str], client_id: str
) -> Watcher:
    """Connect, subscribe and wait for the SUBACK, all bounded in time."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
    )
    client.username_pw_set(username, password)
    watcher = Watcher(client)
    connected = threading.Event()
    subscribed = threading.Event()
    client.on_message = watcher.on_message
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.connect(host, port, 30)
    client.loop_start()
    if not connected.wait(WAIT_S):
        watcher.close()
        raise AssertionError(f"watcher could not connect to {host}:{port}")
    client.subscribe([(topic, 1) for topic in topics])
    if not subscribed.wait(WAIT_S):
        watcher.close()
        raise AssertionError("watcher subscription not acknowledged")
    return watcher


def receiver_config(
    root: Path,
    device_id: str,
    zones: list[str],
    port: int,
    password: str,
    key: Ed25519PrivateKey,
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "device_id": device_id,
        "zones": zones,
        "mqtt": {
            "host": "127.0.0.1",
            "port": port,
            "username": device_id,
            "password": password,
            "keepalive": 10,
        },
        "server_public_key": protocol.public_key_to_text(key.public_key()),
        "data_dir": str(root / device_id / "data"),
        "player": {"kind": "file", "dir": str(root / device_id / "played")},
        "http_timeout_s": 5.0,
    }
    data.update(extra)
    return data


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


_SEQUENCE = itertools.count(1)  # one rising sequence for every stream of every test


def next_seq() -> int:
    return next(_SEQUENCE)


def sign(
    key: Ed25519PrivateKey,
    body: protocol.Body,
    *,
    stream: str,
    seq: int | None = None,
    ttl_s: float = protocol.DEFAULT_COMMAND_TTL_S,
    now: float | None = None,
) -> tuple[protocol.Command, bytes]:
    """A command as the server sends it on `stream` (the next sequence unless `seq` is given)."""
    command = protocol.new_command(
        body, stream=stream, seq=next_seq() if seq is None else seq, ttl_s=ttl_s, now=now
    )
    return command, protocol.sign_command(command, key)


def media_body(url: str, data: bytes, broadcast_id: int = 1, **body: Any) -> protocol.PlayBody:
    return protocol.PlayBody(
        broadcast_id=broadcast_id,
        media_url=url,
        media_sha256=hashlib.sha256(data).hexdigest(),
        **body,
    )


def play_command(
    key: Ed25519PrivateKey,
    url: str,
    data: bytes,
    broadcast_id: int = 1,
    *,
    stream: str,
    seq: int | None = None,
    **body: Any,
) -> tuple[protocol.Command, bytes]:
    return sign(key, media_body(url, data, broadcast_id, **body), stream=stream, seq=seq)


def manifest_command(
    key: Ed25519PrivateKey,
    device_id: str,
    items: list[protocol.PlayBody],
    *,
    seq: int | None = None,
    now: float | None = None,
) -> tuple[protocol.Command, bytes]:
    """A device's manifest, valid (as a message) for the whole 48 h horizon."""
    generated = time.time() if now is None else now
    body = protocol.ManifestBody(
        device_id=device_id,
        generated_at=generated,
        horizon_until=generated + protocol.MANIFEST_HORIZON_S,
        items=tuple(items),
    )
    return sign(
        key,
        body,
        stream=protocol.device_manifest_topic(device_id),
        seq=seq,
        ttl_s=protocol.MANIFEST_HORIZON_S,
        now=now,
    )


def played_lines(played_dir: Path) -> list[dict[str, Any]]:
    log = played_dir / "played.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


_TONES: dict[tuple[float, int], bytes] = {}


def tone_mp3(seconds: float, hz: int = 440) -> bytes:
    """A real broadcast MP3 (mono, 22.05 kHz, 32 kbps CBR, as `audio` renders) of a sine tone,
    made by the bundled ffmpeg; cached per process. Different `hz` → different sha256."""
    key = (round(seconds, 3), hz)
    if key not in _TONES:
        result = subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency={hz}:duration={seconds}",
                *OutputFormat.MP3.ffmpeg_output_args(),
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )
        _TONES[key] = result.stdout
    return _TONES[key]


def started_at(line: dict[str, Any]) -> float:
    """A played.jsonl line's start as epoch seconds."""
    return datetime.fromisoformat(line["started_at"]).timestamp()


def watch_answers(broker: Any, username: str, password: str, client_id: str = "") -> Watcher:
    """A watcher of every receiver's state and events with the server's login, on the server's
    listener (receivers' listeners bind client ids to receivers' logins)."""
    return connect_watcher(
        broker.host,
        broker.server.port,
        username,
        password,
        [protocol.STATE_TOPIC_FILTER, protocol.EVENT_TOPIC_FILTER],
        client_id or f"server-{time.monotonic_ns()}",
    )


class ReceiverKit:
    """The helper functions, handed to tests as one fixture."""

    wait_until = staticmethod(wait_until)
    unused_port = staticmethod(unused_port)
    fake_mp3 = staticmethod(fake_mp3)
    tone_mp3 = staticmethod(tone_mp3)
    connect_watcher = staticmethod(connect_watcher)
    watch_answers = staticmethod(watch_answers)
    receiver_config = staticmethod(receiver_config)
    write_json = staticmethod(write_json)
    next_seq = staticmethod(next_seq)
    sign = staticmethod(sign)
    media_body = staticmethod(media_body)
    play_command = staticmethod(play_command)
    manifest_command = staticmethod(manifest_command)
    played_lines = staticmethod(played_lines)
    started_at = staticmethod(started_at)


REPO_ROOT = Path(protocol.__file__).resolve().parent.parent


class AgentProcess:
    """`python -m devices.agent` (or `devices.fleet`) as a real child process, output to a file."""

    def __init__(self, module: str, args: list[str], log_path: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=REPO_ROOT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_log(self, text: str, timeout: float = WAIT_S) -> None:
        def seen() -> bool:
            if text in self.log:
                return True
            if not self.alive():
                raise AssertionError(f"process exited ({self.process.returncode}):\n{self.log}")
            return False

        try:
            wait_until(seen, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; waiting for {text!r} in:\n{self.log}") from None

    def wait_exit(self, timeout: float = WAIT_S) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"process still running after {timeout} s:\n{self.log}") from None

    def terminate(self, timeout: float = WAIT_S) -> int:
        """SIGTERM: the clean way a service manager stops the receiver."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill9(self) -> None:
        """SIGKILL: the power cut; no chance to say goodbye, so the broker sends the will."""
        if self.alive():
            self.process.kill()
        self.process.wait(WAIT_S)


@pytest.fixture
def spawn() -> Iterator[Callable[..., AgentProcess]]:
    """Start agent/fleet processes; whatever is still running at teardown is killed."""
    made: list[AgentProcess] = []

    def start(module: str, args: list[str], log_path: Path) -> AgentProcess:
        process = AgentProcess(module, args, log_path)
        made.append(process)
        return process

    yield start
    for process in made:
        if process.alive():
            process.process.kill()
            process.process.wait(WAIT_S)


@pytest.fixture(scope="session")
def kit() -> ReceiverKit:
    return ReceiverKit()


@pytest.fixture(scope="module")
def media_server() -> Iterator[MediaServer]:
    server = MediaServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def server_key() -> Ed25519PrivateKey:
    return protocol.generate_private_key()


class PortBroker:
    """A broker of one kind on a port chosen up front, which a test may stop and start again:
    what a receiver sees when the commune's server room loses power."""

    def __init__(
        self,
        kind: str,
        directory: Path,
        port: int,
        access: BrokerAccess,
        passwords: dict[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.host = LOOPBACK
        self.port = port
        # mosquitto gives the server a listener of its own; amqtt has one for all
        self.server_port = unused_port() if kind == "mosquitto" else port
        self.directory = directory
        self.access = access
        self.passwords = passwords  # nats writes bcrypt hashes of them (it cannot read `$7$`)
        self._broker: AmqttProcess | MosquittoBroker | NatsBroker | None = None
        self._starts = 0

    def start(self) -> PortBroker:
        directory = self.directory / f"{self.kind}-{self._starts}"
        self._starts += 1
        if self.kind == "amqtt":
            self._broker = AmqttProcess(directory, self.host, self.port, self.access)
        elif self.kind == "nats":
            if self.passwords is None:
                raise ValueError("a nats broker needs the users' passwords")
            self._broker = NatsBroker(directory, self.host, self.port, self.access, self.passwords)
        else:
            self._broker = MosquittoBroker(
                directory, self.host, self.port, self.access, server_port=self.server_port
            )
        self._broker.start()
        return self

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    def kill(self) -> None:
        """SIGKILL: a power cut, no goodbye to anyone (and no waiting for clients)."""
        if self._broker is not None:
            process = self._broker._process
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(WAIT_S)
            self._broker = None


@pytest.fixture
def port_broker(tmp_path: Path) -> Iterator[Callable[..., PortBroker]]:
    """`port_broker(kind, access, passwords=None)`: a PortBroker on a free port, not started
    yet (nats needs the passwords)."""
    made: list[PortBroker] = []

    def make(
        kind: str, access: BrokerAccess, passwords: dict[str, str] | None = None
    ) -> PortBroker:
        broker = PortBroker(kind, tmp_path / "brokers", unused_port(), access, passwords)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()
