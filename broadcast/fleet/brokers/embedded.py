"""The embedded MQTT broker: amqtt in a background thread, locked down by a `BrokerAccess`.

Single-machine installs (and the demo) need a broker without installing mosquitto. This module
runs one: `broker_config` renders a `BrokerAccess` as amqtt 0.12 config (one TCP listener and
our two plugins from `broadcast.fleet.brokers.amqtt_plugins`, which enforce the same logins and
topic ACL as mosquitto's files), `EmbeddedBroker` runs the corrected broker of
`broadcast.fleet.brokers.amqtt_broker` on its own asyncio loop so callers stay synchronous, and
`serve` (or `python -m broadcast.fleet.brokers.embedded`) is what `loa broker` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from amqtt.errors import BrokerError as AmqttBrokerError

from broadcast.fleet.brokers.access import BrokerAccess, BrokerError
from broadcast.fleet.brokers.amqtt_broker import LoaBroker, check_amqtt_version, quiet_amqtt_logs
from broadcast.fleet.brokers.amqtt_plugins import AccessAuthPlugin, AccessTopicPlugin
from broadcast.fleet.brokers.net import check_port_free, format_address, wait_for_port
from wire import logs

_LOGGER = logging.getLogger(__name__)


def _plugin_path(plugin: type) -> str:
    return f"{plugin.__module__}.{plugin.__qualname__}"


def broker_config(
    host: str, port: int, access: BrokerAccess, access_path: Path | None = None
) -> dict[str, Any]:
    """The amqtt 0.12 config dict: one TCP listener, only our two plugins (no $SYS, no logging).
    With `access_path`, the plugins follow that file's changes."""
    plugin = {
        "users": [user.to_dict() for user in access.users],
        "access_path": str(access_path) if access_path else "",
    }
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "listeners": {"default": {"type": "tcp", "bind": bind}},
        "timeout_disconnect_delay": 0,
        "plugins": {
            _plugin_path(AccessAuthPlugin): dict(plugin),
            _plugin_path(AccessTopicPlugin): dict(plugin),
        },
    }


class EmbeddedBroker:
    """amqtt running on its own asyncio loop in a daemon thread, so callers stay synchronous."""

    def __init__(
        self, host: str, port: int, access: BrokerAccess, access_path: Path | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.access = access
        self.access_path = access_path
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
        check_amqtt_version()
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
            broker = LoaBroker(broker_config(self.host, self.port, self.access, self.access_path))
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
    broker = EmbeddedBroker(host, port, access, Path(access_path))
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
    """`python -m broadcast.fleet.brokers.embedded`: what `loa broker` runs (and tests start)."""
    parser = argparse.ArgumentParser(
        prog="python -m broadcast.fleet.brokers.embedded",
        description="Run Loa's embedded MQTT broker.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=1883, help="TCP port to listen on")
    parser.add_argument("--access", type=Path, required=True, help="broker access file (JSON)")
    args = parser.parse_args(argv)
    logs.configure("INFO")
    return serve(args.host, args.port, args.access)


if __name__ == "__main__":
    # Run from the real module, not this `__main__` copy, so loggers carry the module's name.
    from broadcast.fleet.brokers.embedded import main as _main

    sys.exit(_main())
