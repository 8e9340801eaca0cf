"""Footprint: resident memory of one real receiver agent (goal under 40 MB, so it fits a Pi Zero 2
W's 512 MB next to its player), and of the server with 1,000 receivers connected.

The agent is `loa receiver --config FILE`, the very command the Pi's systemd unit runs, against
mosquitto on loopback with its own login and ACL; a small HTTP server in this process serves a real
MP3 (the bundled ffmpeg's sine tone). It is measured after it has connected, received a signed
PLAY on its own command topic, fetched, verified and played the item (the `file` player: mpg123
is a child process of its own on the Pi, not part of the agent). Memory is read from
/proc/PID/smaps_rollup: RSS (what `top` shows, counting shared libraries whole), PSS (shared
pages divided among the processes sharing them) and USS (pages only this process holds, what it
would give back by exiting), plus VmHWM, the peak RSS. Floors measured the same way in the same
run: a bare interpreter, and an interpreter that only imported the agent's modules.

The server part starts the stack of `bench/stack.py`, the one web_load measures (gunicorn
`web.wsgi:app`, mosquitto, the database), with N receivers heartbeating, no users, and sums the
memory of the gunicorn master and its workers once every receiver is online.

    python bench/footprint.py --server-receivers 1000 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH_DIR))

from stack import (  # noqa: E402
    HEARTBEAT_S,
    LOOPBACK,
    ReceiverFleet,
    free_port,
    mosquitto_pid,
    process_memory,
    process_tree,
    start_stack,
    tree_memory,
    wait_devices,
)

GOAL_AGENT_MB = 40.0
DEVICE_ID = "loa-footprint-01"
ZONE = "thon-1"
PASSWORD = "footprint-password"
WAIT_S = 30.0
SETTLE_S = 2.0  # after the item finished, before the reading (threads idle again)
SAMPLES = 5
TONE_S = 3.0
# What the agent's entry point imports, without running anything: the import floor.
IMPORT_ONLY = "import loa.cli, devices.agent, sys, time; print('ready', flush=True); time.sleep(60)"
IDLE = "import time; print('ready', flush=True); time.sleep(60)"
# The agent's imports in steps, each on top of the ones before: what each step adds.
IMPORT_STEPS = (
    ("cryptography (Ed25519)", "cryptography.hazmat.primitives.asymmetric.ed25519"),
    ("paho-mqtt", "paho.mqtt.client"),
    ("the agent's own modules and the CLI", "loa.cli, devices.agent"),
)


def _steady_memory(pid: int) -> dict[str, float]:
    """The median of a few readings (each field), a short moment apart."""
    readings = []
    for _ in range(SAMPLES):
        readings.append(process_memory(pid))
        time.sleep(0.1)
    readings = [r for r in readings if r]
    if not readings:
        return {}
    return {key: sorted(r[key] for r in readings)[len(readings) // 2] for key in readings[0]}


# --- the agent ------------------------------------------------------------------------------------


def _tone_mp3(seconds: float) -> bytes:
    """A broadcast MP3 (as `audio` renders: mono 22.05 kHz 32 kbps) of a sine tone."""
    import imageio_ffmpeg

    from audio.formats import OutputFormat

    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            *OutputFormat.MP3.ffmpeg_output_args(),
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return result.stdout


def _serve(data: bytes) -> ThreadingHTTPServer:
    """An HTTP server on loopback answering every GET with `data` (the media)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout_s} s")


def _loa_command() -> list[str]:
    """The `loa` console script of this interpreter's environment (what the Pi's unit runs)."""
    script = Path(sys.executable).parent / "loa"
    return [str(script)] if script.exists() else [sys.executable, "-m", "loa.cli"]


