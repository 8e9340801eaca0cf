"""Growth: how fan-out time and CPU grow from 100 to 1,000 to 2,000 receivers.

The measurement is `bench/fanout.py`'s (the agent's `MqttLink` + `CommandIntake` per receiver,
mosquitto, a signed emergency play against a raw floor of the same size, rounds alternating),
repeated for each N. CPU time per send is read per process group from Linux's per-process CPU
clocks: the sender (the server's publisher), mosquitto, and the receivers' worker processes.
Everything shares one machine's cores, so each group's CPU per send is what it takes from the
others. Receivers run `fanout.CLIENTS_PER_PROCESS` (50) to a worker process, each with its own
paho network thread as in the agent, so 2,000 receivers are 40 processes, not the one or two the
issue imagined: paho's `select()` caps a process at 300 receivers, and well before that hundreds
of threads queueing for one GIL cost more than the messages (see `bench/fanout.py`).

    python bench/growth.py --receivers 100 1000 2000 --rounds 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout

DEFAULT_RECEIVERS = (100, 1000, 2000)


def measure(
    receivers: list[int], rounds: int, per_process: int = fanout.CLIENTS_PER_PROCESS
) -> dict[str, Any]:
    """One fan-out measurement per N, with how time and CPU per receiver grow against the
    smallest N."""
    rows = []
    for count in receivers:
        row = fanout.run(count, rounds, per_process)
        signed_cpu = row["cpu_per_send_ms"]["signed"]
        row["signed_cpu_total_ms"] = sum(signed_cpu.values())
        row["receivers_cpu_per_delivery_us"] = {
            kind: row["cpu_per_send_ms"][kind]["receivers"] / count * 1000 for kind in fanout.KINDS
        }
        row["signed_p50_per_receiver_us"] = row["signed_p50_s"] / count * 1e6
        rows.append(row)
        print(
            f"N={count}: verified p50 {row['signed_p50_s'] * 1000:.1f} ms (floor "
            f"{row['floor_p50_s'] * 1000:.1f} ms); CPU per send: sender "
            f"{signed_cpu['sender']:.1f} ms, broker {signed_cpu['broker']:.1f} ms, receivers "
            f"{signed_cpu['receivers']:.1f} ms",
            flush=True,
        )
    base = rows[0]
    for row in rows:
        scale = row["receivers"] / base["receivers"]
        row["time_growth"] = row["signed_p50_s"] / base["signed_p50_s"]
        row["floor_growth"] = row["floor_p50_s"] / base["floor_p50_s"]
        row["cpu_growth"] = row["signed_cpu_total_ms"] / base["signed_cpu_total_ms"]
        row["receivers_growth"] = scale
    return {"benchmark": "growth", "rounds": rounds, "rows": rows}


def table(result: dict[str, Any]) -> list[str]:
    """The markdown section of bench/RESULTS.md for a result of `main`."""
    lines = [
        "## Growth: fan-out time and CPU from 100 to 2,000 receivers",
        "",
        "The fan-out measurement above (signed emergency play vs raw floor, mosquitto, the "
        "agent's link and intake per receiver) for each N; CPU per send per process group, "
        "read from Linux's per-process CPU clocks. All groups share the machine's cores. "
        f"Receivers run {result['rows'][0]['per_process']} to a worker process, each with its "
        "own paho thread as in the agent. Other processes' load: the cores the rest of the "
        "machine kept busy during the run.",
        "",
        "| receivers | worker processes | verified p50 | p99 | floor p50 | ratio | time × "
        "(vs first) | CPU per signed send: sender | mosquitto | receivers (floor) | receivers' "
        "CPU per delivery (floor) | CPU × (vs first) | other processes' load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        signed, raw = row["cpu_per_send_ms"]["signed"], row["cpu_per_send_ms"]["raw"]
        per_delivery = row["receivers_cpu_per_delivery_us"]
        lines.append(
            f"| {row['receivers']:,} | {row['workers']} | {row['signed_p50_s'] * 1000:.1f} ms | "
            f"{row['signed_p99_s'] * 1000:.1f} ms | {row['floor_p50_s'] * 1000:.1f} ms | "
            f"{row['ratio_p50']:.2f} | {row['time_growth']:.1f} | {signed['sender']:.1f} ms | "
            f"{signed['broker']:.1f} ms | {signed['receivers']:.0f} ms ({raw['receivers']:.0f}) "
            f"| {per_delivery['signed']:.0f} µs ({per_delivery['raw']:.0f}) | "
            f"{row['cpu_growth']:.1f} | {row['other_processes_cores']:.1f} cores |"
        )
    first, last = result["rows"][0], result["rows"][-1]
    before, after = first["cpu_per_send_ms"]["signed"], last["cpu_per_send_ms"]["signed"]
    idle = last["idle_cpu_ms_per_s"]
    lines += [
        "",
        f"From {first['receivers']:,} to {last['receivers']:,} receivers "
        f"(×{last['receivers_growth']:.0f}) the last verified receipt takes "
        f"×{last['time_growth']:.1f} as long (the floor ×{last['floor_growth']:.1f}) and a "
        f"signed send ×{last['cpu_growth']:.1f} the CPU. Per send, the sender's CPU goes from "
        f"{before['sender']:.1f} to {after['sender']:.1f} ms (one publish on the zone's topic "
        "whatever N; this process also collects one report per worker process), mosquitto's "
        f"from {before['broker']:.1f} to {after['broker']:.1f} ms (a "
        f"copy written per receiver), the receivers' from {before['receivers']:.0f} to "
        f"{after['receivers']:.0f} ms (each verifies its own copy): "
        f"{after['receivers'] / last['signed_cpu_total_ms']:.0%} of the CPU at "
        f"{last['receivers']:,}. Idle, that fleet takes {sum(idle.values()):.0f} ms of CPU per "
        "second (paho's loops and keep-alives).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--receivers", type=int, nargs="+", default=list(DEFAULT_RECEIVERS))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-process", type=int, default=fanout.CLIENTS_PER_PROCESS)
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    result = measure(args.receivers, args.rounds, args.per_process)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
