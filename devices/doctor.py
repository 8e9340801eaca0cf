"""`loa doctor --config FILE` on a receiver: is this Pi ready to play, and if not, what to fix.

Each check says OK or what is wrong and what to do about it, in one line, so an installer with a
phone and SSH can act on it: the config file, the server's key, the command streams (none
refusing the server's commands as stale), the broker (TCP, then an MQTT login with the device's
own password), the clock (chrony), the audio output and the disk. The exit code is 0 when every
check passed. The same `Check` type serves `loa.doctor`.
"""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from devices.instance import running_pid
from devices.intake import REPLAY_FILE, ReplayState
from wire import protocol
from wire.config import ConfigError, ReceiverConfig, tls_context

_LOGGER = logging.getLogger(__name__)

STREAMS_FIX = (
    "on the server: `loa keys rotate --data DIR` (a new signing key and sequence epoch; then"
    " `loa device refresh --data DIR` and install this receiver's new config), or"
    " `loa keys rotate --epoch-only --data DIR` if the signing key did not leak: this receiver"
    " accepts the new epoch's commands at once"
)
MIN_FREE_MB = 200
CLOCK_WARN_S = 0.5  # receivers start together only if their clocks agree
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "OK  " if self.ok else "FAIL"
        text = f"[{mark}] {self.name}: {self.detail}"
        return text if self.ok or not self.fix else f"{text}\n       → {self.fix}"


def report(checks: Iterable[Check], out: Callable[[str], None] = print) -> int:
    """Print every check; 0 if all passed, 1 otherwise."""
    failed = 0
    for check in checks:
        out(check.line())
        failed += not check.ok
    out("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


def tcp_check(name: str, host: str, port: int, fix: str) -> Check:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            return Check(name, True, f"{host}:{port} accepts connections")
    except OSError as exc:
        return Check(name, False, f"{host}:{port} unreachable ({exc.strerror or exc})", fix)


def mqtt_login_check(
    name: str,
    host: str,
    port: int,
    username: str,
    password: str,
    fix: str,
    tls: ssl.SSLContext | None = None,
    *,
    as_receiver: bool = False,
    client_id: str = "",
) -> Check:
    """An MQTT CONNECT with these credentials (over TLS with `tls`): accepted, or the reason.

    A receiver's login is bound to its client id (`client_id`: its config's, else the device id
    = username), so `as_receiver` connects as the receiver itself and keeps its persistent
    session (a clean session would discard the commands the broker queues for it). That takes
    the session of an agent using it over, so `receiver_checks` does not call it while an agent
    runs on the config's data directory.
    """
    answered = threading.Event()
    outcome: dict[str, str] = {}

    def on_connect(
        _client: mqtt.Client, _u: object, _f: object, reason: mqtt.ReasonCode, _p: object
    ) -> None:
        outcome["reason"] = "" if not reason.is_failure else str(reason)
        answered.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=(client_id or username) if as_receiver else f"{username}-doctor",
        clean_session=not as_receiver,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=False,
    )
    client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except ssl.SSLCertVerificationError as exc:
        detail = f"{host}:{port}: TLS certificate not trusted ({exc.verify_message})"
        return Check(name, False, detail, "check the CA in mqtt.tls and the broker's certificate")
    except OSError as exc:
        return Check(name, False, f"{host}:{port} unreachable ({exc.strerror or exc})", fix)
    client.loop_start()
    try:
        if not answered.wait(TIMEOUT_S):
            return Check(name, False, f"no answer from {host}:{port} in {TIMEOUT_S:.0f} s", fix)
    finally:
        client.disconnect()
        client.loop_stop()
    if outcome["reason"]:
        return Check(name, False, f"{host}:{port} refused {username}: {outcome['reason']}", fix)
    return Check(name, True, f"logged in to {host}:{port} as {username}")


def clock_check(run: Callable[[list[str]], str] | None = None) -> Check:
    """chrony's view of the clock: synchronised and close enough for a synchronized start."""
    fix = "install chrony (apt install chrony) and let it reach an NTP server"
    if run is None and shutil.which("chronyc") is None:
        return Check("clock", False, "chrony is not installed: the clock is not kept in time", fix)
    try:
        text = (run or _run)(["chronyc", "-n", "tracking"])
    except subprocess.CalledProcessError as exc:  # installed, but chronyd is not running
        said = str(exc.stdout or exc.stderr or "").strip()[:120] or f"exit {exc.returncode}"
        start = "start chrony: systemctl enable --now chrony"
        return Check("clock", False, f"chronyd does not answer ({said})", start)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("clock", False, f"chronyc failed: {exc}", fix)
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in text.splitlines())
    )
    status = fields.get("Leap status", "")
    offset_text = fields.get("System time", "")
    try:
        offset = float(offset_text.split()[0])
    except (IndexError, ValueError):
        return Check("clock", False, f"chronyc tracking says {text.strip()[:120]!r}", fix)
    if status != "Normal":
        return Check("clock", False, f"not synchronised (leap status {status or '?'})", fix)
    if offset > CLOCK_WARN_S:
        return Check("clock", False, f"{offset:.3f} s off", "wait for chrony to converge")
    return Check("clock", True, f"synchronised, {offset * 1000:.1f} ms off")