def _idle_process(code: str) -> subprocess.Popen[str]:
    """A Python process that runs `code` (which prints 'ready', then sleeps)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=str(REPO)
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process


def _floor(code: str) -> dict[str, float]:
    process = _idle_process(code)
    try:
        return _steady_memory(process.pid)
    finally:
        process.kill()
        process.wait(timeout=10)


def _import_steps(floor_rss_mb: float) -> dict[str, float]:
    """RSS each step of `IMPORT_STEPS` adds to the ones before it (MB)."""
    added: dict[str, float] = {}
    modules: list[str] = []
    previous = floor_rss_mb
    for name, module in IMPORT_STEPS:
        modules.append(module)
        rss = _floor(f"import {', '.join(modules)}; {IDLE}")["rss_mb"]
        added[name] = rss - previous
        previous = rss
    return added


def _imported_packages() -> list[str]:
    """Top-level packages the agent's modules pull in beyond a bare interpreter's."""
    code = (
        "import sys, json; before = set(sys.modules); import loa.cli, devices.agent; "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before "
        "if not m.startswith('_')})))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    return list(json.loads(done.stdout or "[]"))


def measure_agent() -> dict[str, Any]:
    """One `loa receiver` process: memory once connected, and once it has played one item."""
    from broadcast.fleet.brokers.access import BrokerAccess, device_user, server_user
    from broadcast.fleet.brokers.mosquitto import MosquittoBroker
    from wire import protocol

    folder = Path(tempfile.mkdtemp(prefix="loa-bench-footprint-"))
    key = protocol.generate_private_key()
    port = free_port()
    access = BrokerAccess(
        (
            server_user("loa-server", PASSWORD),
            device_user(DEVICE_ID, PASSWORD, [ZONE]),
        )
    )
    server_port = free_port()  # mosquitto gives the server a listener of its own
    broker = MosquittoBroker(folder / "mosquitto", LOOPBACK, port, access, server_port=server_port)
    media = _tone_mp3(TONE_S)
    server = _serve(media)
    config = {
        "device_id": DEVICE_ID,
        "zones": [ZONE],
        "mqtt": {"host": LOOPBACK, "port": port, "username": DEVICE_ID, "password": PASSWORD},
        "server_public_key": protocol.public_key_to_text(key.public_key()),
        "data_dir": str(folder / "receiver"),
        "player": {"kind": "file", "dir": str(folder / "played")},
    }
    config_path = folder / "receiver.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    config_path.chmod(0o600)
    messages: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with lock:
            messages.append((message.topic, bytes(message.payload)))

    def events(kind: str) -> list[Any]:
        topic = protocol.device_event_topic(DEVICE_ID)
        with lock:
            found = [protocol.DeviceEvent.from_json(p) for t, p in messages if t == topic]
        return [e for e in found if e.kind.value == kind]

    def online() -> bool:
        topic = protocol.device_state_topic(DEVICE_ID)
        with lock:
            states = [protocol.DeviceStatus.from_json(p) for t, p in messages if t == topic]
        return any(s.online for s in states)

    broker.start()
    watcher = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="loa-server", protocol=mqtt.MQTTv311
    )
    watcher.username_pw_set("loa-server", PASSWORD)
    watcher.on_message = on_message
    agent: subprocess.Popen[bytes] | None = None
    log_path = folder / "agent.log"
    try:
        watcher.connect(LOOPBACK, server_port, 30)
        watcher.loop_start()
        watcher.subscribe(
            [
                (protocol.device_state_topic(DEVICE_ID), 1),
                (protocol.device_event_topic(DEVICE_ID), 1),
            ]
        )
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                [*_loa_command(), "receiver", "--config", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                cwd=str(REPO),
            )
        started = time.monotonic()
        _wait(online, "the agent did not come online")
        connected_s = time.monotonic() - started
        time.sleep(SETTLE_S)
        connected = _steady_memory(agent.pid)
        stream = protocol.device_command_topic(DEVICE_ID)
        body = protocol.PlayBody(
            broadcast_id=1,
            item_id="b1",
            media_url=f"http://{LOOPBACK}:{server.server_address[1]}/media.mp3",
            media_sha256=hashlib.sha256(media).hexdigest(),
            title="footprint",
        )
        command = protocol.new_command(body, stream=stream, seq=1)
        watcher.publish(stream, protocol.sign_command(command, key), qos=1).wait_for_publish(10)
        _wait(lambda: events("finished"), "the item was not played")
        time.sleep(SETTLE_S)
        played = _steady_memory(agent.pid)
    finally:
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(timeout=10)
        watcher.disconnect()
        watcher.loop_stop()
        server.shutdown()
        server.server_close()
        broker.stop()
    log = log_path.read_text(encoding="utf-8", errors="replace")
    shutil.rmtree(folder, ignore_errors=True)
    floor = _floor(IDLE)
    if "Traceback" in log:
        raise RuntimeError(f"the agent logged a traceback:\n{log[-3000:]}")
    return {
        "connected_s": connected_s,
        "connected": connected,
        "played": played,
        "floor_interpreter": floor,
        "floor_imports": _floor(IMPORT_ONLY),
        "import_steps_mb": _import_steps(floor["rss_mb"]),
        "imported_packages": _imported_packages(),
    }


# --- the server -----------------------------------------------------------------------------------


def measure_server(receivers: int, database: str, workers: int, threads: int) -> dict[str, Any]:
    """gunicorn's memory (master + workers) once `receivers` receivers heartbeat and are online."""
    stack, timings = start_stack(receivers, 1, database, workers, threads)
    fleet = None
    try:
        fleet = ReceiverFleet(stack.mqtt_port, stack.province.device_ids, HEARTBEAT_S)
        connected = fleet.wait_connected()
        if connected != receivers:
            raise RuntimeError(f"only {connected} of {receivers} receivers connected")
        wait_devices(stack.base, stack.province.admin_token, receivers, timeout_s=180)
        time.sleep(SETTLE_S)
        gunicorn_pid = stack.gunicorn.process.pid
        members = process_tree(gunicorn_pid)
        per_process = [_steady_memory(pid) for pid in members]
        broker_pid = mosquitto_pid(stack.broker)
        result: dict[str, Any] = {
            "receivers": receivers,
            "database": database,
            "workers": workers,
            "threads": threads,
            "processes": len(members),
            "gunicorn": {
                key: sum(m.get(key, 0.0) for m in per_process)
                for key in ("rss_mb", "pss_mb", "uss_mb")
            },
            "largest_worker_rss_mb": max(
                (m.get("rss_mb", 0.0) for m in per_process[1:]), default=0
            ),
            "mosquitto": process_memory(broker_pid) if broker_pid else {},
        }
        if stack.postgres is not None:
            database_pid = stack.postgres._process.pid
            result["database_memory"] = tree_memory(database_pid)
        result["timings"] = timings
        return result
    finally:
        if fleet is not None:
            fleet.stop()
        stack.stop()


