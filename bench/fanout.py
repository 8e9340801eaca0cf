"""Command fan-out over mosquitto: an urgent command to N receivers, time until the last one has
VERIFIED it (Ed25519 signature, stream and sequence, as the agent does), next to the floor
measured in the same run on the same broker with the same N subscribers: a raw paho publish →
subscribe of a payload of the same size, nothing verified.

Receivers are paho clients with their own broker login and ACL (`device_user`), spread over a
few worker processes; every loop is bounded in count and time; loopback only. Times are
CLOCK_MONOTONIC (`time.monotonic`), which all processes of one host share.

    python bench/fanout.py --receivers 1000 --rounds 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from broadcast.brokers.access import (  # noqa: E402
    BrokerAccess,
    device_user,
    hash_password,
    server_user,
)
from broadcast.brokers.mosquitto import MosquittoBroker  # noqa: E402
from devices import protocol  # noqa: E402

ZONE = "bench"
TOPIC = protocol.zone_command_topic(ZONE)
PASSWORD = "bench-password-only"
ROUND_TIMEOUT_S = 30.0
# Each login costs mosquitto one PBKDF2 of the password hash; this benchmark measures fan-out,
# not logins, so its receivers share a cheap hash (production hashes use 10,000 iterations).
BENCH_ITERATIONS = 100
# paho waits on sockets with select(), which cannot watch file descriptors past 1023, and each
# client holds three: so at most this many receivers per worker process.
CLIENTS_PER_PROCESS = 300


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(
    port: int, device_ids: list[str], public_key: str, ready: Any, results: Any, stop: Any
) -> None:
    """Receivers in one process: each verifies what arrives and reports (round, kind, time)."""
    key = protocol.public_key_from_text(public_key)
    clients = []
    subscribed = threading.Semaphore(0)
    for device_id in device_ids:
        guard = protocol.SequenceGuard({})
        lock = threading.Lock()

        def on_message(
            _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage, guard=guard, lock=lock
        ) -> None:
            payload = message.payload
            if payload.startswith(b"raw:"):  # the floor: nothing checked
                results.put((int(payload[4:12]), "raw", time.monotonic()))
                return
            command = protocol.verify_command(payload, key)
            with lock:
                if not guard.check(command, message.topic):
                    return
                guard.remember(command)
            assert isinstance(command.body, protocol.StopBody)
            results.put((int(command.body.broadcast_id or 0), "signed", time.monotonic()))

        def on_connect(client: mqtt.Client, *_args: object) -> None:
            client.subscribe(TOPIC, qos=1)

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv311
        )
        client.username_pw_set(device_id, PASSWORD)
        client.on_message = on_message
        client.on_connect = on_connect
        client.on_subscribe = lambda *_a: subscribed.release()
        client.connect("127.0.0.1", port, keepalive=60)
        client.loop_start()
        clients.append(client)
    deadline = time.monotonic() + 120
    count = 0
    for _ in device_ids:
        if not subscribed.acquire(timeout=max(0.1, deadline - time.monotonic())):
            break
        count += 1
    ready.put(count)
    stop.wait(3600)
    for client in clients:
        client.disconnect()
        client.loop_stop()


def run(receivers: int, rounds: int, workers: int) -> dict[str, Any]:
    signing_key = protocol.generate_private_key()
    shared_hash = hash_password(PASSWORD, iterations=BENCH_ITERATIONS)
    device_ids = [f"bench-{n:04d}" for n in range(receivers)]
    access = BrokerAccess(
        (
            server_user("loa-server", PASSWORD),
            *(device_user(d, "", [ZONE], password_hash=shared_hash) for d in device_ids),
        )
    )
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="loa-bench-"))
    broker = MosquittoBroker(folder, "127.0.0.1", port, access)
    broker.start()
    context = mp.get_context("spawn")
    ready, results, stop = context.Queue(), context.Queue(), context.Event()
    workers = max(workers, -(-receivers // CLIENTS_PER_PROCESS))
    chunks = [device_ids[i::workers] for i in range(workers)]
    public = protocol.public_key_to_text(signing_key.public_key())
    processes = [
        context.Process(target=_worker, args=(port, chunk, public, ready, results, stop))
        for chunk in chunks
    ]
    for process in processes:
        process.start()
    try:
        connected = sum(ready.get(timeout=180) for _ in processes)
        if connected != receivers:
            raise RuntimeError(f"only {connected} of {receivers} receivers subscribed")
        publisher = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="loa-server-bench", protocol=mqtt.MQTTv311
        )
        publisher.username_pw_set("loa-server", PASSWORD)
        publisher.connect("127.0.0.1", port, keepalive=60)
        publisher.loop_start()
        time.sleep(1.0)
        signed_s, raw_s = [], []
        sequence = 0
        for round_no in range(1, rounds + 1):
            for kind in ("raw", "signed"):
                sequence += 1
                command = protocol.new_command(
                    protocol.StopBody(broadcast_id=round_no), stream=TOPIC, seq=sequence
                )
                signed = protocol.sign_command(command, signing_key)
                payload = (
                    signed
                    if kind == "signed"
                    else b"raw:" + f"{round_no:08d}".encode() + b"x" * (len(signed) - 12)
                )
                started = time.monotonic()
                publisher.publish(TOPIC, payload, qos=1).wait_for_publish(10)
                last, seen = started, 0
                deadline = started + ROUND_TIMEOUT_S
                while seen < receivers and time.monotonic() < deadline:
                    try:
                        got_round, got_kind, at = results.get(timeout=1.0)
                    except Exception:
                        continue
                    if got_round == round_no and got_kind == kind:
                        seen += 1
                        last = max(last, at)
                if seen < receivers:
                    raise RuntimeError(f"round {round_no} {kind}: {seen}/{receivers} in time")
                (signed_s if kind == "signed" else raw_s).append(last - started)
                time.sleep(0.2)
        publisher.disconnect()
        publisher.loop_stop()
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
        broker.stop()

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    result = {
        "receivers": receivers,
        "rounds": rounds,
        "workers": workers,
        "signed_p50_s": statistics.median(signed_s),
        "signed_p99_s": pct(signed_s, 0.99),
        "floor_p50_s": statistics.median(raw_s),
        "floor_p99_s": pct(raw_s, 0.99),
        "goal_ratio": 1.5,
    }
    result["ratio_p50"] = result["signed_p50_s"] / result["floor_p50_s"]
    result["goal_met"] = result["ratio_p50"] <= result["goal_ratio"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 2)))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [run(n, args.rounds, args.workers) for n in args.receivers]
    for row in rows:
        print(
            f"N={row['receivers']}: last verified p50 {row['signed_p50_s'] * 1000:.1f} ms, "
            f"p99 {row['signed_p99_s'] * 1000:.1f} ms; floor p50 "
            f"{row['floor_p50_s'] * 1000:.1f} ms; ratio {row['ratio_p50']:.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
