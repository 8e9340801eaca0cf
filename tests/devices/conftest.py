"""Fixtures for the receiver tests: a tiny media web server, keys, configs and an MQTT watcher.

Helpers are exposed as fixtures (not an importable module) so they work whatever import mode or
package layout the test tree ends up with.
"""

from __future__ import annotations

import hashlib
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices import protocol

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


class MediaServer:
    """Serves in-memory files on 127.0.0.1 and counts requests, so tests see cache hits."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: dict[str, int] = {}
        files, hits = self.files, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                hits[name] = hits.get(name, 0) + 1
                data = files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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

    def publish(self, topic: str, payload: bytes, timeout: float = WAIT_S) -> None:
        info = self.client.publish(topic, payload, qos=1)
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


def play_command(
    key: Ed25519PrivateKey, url: str, data: bytes, broadcast_id: int = 1, **body: Any
) -> tuple[protocol.Command, bytes]:
    command = protocol.new_command(
        protocol.PlayBody(
            broadcast_id=broadcast_id,
            media_url=url,
            media_sha256=hashlib.sha256(data).hexdigest(),
            **body,
        )
    )
    return command, protocol.sign_command(command, key)


def played_lines(played_dir: Path) -> list[dict[str, Any]]:
    log = played_dir / "played.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


class ReceiverKit:
    """The helper functions, handed to tests as one fixture."""

    wait_until = staticmethod(wait_until)
    unused_port = staticmethod(unused_port)
    fake_mp3 = staticmethod(fake_mp3)
    connect_watcher = staticmethod(connect_watcher)
    receiver_config = staticmethod(receiver_config)
    write_json = staticmethod(write_json)
    play_command = staticmethod(play_command)
    played_lines = staticmethod(played_lines)


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
