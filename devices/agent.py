"""The receiver agent: MQTT in, verified audio out, answer-back to the server.

It runs as a daemon on a Raspberry Pi behind a poor 3G link, so it is built to keep going:

* a persistent MQTT session (`clean_session=False`, client id = device id) lets the broker queue
  QoS 1 commands while the receiver is offline; paho reconnects with backoff (1 → 30 s);
* every command is verified (Ed25519 signature, expiry, replay) before anything happens; a bad
  one is logged and counted, never fatal; accepted ids are persisted so a replay after a restart
  is still caught;
* the paho network thread only verifies and hands work over: downloads and playback run in one
  worker thread fed by a bounded queue, so keepalives never stall behind a 3G download;
* a retained state message (and a retained last will `offline` carrying this process's boot id)
  tells the server what the receiver is doing, and an event is published for every step of every
  accepted play command: `received`, `fetched`, `started`, then exactly one of `finished` or
  `failed`.

Only faults a person must fix end the process: a bad config file, or credentials the broker
refuses (retrying cannot help). An unreachable broker is logged once and retried forever.

`ReceiverAgent` wires the parts together and owns what they share (the state, the job being
played, start and stop): `devices.mqtt_link` is the MQTT session, `devices.intake` the
verification and replay memory, `devices.playback` the job queue and the fetch-and-play steps.
This module is also the process entry point (`python -m devices.agent`, `loa receiver`), and
`devices.fleet` runs many agents with the same helpers.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from devices.cache import MediaCache
from devices.config import ConfigError, ReceiverConfig
from devices.intake import CommandIntake
from devices.mqtt_link import MqttLink
from devices.playback import SHUTTING_DOWN, STOPPED, Job, JobQueue, Playback
from devices.players import Player, make_player
from devices.protocol import (
    Command,
    DeviceEvent,
    DeviceStatus,
    EventKind,
    PlayBody,
    Priority,
    ProtocolError,
    ReceiverState,
    StopBody,
    public_key_from_text,
)

_LOGGER = logging.getLogger(__name__)

QUEUE_LIMIT = 64
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REPLAY_FILE = "replay.json"
_JOIN_TIMEOUT_S = 5.0
_PUBLISH_WAIT_S = 2.0


def _version() -> str:
    try:
        return metadata.version("loa")
    except metadata.PackageNotFoundError:
        return ""


def load_config(path: Path) -> ReceiverConfig:
    """Load and fully validate a receiver config; every ConfigError names the file and field."""
    config = ReceiverConfig.load(path)
    try:
        public_key_from_text(config.server_public_key)
    except ProtocolError as exc:
        raise ConfigError(f"{path}: field 'server_public_key': {exc.detail}") from exc
    if config.cache_limit_mb < 1:
        raise ConfigError(f"{path}: field 'cache_limit_mb' must be at least 1")
    if config.http_timeout_s <= 0:
        raise ConfigError(f"{path}: field 'http_timeout_s' must be positive")
    if config.player.kind == "command" and not config.player.argv:
        raise ConfigError(f"{path}: field 'player.argv' must not be empty")
    return config


class ReceiverAgent:
    """One receiver: an MQTT link, a command intake, a media cache, a player and a worker thread."""

    def __init__(self, config: ReceiverConfig, player: Player | None = None) -> None:
        self.config = config
        self.device_id = config.device_id
        try:
            public_key = public_key_from_text(config.server_public_key)
        except ProtocolError as exc:
            raise ConfigError(f"field 'server_public_key': {exc.detail}") from exc
        self.boot_id = uuid.uuid4().hex
        self._data_dir = Path(config.data_dir)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        cache = MediaCache(self._data_dir / "cache", config.cache_limit_mb * 1024 * 1024)
        self._player = player or make_player(
            config.player, config.device_id, default_dir=self._data_dir / "played"
        )
        self._intake = CommandIntake(self.device_id, public_key, self._data_dir / REPLAY_FILE)
        self._queue = JobQueue(QUEUE_LIMIT)
        self._playback = Playback(self.device_id, cache, self._player, config.http_timeout_s)
        self._version = _version()
        self._link = MqttLink(
            self.device_id,
            config.mqtt,
            config.zones,
            on_command=self._accept,
            on_connected=self._on_connected,
        )

        self._lock = threading.RLock()  # state, current job, publishing the state
        self._state = ReceiverState.IDLE
        self._current_broadcast: int | None = None
        self._current: Job | None = None
        self._started = False
        self._stopped = False
        self._worker: threading.Thread | None = None

    # --- public surface -------------------------------------------------------------------------

    @property
    def state(self) -> ReceiverState:
        with self._lock:
            return self._state

    @property
    def rejected_count(self) -> int:
        """Commands dropped as unsigned, forged, expired, replayed or malformed."""
        return self._intake.rejected

    @property
    def fatal_error(self) -> str | None:
        """Set when the broker refused our credentials: the process should exit non-zero."""
        return self._link.fatal_error

    def wait_fatal(self, timeout: float | None = None) -> bool:
        return self._link.wait_fatal(timeout)

    def start(self) -> None:
        """Connect in the background (paho retries with backoff) and start the worker."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._link.open(will=self._status(ReceiverState.OFFLINE))
        self._worker = threading.Thread(
            target=self._work, name=f"loa-worker-{self.device_id}", daemon=True
        )
        self._worker.start()
        self._link.connect()
        _LOGGER.info(
            "%s: started (boot %s), broker %s", self.device_id, self.boot_id, self._link.broker
        )

    def stop(self) -> None:
        """Finish cleanly: abandon work, publish a retained `offline`, disconnect, join."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._link.expect_close()
            current = self._current
            if current is not None:
                current.stop(SHUTTING_DOWN)
        for job in self._queue.close():
            self._event(job.command, job.body.broadcast_id, EventKind.FAILED, SHUTTING_DOWN)
        if current is not None:
            self._player.stop()
        if self._worker is not None:
            self._worker.join(_JOIN_TIMEOUT_S)
            if self._worker.is_alive():
                _LOGGER.warning(
                    "%s: worker did not stop within %.0f s", self.device_id, _JOIN_TIMEOUT_S
                )
        if self._link.opened:
            info = self._set_state(ReceiverState.OFFLINE, None)
            if info is not None:
                try:
                    info.wait_for_publish(_PUBLISH_WAIT_S)
                except (RuntimeError, ValueError) as exc:
                    _LOGGER.debug("%s: offline state not confirmed: %s", self.device_id, exc)
            self._link.close()
        self._playback.close()
        _LOGGER.info("%s: stopped", self.device_id)

    # --- commands (paho network thread: no blocking work here) ----------------------------------

    def _accept(self, topic: str, payload: bytes) -> None:
        command = self._intake.accept(topic, payload)
        if command is None:
            return
        if isinstance(command.body, PlayBody):
            self._enqueue(command, command.body)
        elif isinstance(command.body, StopBody):
            self._stop_broadcast(command, command.body)

    def _enqueue(self, command: Command, body: PlayBody) -> None:
        _LOGGER.info(
            "%s: accepted play %s (broadcast %s, %s)",
            self.device_id,
            command.id,
            body.broadcast_id,
            body.priority,
        )
        self._event(command, body.broadcast_id, EventKind.RECEIVED)
        job = Job(command, body)
        if not self._queue.put(job, front=body.priority is Priority.EMERGENCY):
            _LOGGER.warning("%s: queue full, dropping play %s", self.device_id, command.id)
            self._event(command, body.broadcast_id, EventKind.FAILED, "queue full")

    def _stop_broadcast(self, command: Command, body: StopBody) -> None:
        """Drop matching queued plays and interrupt a matching current one."""
        target = body.broadcast_id
        _LOGGER.info(
            "%s: accepted stop %s (broadcast %s)",
            self.device_id,
            command.id,
            "all" if target is None else target,
        )
        self._event(command, target, EventKind.RECEIVED, "stop")

        def matches(job: Job) -> bool:
            return target is None or job.body.broadcast_id == target

        for job in self._queue.remove(matches):
            self._event(job.command, job.body.broadcast_id, EventKind.FAILED, STOPPED)
        with self._lock:
            current = self._current
            if current is None or not matches(current):
                return
            current.stop(STOPPED)
        # Terminating a player may take a moment: not in the network thread.
        threading.Thread(
            target=self._stop_player, args=(current,), name="loa-stop", daemon=True
        ).start()

    def _stop_player(self, job: Job) -> None:
        with self._lock:
            if self._current is job:
                self._player.stop()

    # --- worker ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._current = job
                if self._stopped:  # popped just before `stop()` closed the queue
                    job.stop(SHUTTING_DOWN)
            try:
                self._playback.run(job, self._set_state, self._event)
            except Exception as exc:
                _LOGGER.exception("%s: play %s failed unexpectedly", self.device_id, job.command.id)
                self._event(
                    job.command,
                    job.body.broadcast_id,
                    EventKind.FAILED,
                    f"internal error: {exc}"[:200],
                )
            finally:
                with self._lock:
                    self._current = None
                    if not self._stopped:
                        self._set_state(ReceiverState.IDLE, None)

    # --- publishing -----------------------------------------------------------------------------

    def _status(self, state: ReceiverState, broadcast: int | None = None) -> DeviceStatus:
        return DeviceStatus(
            device_id=self.device_id,
            state=state,
            boot_id=self.boot_id,
            at=time.time(),
            current_broadcast=broadcast,
            version=self._version,
            extra={"rejected_commands": self._intake.rejected, "queued": len(self._queue)},
        )

    def _set_state(
        self, state: ReceiverState, broadcast: int | None
    ) -> mqtt.MQTTMessageInfo | None:
        with self._lock:
            self._state = state
            self._current_broadcast = broadcast
            return self._publish_state()

    def _on_connected(self) -> None:
        with self._lock:
            self._publish_state()

    def _publish_state(self) -> mqtt.MQTTMessageInfo | None:
        """Publish the retained state; callers hold the lock so states leave in order."""
        if not self._link.connected:
            return None  # `_on_connected` publishes the current state on (re)connect
        return self._link.publish_state(self._status(self._state, self._current_broadcast))

    def _event(
        self, command: Command, broadcast_id: int | None, kind: EventKind, detail: str = ""
    ) -> None:
        """QoS 1 events are queued by paho while offline and delivered after reconnecting."""
        if not self._link.opened:
            return
        event = DeviceEvent(self.device_id, command.id, broadcast_id, kind, time.time(), detail)
        self._link.publish_event(event)


# --- process entry points (shared with devices.fleet) --------------------------------------------


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_agents(agents: Sequence[ReceiverAgent], poll_s: float = 0.2) -> int:
    """Start the agents, run until SIGINT/SIGTERM or a fatal error, stop them; exit status."""
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        for agent in agents:
            agent.start()
        while not stop.wait(poll_s):
            if any(agent.fatal_error for agent in agents):
                break
    finally:
        for agent in agents:
            agent.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 1 if any(agent.fatal_error for agent in agents) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="loa receiver", description="Run the Loa receiver agent (one loudspeaker)."
    )
    parser.add_argument("--config", required=True, type=Path, help="receiver config (JSON)")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        agent = ReceiverAgent(load_config(args.config))
    except ConfigError as exc:
        text = str(exc)
        if not text.startswith(str(args.config)):
            text = f"{args.config}: {text}"
        print(f"loa receiver: {text}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"loa receiver: cannot prepare {exc.filename or 'data_dir'}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    return run_agents([agent])


if __name__ == "__main__":
    # Run the imported module, not `__main__`, so log lines say `devices.agent`.
    from devices.agent import main as _main

    sys.exit(_main())
