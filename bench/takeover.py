"""The leader's death and the standby leading (issue 14 item 7): two `loa serve` on one real
PostgreSQL, as on two hosts (data directories of their own, the signing key and secrets copied),
with mosquitto; each round SIGKILLs the server holding the scheduler lock and times until the
other logs that it runs the scheduler, then starts the killed one again as the standby. Each
kill comes after a random pause within the retry interval, as a real death falls anywhere in
the standby's cycle.

A killed process's sockets close at once, so PostgreSQL frees its advisory lock at once and the
standby takes it at its next try (`Settings.lock_retry_s`, 3 s): the figures measure that retry
and the start of the scheduler, not the detection of a dead host (TCP keepalives, about 25 s,
docs/deployment.md). Loopback only; every wait is bounded.

    python bench/takeover.py --rounds 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from postgres import PostgresServer  # noqa: E402
from processes import LoaProcess  # noqa: E402
from support import LOOPBACK, free_ports  # noqa: E402

from broadcast.fleet import registry  # noqa: E402
from broadcast.fleet.brokers.mosquitto import MosquittoBroker  # noqa: E402
from broadcast.service import BroadcastService  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from loa import seed  # noqa: E402

LEADS = r"this process \(pid (\d+)\) runs the scheduler"
STANDS_BY = r"another process holds .* stands by"
LINE_TIMEOUT_S = 60.0


def _wait_line(process: LoaProcess, pattern: str, after: int, timeout_s: float) -> float:
    """When (monotonic) a line matching `pattern` past the first `after` lines was seen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = list(process.lines)
        if any(re.search(pattern, line) for line in lines[after:]):
            return time.monotonic()
        if process.process.poll() is not None:
            break
        time.sleep(0.01)
    raise RuntimeError(f"no line matching {pattern!r} within {timeout_s:g} s:\n{process.output}")


def run(rounds: int, workdir: Path) -> dict[str, Any]:
    # a folder of its own, as the tests' server has (under root it runs as `postgres`)
    pg_folder = Path(tempfile.mkdtemp(prefix="loa-takeover-pg-"))
    postgres = PostgresServer(pg_folder)
    postgres.start()
    broker: MosquittoBroker | None = None
    servers: list[LoaProcess | None] = [None, None]
    try:
        url = postgres.create_database(f"loa_takeover_{uuid.uuid4().hex[:8]}")
        ports = free_ports(4)
        nodes = [workdir / "node-a", workdir / "node-b"]
        settings = Settings(
            data_dir=nodes[0],
            port=ports[0],
            mqtt_port=ports[3],
            device_mqtt_port=ports[2],
            database_url=url,
        )
        service = BroadcastService(settings, connect_mqtt=False)
        seed.seed_demo(service, receivers=2, realtime=False)
        with service.db.session() as session:
            access = registry.broker_access(session, service.secrets.mqtt_password)
        service.stop()
        (nodes[1] / "keys").mkdir(parents=True)
        shutil.copy2(nodes[0] / "keys" / "server_ed25519.pem", nodes[1] / "keys")
        shutil.copy2(nodes[0] / "secrets.json", nodes[1])
        broker = MosquittoBroker(
            workdir / "mosquitto", LOOPBACK, ports[2], access, server_port=ports[3]
        )
        broker.start()

        def serve(index: int) -> LoaProcess:
            process = LoaProcess(
                "serve", "--data", str(nodes[index]), "--port", str(ports[index]),
                "--mqtt-port", str(ports[3]), env={"LOA_DATABASE_URL": url},
            )  # fmt: skip
            servers[index] = process
            return process

        first = serve(0)
        _wait_line(first, LEADS, 0, LINE_TIMEOUT_S)
        _wait_line(serve(1), STANDS_BY, 0, LINE_TIMEOUT_S)
        leader, times = 0, []
        phases = random.Random(20261207)
        for number in range(rounds):
            standby = servers[1 - leader]
            dying = servers[leader]
            assert standby is not None and dying is not None
            # a death comes at any moment of the standby's retry cycle, not just after it began
            time.sleep(phases.uniform(0, settings.lock_retry_s))
            seen = len(standby.lines)
            dying.kill()
            killed = time.monotonic()
            times.append(_wait_line(standby, LEADS, seen, LINE_TIMEOUT_S) - killed)
            print(f"round {number + 1}: the standby led {times[-1]:.2f} s after the kill")
            _wait_line(serve(leader), STANDS_BY, 0, LINE_TIMEOUT_S)
            leader = 1 - leader
        ordered = sorted(times)
        return {
            "benchmark": "takeover",
            "rounds": rounds,
            "lock_retry_s": settings.lock_retry_s,
            "times_s": [round(t, 3) for t in times],
            "p50_s": statistics.median(times),
            "p99_s": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
            "max_s": ordered[-1],
        }
    finally:
        for process in servers:
            if process is not None:
                process.stop()
        if broker is not None:
            broker.stop()
        postgres.stop()
        shutil.rmtree(pg_folder, ignore_errors=True)


def table(result: dict[str, Any]) -> list[str]:
    return [
        "## Two servers, one database: the leader killed, the standby leading",
        "",
        "Two `loa serve` on one PostgreSQL (separate data directories, the key and secrets "
        "copied), mosquitto; each round SIGKILLs the one holding the scheduler lock and times "
        "until the other logs that it runs the scheduler (its lock retry is "
        f"{result['lock_retry_s']:g} s; each kill at a random moment of that cycle), then "
        "starts the killed one again as the standby. "
        "A dead host instead of a killed process is noticed by TCP keepalives, about 25 s more "
        "(docs/deployment.md).",
        "",
        "| rounds | p50 | p99 | max |",
        "|---:|---:|---:|---:|",
        f"| {result['rounds']} | {result['p50_s']:.2f} s | {result['p99_s']:.2f} s | "
        f"{result['max_s']:.2f} s |",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="loa-takeover-"))
    try:
        result = run(args.rounds, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