# --- report ---------------------------------------------------------------------------------------


def table(result: dict) -> list[str]:
    """The markdown section of bench/RESULTS.md."""
    agent = result["agent"]
    lines = [
        "## Footprint",
        "",
        "Resident memory of one `loa receiver` process (what the Pi's systemd unit runs) after it "
        "connected to mosquitto, received a signed PLAY, fetched, verified and played the item; "
        "floors measured the same way in the same run. RSS counts shared libraries whole, PSS "
        "shares them out, USS is what only this process holds. Goal: under "
        f"{result['goal_agent_mb']:.0f} MB.",
        "",
        "| process | RSS | PSS | USS | peak RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, reading in (
        ("bare Python interpreter (floor)", agent["floor_interpreter"]),
        ("the agent's modules imported, nothing running", agent["floor_imports"]),
        ("agent connected", agent["connected"]),
        ("agent after playing one item", agent["played"]),
    ):
        lines.append(
            f"| {label} | {reading['rss_mb']:.1f} MB | {reading['pss_mb']:.1f} MB | "
            f"{reading['uss_mb']:.1f} MB | {reading['peak_rss_mb']:.1f} MB |"
        )
    steps = ", then ".join(f"{name} +{mb:.1f} MB" for name, mb in agent["import_steps_mb"].items())
    lines += [
        "",
        f"What the imports add to a bare interpreter, step by step (RSS): {steps}.",
        "",
        f"Agent goal met: **{'yes' if result['agent_goal_met'] else 'no'}**.",
        "",
    ]
    server = result.get("server")
    if server:
        gunicorn, broker = server["gunicorn"], server.get("mosquitto") or {}
        lines += [
            f"Server with {server['receivers']:,} receivers registered, connected and "
            f"heartbeating ({server['database']}; gunicorn {server['workers']} workers × "
            f"{server['threads']} threads, {server['processes']} processes): gunicorn RSS "
            f"{gunicorn['rss_mb']:.0f} MB, PSS {gunicorn['pss_mb']:.0f} MB, USS "
            f"{gunicorn['uss_mb']:.0f} MB (largest worker RSS "
            f"{server['largest_worker_rss_mb']:.0f} MB); mosquitto RSS "
            f"{broker.get('rss_mb', 0.0):.1f} MB"
            + (
                f"; PostgreSQL PSS {server['database_memory']['pss_mb']:.0f} MB (its processes "
                "share their buffers, so RSS would count them once per process)"
                if "database_memory" in server
                else ""
            )
            + ".",
            "",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--server-receivers", type=int, default=1000, help="0: measure only the agent"
    )
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    agent = measure_agent()
    result: dict[str, Any] = {
        "goal_agent_mb": GOAL_AGENT_MB,
        "agent": agent,
        "agent_goal_met": agent["played"]["rss_mb"] < GOAL_AGENT_MB,
    }
    if args.server_receivers > 0:
        result["server"] = measure_server(
            args.server_receivers, args.database, args.workers, args.threads
        )
    print("\n".join(table(result)))
    print("imported beyond a bare interpreter: " + ", ".join(agent["imported_packages"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
