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
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests

from devices.cache import CacheError, MediaCache
from devices.config import ConfigError, ReceiverConfig, write_private_file
from devices.players import PlayContext, Player, PlayerError, make_player
from devices.protocol import (
    Command,
    DeviceEvent,
    DeviceStatus,
    EventKind,
    PlayBody,
    Priority,
    ProtocolError,
    ReceiverState,
    ReplayGuard,
    StopBody,
    device_command_topic,
    device_event_topic,
    device_state_topic,
    public_key_from_text,
    verify_command,
    zone_command_topic,
)

_LOGGER = logging.getLogger(__name__)

QUEUE_LIMIT = 64
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REPLAY_FILE = "replay.json"
STOPPED = "stopped"
SHUTTING_DOWN = "receiver shutting down"
# CONNACK refusals that a retry cannot fix (MQTT 3.1.1 codes 2, 4, 5 as paho's v5 reason codes).
_FATAL_CONNACK = {
    133: "client identifier rejected (check device_id in the config)",
    134: "bad username or password (check mqtt.username and mqtt.password in the config)",
    135: "not authorized (check mqtt.username and mqtt.password in the config)",
}
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


@dataclass
class _Job:
    """One accepted play command on its way through the worker."""

    command: Command
    body: PlayBody
    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str = STOPPED

    def stop(self, reason: str = STOPPED) -> None:
        if not self.cancel.is_set():
            self.reason = reason
        self.cancel.set()


