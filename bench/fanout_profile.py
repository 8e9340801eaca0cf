"""Where a fan-out's CPU goes in the receivers' worker processes: py-spy samples of the workers
while only raw floor messages are sent, then while only signed commands are, summarised as the
top functions by self and by cumulative share of the samples; next to them `fanout.micro_profile`
(each step alone) and a third run that times the Ed25519 checks inside the fleet.

Needs py-spy (`pip install py-spy`; it reads other processes' memory, so root or ptrace rights).
The fleet is `fanout.Fleet`: the agent's `MqttLink` + `CommandIntake` per receiver, mosquitto.

    python bench/fanout_profile.py --receivers 300 --rounds 30 --out bench/profiles/fanout.txt
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout

from wire import protocol

RATE_HZ = 500
TOP = 15
PATH_PREFIX = re.compile(r"\((?:/[^)]*?/(?:site-packages|python3\.\d+|main|bench)/)")


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy not found: pip install py-spy")
    return found


def record(kind: str, receivers: int, rounds: int, folder: Path) -> list[Path]:
    """Send `rounds` messages of one kind while py-spy samples every worker process."""
    signing_key = protocol.generate_private_key()
    outputs = []
    public_key_text = protocol.public_key_to_text(signing_key.public_key())
    with fanout.Fleet(receivers, public_key_text) as fleet:
        duration_s = int(rounds * (fanout.GAP_S + 0.3)) + 5
        spies = []
        for number, pid in enumerate(fleet.worker_pids):
            output = folder / f"{kind}-{number}.txt"
            outputs.append(output)
            command = [_py_spy(), "record", "--pid", str(pid), "--nonblocking", "--gil", "--rate"]
            command += [str(RATE_HZ), "--duration", str(duration_s), "--format", "raw"]
            spies.append(
                subprocess.Popen(
                    [*command, "--output", str(output)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(1.0)
        for round_no in range(1, rounds + 1):
            signed = fanout.signed_payload(signing_key, round_no, round_no, time.time())
            payload = signed if kind == "signed" else fanout.raw_payload(round_no, len(signed))
            fleet.send(round_no, kind, payload)
            time.sleep(fanout.GAP_S)
        for spy in spies:
            try:
                spy.wait(timeout=duration_s + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(timeout=10)
    return [output for output in outputs if output.exists()]


def in_fleet_costs(receivers: int, rounds: int) -> dict[str, float]:
    """Thread CPU per signed message inside the fleet (µs): the whole callback
    (`CommandIntake.verify`) and the Ed25519 check in it, timed by a wrapped key."""
    signing_key = protocol.generate_private_key()
    public_key_text = protocol.public_key_to_text(signing_key.public_key())
    with fanout.Fleet(receivers, public_key_text, time_ed25519=True) as fleet:
        for round_no in range(1, rounds + 1):
            payload = fanout.signed_payload(signing_key, round_no, round_no, time.time())
            fleet.send(round_no, "signed", payload)
            time.sleep(fanout.GAP_S)
    totals = fleet.totals
    callback_us = totals["callback_cpu_s"]["signed"] / max(1, totals["messages"]["signed"]) * 1e6
    ed25519_us = totals["ed25519_cpu_s"] / max(1, totals["ed25519_calls"]) * 1e6
    return {
        "callback_us": callback_us,
        "ed25519_us": ed25519_us,
        "rest_us": callback_us - ed25519_us,
    }


@dataclass
class Summary:
    """Samples, and per function (line cut off) its self and cumulative samples, and per line
    its self samples."""

    samples: int = 0
    own: collections.Counter[str] = field(default_factory=collections.Counter)
    total: collections.Counter[str] = field(default_factory=collections.Counter)
    lines: collections.Counter[str] = field(default_factory=collections.Counter)


def summarise(paths: list[Path]) -> Summary:
    summary = Summary()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            summary.samples += count
            frames = [PATH_PREFIX.sub("(", frame) for frame in stack.split(";")]
            summary.lines[frames[-1]] += count
            functions = [re.sub(r":\d+\)$", ")", frame) for frame in frames]
            summary.own[functions[-1]] += count
            for function in set(functions):
                summary.total[function] += count
    return summary


def render(receivers: int, rounds: int, folder: Path, fleet_costs: dict[str, float]) -> list[str]:
    profile = fanout.micro_profile()
    workers = max(fanout.MIN_WORKERS, -(-receivers // fanout.CLIENTS_PER_PROCESS))
    lines = [
        f"Fan-out profile: {receivers} receivers in {workers} worker processes (agent MqttLink + "
        f"CommandIntake each), mosquitto, {rounds} sends of each kind; py-spy {RATE_HZ} Hz on "
        "the workers, --gil: the thread holding the GIL, or the last one that held it while no "
        "thread does. cryptography releases the GIL inside OpenSSL's Ed25519 check, so that "
        "check shows on verify_command's `key.verify` line only while no other thread runs "
        "Python; its full cost is ed25519_verify_us below.",
        f"Made by: python bench/fanout_profile.py --receivers {receivers} --rounds {rounds}",
        f"Load average when made: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} cores.",
        "",
        "Per message, alone in one process (thread CPU, best of 3):",
    ]
    lines += [f"  {name:20s} {value:8.1f}" for name, value in profile.items()]
    lines += [
        "",
        "Per signed message inside the fleet (thread CPU, mean; the key wrapped to time its "
        "Ed25519 checks; the rest is JSON parse, canonical form, body and guards):",
    ]
    lines += [f"  {name:20s} {value:8.1f}" for name, value in fleet_costs.items()]
    for kind in fanout.KINDS:
        summary = summarise(sorted(folder.glob(f"{kind}-*.txt")))
        samples = max(1, summary.samples)
        for title, counter in (
            ("top functions by self", summary.own),
            ("top functions by cumulative", summary.total),
            ("top lines by self", summary.lines),
        ):
            if title == "top functions by self":
                lines += ["", f"== {kind}: {summary.samples} samples"]
            lines += ["", f"{title}:"]
            lines += [f"  {n / samples:6.1%}  {name}" for name, n in counter.most_common(TOP)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--receivers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "profiles/fanout.txt")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="loa-bench-spy-"))
    try:
        for kind in fanout.KINDS:
            if not record(kind, args.receivers, args.rounds, folder):
                raise SystemExit("py-spy wrote nothing (ptrace not allowed?)")
        fleet_costs = in_fleet_costs(args.receivers, args.rounds)
        text = "\n".join(render(args.receivers, args.rounds, folder, fleet_costs)) + "\n"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
