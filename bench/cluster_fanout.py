"""An emergency's fan-out through a 3-node nats-server cluster against one mosquitto, in one run
(issue 14 item 7): the same fleet of receivers (the agent's own `MqttLink` and
`CommandIntake`, as `bench/fanout.py` runs them) gets the same signed commands through each.

The cluster is what `loa nats-config --nodes 3` writes (`write_cluster`), each node a
nats-server process on loopback with MQTT on JetStream (every session and retained message
replicated to the three). The receivers' worker processes are spread over the nodes (worker i
on node i mod 3), the server's publisher is on node 1, so two thirds of the receivers get each
command over a route, as a province whose receivers are spread over the nodes does. Mosquitto
runs first, then the cluster, each with a floor of the same bytes unsigned; the ratio is the
cluster's last-verified p50 over mosquitto's. Loopback only, every wait bounded.

    python bench/cluster_fanout.py --receivers 2000 --rounds 20 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

import cluster  # noqa: E402
import fanout  # noqa: E402

from broadcast.fleet.brokers.access import BrokerAccess  # noqa: E402
from broadcast.fleet.brokers.nats import find_nats_server, plan_cluster, write_cluster  # noqa: E402

NODES = 3
HEALTHY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class NatsCluster:
    """`NODES` nats-server processes from `write_cluster`'s configs, each stopped by its own
    handle."""

    name = "nats-cluster"

    def __init__(self, nodes: int = NODES) -> None:
        self.count = nodes
        self._mqtt_ports: list[int] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def start(self, folder: Path, access: BrokerAccess) -> None:
        binary = find_nats_server()
        if binary is None:
            raise RuntimeError("nats-server is not installed (Debian package 'nats-server')")
        ports = cluster.free_ports(3 * self.count)
        self._mqtt_ports = ports[: self.count]
        out = folder / "nats"
        nodes = plan_cluster(
            out,
            self.count,
            mqtt_ports=self._mqtt_ports,
            cluster_ports=ports[self.count : 2 * self.count],
            monitor_ports=ports[2 * self.count :],
        )
        files = write_cluster(out, nodes, access, secrets.token_hex(16), binary=binary)
        for node in nodes:
            log = (out / f"{node.name}.log").open("wb")
            self._logs.append(log)
            self._processes.append(
                subprocess.Popen(
                    [binary, "-c", str(files.configs[node.name])],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            )
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        waiting = [node.monitor_port for node in nodes]
        while waiting and time.monotonic() < deadline:
            if any(process.poll() is not None for process in self._processes):
                raise RuntimeError(f"a nats-server node exited: see {out}/loa-*.log")
            waiting = [port for port in waiting if not cluster.healthy(port)]
            time.sleep(0.2)
        if waiting:
            raise RuntimeError(f"nats nodes on monitor ports {waiting} not healthy in time")

    def receiver_port(self, worker_no: int) -> int:
        return self._mqtt_ports[worker_no % self.count]

    @property
    def server_port(self) -> int:
        return self._mqtt_ports[0]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        self._processes = []
        for log in self._logs:
            with contextlib.suppress(OSError):
                log.close()
        self._logs = []


def run(receivers: int, rounds: int, per_process: int) -> dict[str, Any]:
    """Mosquitto's fan-out, then the cluster's, to the same number of receivers."""
    single = fanout.run(receivers, rounds, per_process, broker=fanout.OneMosquitto())
    cluster = fanout.run(receivers, rounds, per_process, broker=NatsCluster())
    return {
        "receivers": receivers,
        "rounds": rounds,
        "nodes": NODES,
        "mosquitto": single,
        "cluster": cluster,
        "ratio_p50": cluster["signed_p50_s"] / single["signed_p50_s"],
        "ratio_p99": cluster["signed_p99_s"] / single["signed_p99_s"],
    }


def table(result: dict[str, Any]) -> list[str]:
    """The markdown rows of bench/RESULTS.md for `main`'s result."""
    lines = [
        f"## An emergency through a {result['nodes']}-node nats-server cluster against one "
        "mosquitto",
        "",
        "The same fleet as the fan-out above (the agent's own `MqttLink` and `CommandIntake`, "
        f"{result['rows'][0]['mosquitto']['per_process']} to a worker process) gets the same "
        "signed emergency `play` through one mosquitto, then through the cluster `loa "
        "nats-config` writes (MQTT on JetStream, sessions replicated to every node; workers "
        "spread over the nodes, the server's publisher on node 1, so two thirds of the "
        "receivers get each command over a route). Time: publish → the last receiver verified "
        "it; floor: the same bytes unsigned, through the same broker, rounds alternating. "
        "Loopback, one machine: the nodes share its 2 cores with the receivers.",
        "",
        "| receivers | broker | last verified p50 | p99 | floor (unsigned) p50 | "
        "CPU per send: broker | receivers |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        for name in ("mosquitto", "cluster"):
            found = row[name]
            cpu = found["cpu_per_send_ms"]["signed"]
            label = "one mosquitto" if name == "mosquitto" else f"nats-server × {row['nodes']}"
            lines.append(
                f"| {row['receivers']:,} | {label} | {found['signed_p50_s'] * 1000:.1f} ms | "
                f"{found['signed_p99_s'] * 1000:.1f} ms | {found['floor_p50_s'] * 1000:.1f} ms | "
                f"{cpu['broker']:.0f} ms | {cpu['receivers']:.0f} ms |"
            )
    lines.append("")
    for row in result["rows"]:
        lines.append(
            f"At {row['receivers']:,} receivers the cluster takes {row['ratio_p50']:.2f}× "
            f"mosquitto's time at p50 ({row['ratio_p99']:.2f}× at p99)."
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--receivers", type=int, nargs="+", default=[2000])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-process", type=int, default=fanout.CLIENTS_PER_PROCESS)
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    rows = []
    for receivers in args.receivers:
        row = run(receivers, args.rounds, args.per_process)
        rows.append(row)
        print(
            f"N={receivers}: mosquitto p50 {row['mosquitto']['signed_p50_s'] * 1000:.1f} ms, "
            f"cluster p50 {row['cluster']['signed_p50_s'] * 1000:.1f} ms; ratio "
            f"{row['ratio_p50']:.2f} (p99 {row['ratio_p99']:.2f})",
            flush=True,
        )
    result = {"benchmark": "cluster_fanout", "nodes": NODES, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