def _run(argv: list[str]) -> str:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=True
    ).stdout


def disk_check(name: str, path: Path, min_free_mb: int = MIN_FREE_MB) -> Check:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".doctor-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
        free_mb = shutil.disk_usage(path).free // (1024 * 1024)
    except OSError as exc:
        return Check(
            name, False, f"cannot write {path}: {exc.strerror or exc}", "check owner and mode"
        )
    if free_mb < min_free_mb:
        return Check(name, False, f"{free_mb} MB free in {path}", f"free at least {min_free_mb} MB")
    return Check(name, True, f"{path} writable, {free_mb} MB free")


def audio_check(config: ReceiverConfig) -> Check:
    player = config.player
    if player.kind == "file":
        return Check("audio", True, f"file sink into {player.dir or config.data_dir} (no speaker)")
    argv = player.remote_argv if player.kind == "mpg123" else player.argv
    program = argv[0] if argv else ""
    if not program or shutil.which(program) is None:
        return Check(
            "audio", False, f"player {program or '(none)'} not found", "apt install mpg123"
        )
    return Check("audio", True, f"player {shutil.which(program)}")


def streams_check(data_dir: Path, device_id: str, server_key: str) -> Check:
    """Streams on which the receiver refuses the server's genuine commands as stale: it once
    accepted a sequence far beyond the server's counter (a leaked key, a bug, a restored server
    database), and only a new epoch brings it back (`devices.intake`)."""
    state = ReplayState.load(data_dir / REPLAY_FILE, device_id, server_key)
    stale = state.stale_streams()
    if not stale:
        return Check(
            "command streams",
            True,
            f"{len(state.streams)} stream(s), none refusing the server (epoch {state.floor})",
        )
    lines = []
    for stream in stale:
        since = datetime.fromtimestamp(stream.since, UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"{stream.topic} refused {stream.refused} command(s) as stale since {since}: its"
            f" stored sequence {stream.stored_seq} (epoch {stream.epoch}) is"
            f" {stream.stored_seq - stream.refused_seq} ahead of the server's latest"
            f" ({stream.refused_seq})"
        )
    return Check("command streams", False, "; ".join(lines), STREAMS_FIX)


def _login_left_to_agent(pid: int) -> Check:
    """The login is the running agent's: logging in beside it would take its session over (a
    login is bound to its client id) and cut it off for a moment, during an emergency too."""
    who = f"pid {pid}" if pid else "another process"
    return Check(
        "broker login",
        True,
        f"not tried: the receiver agent ({who}) is running with this login; "
        "its log says whether the broker accepts it",
        "",
    )


def receiver_checks(config_path: Path) -> list[Check]:
    try:
        config = ReceiverConfig.load(config_path)
    except ConfigError as exc:
        return [Check("config", False, str(exc), "copy the file the server generated again")]
    checks = [Check("config", True, f"{config_path}: device {config.device_id}")]
    key_text = config.server_public_key
    try:
        key_text = protocol.public_key_to_text(protocol.public_key_from_text(key_text))
        checks.append(Check("server key", True, "the server's Ed25519 key is readable"))
    except (ValueError, protocol.ProtocolError) as exc:
        checks.append(Check("server key", False, str(exc), "re-download the config file"))
    checks.append(streams_check(Path(config.data_dir), config.device_id, key_text))
    mqtt_settings = config.mqtt
    brokers = mqtt_settings.brokers
    reachable = []
    for address in brokers:  # every node of `mqtt.hosts`: the agent fails over between them
        name = "broker" if len(brokers) == 1 else f"broker {address}"
        fix = f"check the network, and that the broker listens on {address}"
        check = tcp_check(name, address.host, address.port, fix)
        checks.append(check)
        if check.ok:
            reachable.append(address)
    tls = None
    tls_ok = True
    if mqtt_settings.tls is not None:
        fix_tls = "copy the broker's CA to that path, or the config again (it carries the CA)"
        try:
            tls = tls_context(mqtt_settings.tls, str(config_path))
            checks.append(Check("broker TLS", True, "the CA (and client certificate) load"))
        except ConfigError as exc:
            tls_ok = False
            checks.append(Check("broker TLS", False, str(exc), fix_tls))
    agent_pid = running_pid(Path(config.data_dir))
    if agent_pid is not None:
        checks.append(_login_left_to_agent(agent_pid))
    elif reachable and tls_ok:
        checks.append(
            mqtt_login_check(
                "broker login",
                reachable[0].host,
                reachable[0].port,
                mqtt_settings.username,
                mqtt_settings.password,
                "the server must know this device: `loa mqtt-config` (mosquitto) or re-register",
                tls,
                as_receiver=True,
                client_id=mqtt_settings.client_id_of(config.device_id),
            )
        )
    checks.append(clock_check())
    checks.append(audio_check(config))
    checks.append(disk_check("disk", Path(config.data_dir)))
    return checks
