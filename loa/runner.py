"""Running the server: web + service (+ embedded broker, + simulated receivers for the demo).

Everything runs in one process tree and stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from werkzeug.serving import make_server

from broadcast.errors import LoaError, ServiceUnavailable
from broadcast.fleet import registry
from broadcast.fleet.brokers import BrokerError, port_is_free
from broadcast.fleet.brokers.embedded import EmbeddedBroker
from broadcast.fleet.streaming import IcecastServer, StreamingError, StreamPasswords
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.models import Device, utcnow

_LOGGER = logging.getLogger(__name__)


class WebServer:
    """The Flask app on a threaded WSGI server in a background thread."""

    def __init__(self, service: BroadcastService) -> None:
        from web import create_app

        settings = service.settings
        if not port_is_free(settings.host, settings.port):
            raise ServiceUnavailable(f"web port {settings.host}:{settings.port} is already in use")
        self._server = make_server(settings.host, settings.port, create_app(service), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="loa-web")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


class Fleet:
    """Simulated receivers as one child process (`python -m devices.fleet`)."""

    def __init__(self, config_dir: Path, count: int) -> None:
        self.count = count
        self._argv = [
            sys.executable,
            "-m",
            "devices.fleet",
            "--config-dir",
            str(config_dir),
            "--count",
            str(count),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen([*self._argv, "--exit-with-parent", str(os.getpid())])

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)


def wait_for_receivers(service: BroadcastService, count: int, timeout_s: float = 20.0) -> None:
    """Until `count` receivers report online: a receiver's first connection creates its broker
    session, and a command sent before that has nowhere to wait for it. The demo prints its
    banner (and invites the first announcement) only then."""
    deadline = time.monotonic() + timeout_s
    since = utcnow() - timedelta(seconds=1)  # a state left from an earlier run does not count
    online = 0
    while time.monotonic() < deadline:
        with service.db.session() as session:
            query = select(func.count()).where(Device.online.is_(True), Device.last_seen >= since)
            online = session.scalar(query) or 0
        if online >= count:
            return
        time.sleep(0.1)
    _LOGGER.warning("only %d of %d receivers online after %.0f s", online, count, timeout_s)


def wait_for_stop_signal(should_stop: Callable[[], bool] | None = None) -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def _handle(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            if should_stop is not None and should_stop():
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_embedded_broker(service: BroadcastService, stack: ExitStack) -> None:
    settings: Settings = service.settings
    if not port_is_free(settings.mqtt_host, settings.mqtt_port):
        raise ServiceUnavailable(
            f"MQTT port {settings.mqtt_host}:{settings.mqtt_port} is already in use"
        )
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
        access.save(settings.broker_access_path)
        registry.record_broker_access(session, access)
    broker = EmbeddedBroker(
        settings.mqtt_host, settings.mqtt_port, access, settings.broker_access_path
    )
    try:
        broker.start()
    except BrokerError as exc:
        raise ServiceUnavailable(str(exc)) from exc
    stack.callback(broker.stop)


def start_stream_engine(
    service: BroadcastService, stack: ExitStack, optional: bool = False
) -> IcecastServer | None:
    """Icecast for live broadcasts, when the settings give it a port (`--stream-port`). An
    `optional` one (the demo's own choice of port) that cannot start leaves live broadcasts
    off instead of stopping everything."""
    settings: Settings = service.settings
    if not settings.live_enabled:
        return None
    passwords = StreamPasswords(
        service.secrets.stream_source_password, service.secrets.stream_admin_password
    )
    server = IcecastServer(
        settings.stream_dir,
        settings.host,
        settings.stream_port,
        passwords,
        settings.listener_check_url,
    )
    try:
        server.start()
    except StreamingError as exc:
        if not optional:
            raise ServiceUnavailable(str(exc)) from exc
        _LOGGER.warning("live broadcasts off: %s", exc)
        settings.stream_port = 0
        return None
    stack.callback(server.stop)
    return server


def run(
    service: BroadcastService,
    embedded_broker: bool,
    fleet: Fleet | None = None,
    banner: Callable[[], None] | None = None,
    stream_optional: bool = False,
) -> int:
    """Start every part, print the banner, wait for Ctrl-C, stop in reverse order."""
    with ExitStack() as stack:
        try:
            web = WebServer(service)
            if embedded_broker:
                start_embedded_broker(service, stack)
            start_stream_engine(service, stack, optional=stream_optional)
            stack.callback(service.stop)
            service.start()
            web.start()
            stack.callback(web.stop)
            if fleet is not None:
                fleet.start()
                stack.callback(fleet.stop)
                wait_for_receivers(service, fleet.count)
        except LoaError as exc:
            print(f"loa: {exc}", file=sys.stderr)
            return 2
        if banner is not None:
            banner()
        wait_for_stop_signal()
        print("\nloa: stopping…", file=sys.stderr)
    return 0
