"""The receiver agent: MQTT in, verified audio out at the right time, answer-back to the server.

It runs as a daemon on a Raspberry Pi behind a poor 3G link, so it is built to keep going:

* a persistent MQTT session (`clean_session=False`, client id = device id) lets the broker queue
  QoS 1 commands while the receiver is offline; paho reconnects with backoff (1 s doubling to
  `mqtt.reconnect_max_s`, 30 s by default);
* every message is verified (Ed25519 signature, expiry, topic, per-topic sequence, replay)
  before anything happens; a bad one is logged and counted (`rejected_commands` in the state),
  never fatal; the guards are persisted so a replay after a restart is still caught;
* the device's manifest (its programme for the next 48 h, retained on its manifest topic) is
  kept on disk as signed, verified again at start, and played from the device's own clock, so
  the receiver keeps its schedule with the server or the broker gone, and after a reboot;
* the paho network thread only verifies and hands over: prefetching, timing and playback run in
  threads of their own (`devices.scheduler`), so keepalives never stall behind a 3G download;
* a retained state message (and a retained last will `offline` carrying this process's boot
  id) tells the server what the receiver is doing; it is republished every `heartbeat_s` with
  the receiver's health (`devices.heartbeat`), and an event is published for every step of every
  item (see `devices.scheduler`).

Only faults a person must fix end the process: a bad config file (including an amplifier pin
that cannot be driven), or credentials the broker refuses (retrying cannot help). An unreachable
broker is logged once and retried forever.

`ReceiverAgent` wires the parts together: `devices.mqtt_link` is the MQTT session,
`devices.intake` the verification and replay memory, `devices.store` what is kept on disk,
`devices.scheduler` the programme and its threads. This module is also the process entry point
(`python -m devices.agent`, `loa receiver`), and `devices.fleet` runs many agents with the same
helpers.
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

from devices import systemd
from devices.amplifier import Amplifier, AmplifierError
from devices.cache import MediaCache
from devices.heartbeat import Snapshot, status_extra
from devices.instance import InstanceLock
from devices.intake import REPLAY_FILE, CommandIntake
from devices.mixer import Mixer
from devices.mqtt_link import MqttLink
from devices.players import Player, make_player
from devices.scheduler import Scheduler
from devices.store import ReceiverStore
from wire import logs
from wire.config import ConfigError, ReceiverConfig
from wire.protocol import (
    DeviceEvent,
    DeviceStatus,
    EventKind,
    ManifestBody,
    PlayBody,
    ProtocolError,
    ReceiverState,
    StopBody,
    device_manifest_topic,
    public_key_from_text,
)

_LOGGER = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
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
    """One receiver: an MQTT link, a command intake, its stored programme and its scheduler."""

    def __init__(self, config: ReceiverConfig, player: Player | None = None) -> None:
        self.config = config
        self.device_id = config.device_id
        try:
            public_key = public_key_from_text(config.server_public_key)
        except ProtocolError as exc:
            raise ConfigError(f"field 'server_public_key': {exc.detail}") from exc
        self.boot_id = uuid.uuid4().hex
        self._started_at = time.time()
        self._data_dir = Path(config.data_dir)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._instance = InstanceLock(self._data_dir)
        cache = MediaCache(self._data_dir / "cache", config.cache_limit_mb * 1024 * 1024)
        self._player = player or make_player(
            config.player, config.device_id, default_dir=self._data_dir / "played"
        )
        try:
            self.amplifier = Amplifier(config.amplifier)
        except AmplifierError as exc:
            raise ConfigError(str(exc)) from exc
        self._store = ReceiverStore(self._data_dir, self.device_id)
        self._intake = CommandIntake(self.device_id, public_key, self._data_dir / REPLAY_FILE)
        self._version = _version()
        self._scheduler = Scheduler(
            self.device_id,
            cache=cache,
            player=self._player,
            amplifier=self.amplifier,
            mixer=Mixer(config.mixer, enabled=config.player.kind in ("command", "mpg123")),
            store=self._store,
            report=self._event,
            publish_status=self._publish_status,
            preempt_policy=config.preempt_policy,
            heartbeat_s=config.heartbeat_s,
            http_timeout_s=config.http_timeout_s,
        )
        self._link = MqttLink(
            self.device_id,
            config.mqtt,
            config.zones,
            on_command=self._accept,
            on_connected=self._on_connected,
            on_subscribed=self._on_connected,  # the state says which subscriptions were refused
        )

        self._lock = threading.RLock()  # the last snapshot, and publishing the state in order
        self._snapshot = Snapshot(ReceiverState.IDLE)
        self._offline = False
        self._started = False
        self._stopped = False

    # --- public surface -------------------------------------------------------------------------

    @property
    def state(self) -> ReceiverState:
        with self._lock:
            return ReceiverState.OFFLINE if self._offline else self._snapshot.state

    @property
    def rejected_count(self) -> int:
        """Messages dropped as unsigned, forged, expired, replayed, misplaced or malformed."""
        return self._intake.rejected

    @property
    def fatal_error(self) -> str | None:
        """Set when the broker refused our credentials: the process should exit non-zero."""
        return self._link.fatal_error

    @property
    def healthy(self) -> bool:
        """Playing duty can be done: no fatal error and the scheduler's thread is alive."""
        return self.fatal_error is None and self._scheduler.running

    def wait_fatal(self, timeout: float | None = None) -> bool:
        return self._link.wait_fatal(timeout)

    def start(self) -> None:
        """Resume the stored programme, start playing it, connect in the background (paho
        retries with backoff). AgentAlreadyRunning when another agent runs on the data
        directory."""
        with self._lock:
            if self._started:
                return
            self._instance.acquire()
            self._started = True
        self._link.open(will=self._status(ReceiverState.OFFLINE))
        self._restore()
        self._scheduler.start()
        self._link.connect()
        _LOGGER.info(
            "%s: started (boot %s), broker %s",
            self.device_id,
            self.boot_id,
            ", ".join(self._link.brokers),
        )

    def stop(self) -> None:
        """Finish cleanly: cut what plays (kept for the restart), publish a retained `offline`,
        disconnect."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._link.expect_close()
        if self._started:
            self._scheduler.close()
        else:
            self.amplifier.close()
        with self._lock:
            self._offline = True
            info = self._publish_state() if self._link.opened else None
        if info is not None:
            try:
                info.wait_for_publish(_PUBLISH_WAIT_S)
            except (RuntimeError, ValueError) as exc:
                _LOGGER.debug("%s: offline state not confirmed: %s", self.device_id, exc)
        if self._link.opened:
            self._link.close()
        self._instance.release()
        _LOGGER.info("%s: stopped", self.device_id)

    # --- messages (paho network thread: no blocking work here) ----------------------------------

    def _accept(self, topic: str, payload: bytes, retained: bool = False) -> None:
        command = self._intake.verify(topic, payload, retained)
        if command is None:
            return
        body = command.body
        if isinstance(body, ManifestBody):
            self._store.save_manifest(payload)  # before the sequence is remembered
            self._scheduler.manifest(command, body)
        elif isinstance(body, PlayBody):
            _LOGGER.info(
                "%s: accepted play %s (broadcast %s, %s)",
                self.device_id,
                command.id,
                body.broadcast_id,
                body.priority,
            )
            self._scheduler.play(
                command, body, payload=payload.decode("utf-8", "replace"), topic=topic
            )
        elif isinstance(body, StopBody):
            _LOGGER.info(
                "%s: accepted stop %s (broadcast %s)",
                self.device_id,
                command.id,
                "all" if body.broadcast_id is None else body.broadcast_id,
            )
            self._scheduler.stop_broadcast(command, body)
        self._intake.remember(command)

    def _restore(self) -> None:
        """The manifest and the play commands kept on disk, verified again (a tampered file is
        refused); the scheduler reports what expired meanwhile."""
        payload = self._store.load_manifest()
        if payload is not None:
            command = self._intake.reload(device_manifest_topic(self.device_id), payload)
            if command is not None and isinstance(command.body, ManifestBody):
                self._scheduler.manifest(command, command.body, restored=True)
        for entry in self._store.load_commands().values():
            command = self._intake.reload(entry["topic"], entry["payload"].encode("utf-8"))
            if command is not None and isinstance(command.body, PlayBody):
                self._scheduler.play(
                    command,
                    command.body,
                    payload=entry["payload"],
                    topic=entry["topic"],
                    restored=True,
                )

    # --- publishing -----------------------------------------------------------------------------

    def _status(self, state: ReceiverState) -> DeviceStatus:
        snapshot = self._snapshot
        return DeviceStatus(
            device_id=self.device_id,
            state=state,
            boot_id=self.boot_id,
            at=time.time(),
            current_broadcast=None if state is ReceiverState.OFFLINE else snapshot.broadcast_id,
            version=self._version,
            extra=status_extra(
                snapshot,
                version=self._version,
                started_at=self._started_at,
                data_dir=self._data_dir,
                rejected_commands=self._intake.rejected,
                clock_offset_s=self._intake.clock_offset_s,
                zones=self._link.zones,
                refused_topics=self._link.refused_topics,
                broker=self._link.broker,
            ),
        )

    def _publish_status(self, snapshot: Snapshot) -> None:
        """The scheduler's state changed, or a heartbeat is due."""
        with self._lock:
            self._snapshot = snapshot
            if not self._offline:
                self._publish_state()

    def _on_connected(self) -> None:
        with self._lock:
            if not self._offline:
                self._publish_state()

    def _publish_state(self) -> mqtt.MQTTMessageInfo | None:
        """Publish the retained state; callers hold the lock so states leave in order."""
        if not self._link.connected:
            return None  # `_on_connected` publishes the current state on (re)connect
        state = ReceiverState.OFFLINE if self._offline else self._snapshot.state
        return self._link.publish_state(self._status(state))

    def _event(
        self,
        command_id: str,
        broadcast_id: int | None,
        item_id: str,
        kind: EventKind,
        detail: str = "",
        at: float | None = None,
    ) -> None:
        """QoS 1 events are queued by paho while offline and delivered after reconnecting."""
        if not self._link.opened:
            return
        event = DeviceEvent(
            self.device_id,
            command_id,
            broadcast_id,
            kind,
            time.time() if at is None else at,
            detail,
            item_id,
        )
        self._link.publish_event(event)


# --- process entry points (shared with devices.fleet) --------------------------------------------


def configure_logging(level: str) -> None:
    logs.configure(level)


def run_agents(agents: Sequence[ReceiverAgent], poll_s: float = 0.2) -> int:
    """Start the agents, run until SIGINT/SIGTERM or a fatal error, stop them; exit status."""
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    watchdog = systemd.Watchdog()
    try:
        for agent in agents:
            agent.start()
        systemd.notify("READY=1")
        while not stop.wait(poll_s):
            if any(agent.fatal_error for agent in agents):
                break
            watchdog.ping(all(agent.healthy for agent in agents))
    finally:
        systemd.notify("STOPPING=1")
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
    try:
        return run_agents([agent])
    except ConfigError as exc:  # another agent runs on its data directory
        print(f"loa receiver: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run the imported module, not `__main__`, so log lines say `devices.agent`.
    from devices.agent import main as _main

    sys.exit(_main())