class _JobQueue:
    """A bounded FIFO whose head is reserved for emergencies and whose items can be withdrawn."""

    def __init__(self, limit: int) -> None:
        self._items: deque[_Job] = deque()
        self._limit = limit
        self._closed = False
        self._cond = threading.Condition()

    def put(self, job: _Job, front: bool = False) -> bool:
        with self._cond:
            if self._closed or len(self._items) >= self._limit:
                return False
            if front:
                self._items.appendleft(job)
            else:
                self._items.append(job)
            self._cond.notify()
            return True

    def get(self) -> _Job | None:
        """Block for the next job; None once the queue is closed."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return self._items.popleft()

    def remove(self, predicate: Callable[[_Job], bool]) -> list[_Job]:
        with self._cond:
            removed = [job for job in self._items if predicate(job)]
            self._items = deque(job for job in self._items if not predicate(job))
            return removed

    def close(self) -> list[_Job]:
        """Refuse further jobs and return the ones that will never run."""
        with self._cond:
            self._closed = True
            left = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return left

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class ReceiverAgent:
    """One receiver: an MQTT client, a media cache, a player and a worker thread."""

    def __init__(self, config: ReceiverConfig, player: Player | None = None) -> None:
        self.config = config
        self.device_id = config.device_id
        try:
            self._public_key = public_key_from_text(config.server_public_key)
        except ProtocolError as exc:
            raise ConfigError(f"field 'server_public_key': {exc.detail}") from exc
        self.boot_id = uuid.uuid4().hex
        self._data_dir = Path(config.data_dir)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._cache = MediaCache(self._data_dir / "cache", config.cache_limit_mb * 1024 * 1024)
        self._player = player or make_player(
            config.player, config.device_id, default_dir=self._data_dir / "played"
        )
        self._replay_path = self._data_dir / REPLAY_FILE
        self._guard = ReplayGuard(self._load_replay())
        self._guard_lock = threading.Lock()
        self._queue = _JobQueue(QUEUE_LIMIT)
        self._http = requests.Session()
        self._version = _version()
        self._broker = f"{config.mqtt.host}:{config.mqtt.port}"

        self._lock = threading.RLock()  # state, current job, publishing the state
        self._state = ReceiverState.IDLE
        self._current_broadcast: int | None = None
        self._current: _Job | None = None
        self._rejected = 0
        self._connected = threading.Event()
        self._last_failure = ""
        self._fatal: str | None = None
        self._fatal_event = threading.Event()
        self._started = False
        self._stopped = False
        self._client: mqtt.Client | None = None
        self._worker: threading.Thread | None = None

    # --- public surface -------------------------------------------------------------------------

    @property
    def state(self) -> ReceiverState:
        with self._lock:
            return self._state

    @property
    def rejected_count(self) -> int:
        """Commands dropped as unsigned, forged, expired, replayed or malformed."""
        with self._lock:
            return self._rejected

    @property
    def fatal_error(self) -> str | None:
        """Set when the broker refused our credentials: the process should exit non-zero."""
        return self._fatal

    def wait_fatal(self, timeout: float | None = None) -> bool:
        return self._fatal_event.wait(timeout)

    def start(self) -> None:
        """Connect in the background (paho retries with backoff) and start the worker."""
        with self._lock:
            if self._started:
                return
            self._started = True
        settings = self.config.mqtt
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(settings.username, settings.password)
        client.will_set(
            device_state_topic(self.device_id),
            self._status(ReceiverState.OFFLINE).to_json(),
            qos=1,
            retain=True,
        )
        client.reconnect_delay_set(1, 30)
        client.suppress_exceptions = True  # an exception must never kill the network thread
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        self._worker = threading.Thread(
            target=self._work, name=f"loa-worker-{self.device_id}", daemon=True
        )
        self._worker.start()
        client.connect_async(settings.host, settings.port, settings.keepalive)
        client.loop_start()
        _LOGGER.info("%s: started (boot %s), broker %s", self.device_id, self.boot_id, self._broker)

    def stop(self) -> None:
        """Finish cleanly: abandon work, publish a retained `offline`, disconnect, join."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
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
        client = self._client
        if client is not None:
            info = self._set_state(ReceiverState.OFFLINE, None)
            if info is not None:
                try:
                    info.wait_for_publish(_PUBLISH_WAIT_S)
                except (RuntimeError, ValueError) as exc:
                    _LOGGER.debug("%s: offline state not confirmed: %s", self.device_id, exc)
            client.disconnect()
            client.loop_stop()
        self._http.close()
        _LOGGER.info("%s: stopped", self.device_id)

    # --- MQTT callbacks (paho network thread: no blocking work here) ----------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            fatal = _FATAL_CONNACK.get(reason.value)
            if fatal is not None:
                self._fail(f"broker {self._broker} refused the connection: {fatal}")
                client.disconnect()
            else:
                self._warn_once(f"broker {self._broker} refused the connection: {reason}")
            return
        self._last_failure = ""
        self._connected.set()
        _LOGGER.info(
            "%s: connected to broker %s (session present: %s)",
            self.device_id,
            self._broker,
            bool(getattr(flags, "session_present", False)),
        )
        topics = [device_command_topic(self.device_id)]
        topics += [zone_command_topic(zone) for zone in self.config.zones]
        client.subscribe([(topic, 1) for topic in topics])
        with self._lock:
            self._publish_state()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho calls this from inside its `except OSError`, so the cause is still at hand.
        exc = sys.exc_info()[1]
        self._warn_once(f"broker {self._broker} unreachable: {_describe(exc)}")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._stopped and self._fatal is None:
            self._warn_once(f"lost connection to broker {self._broker} ({reason})")

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                _LOGGER.error(
                    "%s: broker %s refused a subscription (%s): check its topic ACL",
                    self.device_id,
                    self._broker,
                    reason,
                )

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._accept(message.topic, bytes(message.payload))
        except Exception:
            _LOGGER.exception(
                "%s: unexpected error handling a message on %s", self.device_id, message.topic
            )

    # --- commands -------------------------------------------------------------------------------

    def _accept(self, topic: str, payload: bytes) -> None:
        try:
            command = verify_command(payload, self._public_key)
            with self._guard_lock:
                self._guard.check_and_remember(command)
                self._save_replay()
        except ProtocolError as exc:
            with self._lock:
                self._rejected += 1
            _LOGGER.warning("%s: rejected command on %s: %s", self.device_id, topic, exc)
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
        job = _Job(command, body)
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

        def matches(job: _Job) -> bool:
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

    def _stop_player(self, job: _Job) -> None:
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
                self._run(job)
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

    def _run(self, job: _Job) -> None:
        command, body = job.command, job.body

        def fail(detail: str) -> None:
            _LOGGER.warning(
                "%s: play %s (broadcast %s) failed: %s",
                self.device_id,
                command.id,
                body.broadcast_id,
                detail,
            )
            self._event(command, body.broadcast_id, EventKind.FAILED, detail)

        if job.cancel.is_set():
            fail(job.reason)
            return
        self._set_state(ReceiverState.FETCHING, body.broadcast_id)
        try:
            path, downloaded = self._cache.fetch(
                body.media_url,
                body.media_sha256,
                self.config.http_timeout_s,
                job.cancel,
                self._http,
            )
        except CacheError as exc:
            fail(job.reason if job.cancel.is_set() else exc.detail)
            return
        except OSError as exc:
            fail(f"cache: {exc.strerror or exc}")
            return
        self._event(
            command, body.broadcast_id, EventKind.FETCHED, "downloaded" if downloaded else "cached"
        )
        if body.play_at is not None and body.play_at > time.time():
            self._set_state(ReceiverState.IDLE, None)
            job.cancel.wait(max(0.0, body.play_at - time.time()))
        if job.cancel.is_set():
            fail(job.reason)
            return
        self._set_state(ReceiverState.PLAYING, body.broadcast_id)
        self._event(command, body.broadcast_id, EventKind.STARTED)
        try:
            for index in range(body.repeat):
                if job.cancel.is_set():
                    break
                self._player.play(
                    path,
                    PlayContext(
                        device_id=self.device_id,
                        command_id=command.id,
                        broadcast_id=body.broadcast_id,
                        sha256=body.media_sha256,
                        priority=body.priority.value,
                        repeat_index=index,
                        title=body.title,
                        cancel=job.cancel,
                    ),
                )
        except PlayerError as exc:
            fail(str(exc)[:200])
            return
        if job.cancel.is_set():
            fail(job.reason)
            return
        _LOGGER.info(
            "%s: played broadcast %s (%d×)", self.device_id, body.broadcast_id, body.repeat
        )
        self._event(command, body.broadcast_id, EventKind.FINISHED)

    # --- publishing -----------------------------------------------------------------------------

    def _status(self, state: ReceiverState, broadcast: int | None = None) -> DeviceStatus:
        return DeviceStatus(
            device_id=self.device_id,
            state=state,
            boot_id=self.boot_id,
            at=time.time(),
            current_broadcast=broadcast,
            version=self._version,
            extra={"rejected_commands": self._rejected, "queued": len(self._queue)},
        )

    def _set_state(
        self, state: ReceiverState, broadcast: int | None
    ) -> mqtt.MQTTMessageInfo | None:
        with self._lock:
            self._state = state
            self._current_broadcast = broadcast
            return self._publish_state()

    def _publish_state(self) -> mqtt.MQTTMessageInfo | None:
        """Publish the retained state; callers hold the lock so states leave in order."""
        if self._client is None or not self._connected.is_set():
            return None  # `_on_connect` publishes the current state on (re)connect
        payload = self._status(self._state, self._current_broadcast).to_json()
        return self._client.publish(device_state_topic(self.device_id), payload, qos=1, retain=True)

    def _event(
        self, command: Command, broadcast_id: int | None, kind: EventKind, detail: str = ""
    ) -> None:
        """QoS 1 events are queued by paho while offline and delivered after reconnecting."""
        if self._client is None:
            return
        event = DeviceEvent(self.device_id, command.id, broadcast_id, kind, time.time(), detail)
        self._client.publish(device_event_topic(self.device_id), event.to_json(), qos=1)

    # --- failures -------------------------------------------------------------------------------

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

    # --- replay guard persistence ---------------------------------------------------------------

    def _load_replay(self) -> dict[str, float]:
        try:
            data = json.loads(self._replay_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            _LOGGER.warning(
                "%s: ignoring unreadable %s: %s", self.device_id, self._replay_path, exc
            )
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def _save_replay(self) -> None:
        """Atomic rewrite; a failed write is logged, the in-memory guard still protects us."""
        try:
            write_private_file(self._replay_path, json.dumps(self._guard.to_dict()))
        except OSError as exc:
            _LOGGER.error("%s: cannot save %s: %s", self.device_id, self._replay_path, exc)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "connection failed"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


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
