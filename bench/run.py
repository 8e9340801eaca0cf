"""Run every benchmark and write `bench/results/*.json` and the table in `bench/RESULTS.md`.

make bench            # or: python bench/run.py [--only NAME ...]

Each benchmark is a module with `main(argv)` (which writes its JSON result) and `table(result)`
(its markdown section). They run one after another, never side by side: each measures its own
floor in the same run, and a second benchmark would be noise in the first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import cluster  # noqa: E402
import cluster_fanout  # noqa: E402
import fanout  # noqa: E402
import footprint  # noqa: E402
import growth  # noqa: E402
import listen  # noqa: E402
import live_latency  # noqa: E402
import province  # noqa: E402
import takeover  # noqa: E402
import text_to_sound  # noqa: E402
import tts_pipeline  # noqa: E402
import web_load  # noqa: E402

# name → (module, arguments of a full run, in the order)
BENCHMARKS: dict[str, tuple[ModuleType, list[str]]] = {
    "fanout": (fanout, ["--receivers", "100", "1000", "--rounds", "20"]),
    "text_to_sound": (text_to_sound, []),
    "web_load": (web_load, ["--receivers", "1000", "--users", "50", "--duration-s", "40"]),
    "footprint": (footprint, ["--server-receivers", "1000"]),
    "growth": (growth, []),
    "tts_pipeline": (tts_pipeline, []),
    "province": (province, ["--communes", "100", "--rounds", "20", "--tts-rounds", "5"]),
    "cluster_fanout": (cluster_fanout, ["--receivers", "2000", "--rounds", "20"]),
    "cluster": (cluster, ["--receivers", "30", "--rounds", "3"]),
    "live_latency": (live_latency, ["--listeners", "10", "50", "--clicks", "20"]),
    "takeover": (takeover, ["--rounds", "10"]),
    "listen": (listen, ["--snr5-seeds", "1"]),
}


def run_one(name: str, results_dir: Path) -> dict:
    module, args = BENCHMARKS[name]
    out = results_dir / f"{name}.json"
    started = time.monotonic()
    status = module.main([*args, "--json", str(out)])
    print(f"bench: {name} took {time.monotonic() - started:.0f} s (exit {status})", flush=True)
    if status not in (0, None) and not out.exists():
        raise SystemExit(f"bench: {name} failed (exit {status}) and wrote no result")
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="*",
        choices=sorted(BENCHMARKS),
        default=None,
        help="run these and keep the others' last results in the table",
    )
    parser.add_argument(
        "--table-only", action="store_true", help="write RESULTS.md from the stored results"
    )
    args = parser.parse_args(argv)
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    chosen = [] if args.table_only else args.only or list(BENCHMARKS)
    for name in chosen:
        run_one(name, results_dir)
    sections: list[str] = []
    for name, (module, _args) in BENCHMARKS.items():
        stored = results_dir / f"{name}.json"
        if stored.exists():
            render: Callable[[dict], list[str]] = module.table
            sections += render(json.loads(stored.read_text(encoding="utf-8")))
    header = [
        "# Benchmark results",
        "",
        f"Written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} from each benchmark's last "
        f"run (`make bench`, or `bench/run.py --only NAME`; stored in `bench/results/`) on "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "Medians and percentiles; each benchmark measures its floor in the same run, so read the "
        "ratios: the machine is shared and noisy.",
        "",
    ]
    (BENCH_DIR / "RESULTS.md").write_text("\n".join(header + sections), encoding="utf-8")
    print(f"wrote {BENCH_DIR / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
