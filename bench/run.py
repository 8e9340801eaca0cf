"""Run every benchmark and write `bench/results/*.json` and the table in `bench/RESULTS.md`.

make bench            # or: python bench/run.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import fanout  # noqa: E402
import tts_pipeline  # noqa: E402


def tts_table(result: dict) -> list[str]:
    lines = [
        "## Text to sound (offline, espeak-ng)",
        "",
        f"Goal: ≤ {result['goal_per_1000_chars_s']} s per 1,000 characters end to end; a repeat "
        f"of the same text from cache ≤ {result['goal_cached_repeat_ms']:.0f} ms. Floor: the "
        "espeak-ng engine alone on the already-normalized text, measured in the same run.",
        "",
        "| scale | chars | audio | runs | end to end (median) | per 1,000 chars | growth vs 1× | "
        "floor per 1,000 chars | ratio to floor | cached repeat |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['scale']}× | {row['characters']:,} | {row['audio_seconds']:.0f} s | "
            f"{row['runs']} | {row['end_to_end_s']:.2f} s | {row['per_1000_chars_s']:.3f} s | "
            f"{row['growth_vs_1x']:.2f} | {row['floor_per_1000_chars_s']:.3f} s | "
            f"{row['ratio_to_floor']:.1f} | {row['cached_repeat_ms']:.1f} ms |"
        )
    lines += [
        "",
        f"Goals (on the sample, 1×) met: **{'yes' if result['goals_met'] else 'no'}**. Larger "
        "scales show how the cost grows: one programme of many hours is assembled in memory, so "
        "the per-character cost rises slowly with length; real bulletins are minutes long.",
        "",
    ]
    return lines


def fanout_table(result: dict) -> list[str]:
    lines = [
        "## Command fan-out over mosquitto",
        "",
        "An urgent command to N receivers: time from publishing until the LAST receiver has "
        "verified it (Ed25519 signature, stream and sequence). Floor: a raw paho publish → "
        "subscribe of a payload of the same size to the same N subscribers on the same broker, "
        "measured in the same run. Goal: ratio ≤ 1.5.",
        "",
        "| receivers | rounds | last verified p50 | p99 | floor p50 | floor p99 | ratio (p50) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['receivers']:,} | {row['rounds']} | {row['signed_p50_s'] * 1000:.1f} ms | "
            f"{row['signed_p99_s'] * 1000:.1f} ms | {row['floor_p50_s'] * 1000:.1f} ms | "
            f"{row['floor_p99_s'] * 1000:.1f} ms | {row['ratio_p50']:.2f} |"
        )
    met = all(row["goal_met"] for row in result["rows"])
    lines += ["", f"Goal met: **{'yes' if met else 'no'}**.", ""]
    return lines


def main() -> int:
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    tts_json = results_dir / "tts_pipeline.json"
    tts_pipeline.main(["--json", str(tts_json)])
    tts_result = json.loads(tts_json.read_text(encoding="utf-8"))
    fanout_json = results_dir / "fanout.json"
    fanout.main(["--receivers", "100", "1000", "--rounds", "20", "--json", str(fanout_json)])
    fanout_result = json.loads(fanout_json.read_text(encoding="utf-8"))
    header = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Medians; the machine is "
        "shared and noisy, so read ratios rather than absolute times.",
        "",
    ]
    (BENCH_DIR / "RESULTS.md").write_text(
        "\n".join(header + tts_table(tts_result) + fanout_table(fanout_result)), encoding="utf-8"
    )
    print(f"wrote {BENCH_DIR / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
