"""Text to sound, offline: normalize + synthesize + assemble + encode, per 1,000 characters.

Measures the product path (`broadcast.sending.rendering.MediaRenderer`) on the sample commune
plan at 1x, 10x and 100x its length, next to a floor measured in the same run: the espeak-ng engine
alone speaking the already-normalized text (the cost no pipeline can avoid). Also measures a repeat
of the same text, which must come from the caches. Every loop is bounded in count.

    python bench/tts_pipeline.py [--scales 1,10,100] [--repeats 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import audio
import tts
from broadcast.sending.rendering import MediaRenderer
from loa.seed import sample_plan_text
from tts.engines import get_engine

GOAL_S_PER_1000_CHARS = 0.3
GOAL_CACHED_S = 0.020


def _timed(func: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - started, result


def measure_scale(text: str, repeats: int) -> dict[str, Any]:
    chars = len(text)
    totals, floors, cached = [], [], []
    duration_s = 0.0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            renderer = MediaRenderer(
                tts.Synthesizer(root / "tts"), audio.MediaStore(root / "media"), root / "renders"
            )
            total, rendered = _timed(renderer.render, text)
            totals.append(total)
            duration_s = audio.probe_duration_s(renderer.store.path(rendered.sha256))
            hit, again = _timed(renderer.render, text)
            assert again.cached and again.sha256 == rendered.sha256
            cached.append(hit)
            spoken = tts.normalize(text)
            engine = get_engine("espeak")
            floor, _ = _timed(engine.synthesize, spoken, root / "floor.wav")
            floors.append(floor)
    total = statistics.median(totals)
    floor = statistics.median(floors)
    return {
        "characters": chars,
        "audio_seconds": round(duration_s, 1),
        "runs": repeats,
        "end_to_end_s": round(total, 3),
        "per_1000_chars_s": round(total / chars * 1000, 4),
        "floor_espeak_only_s": round(floor, 3),
        "floor_per_1000_chars_s": round(floor / chars * 1000, 4),
        "ratio_to_floor": round(total / floor, 2),
        "cached_repeat_ms": round(statistics.median(cached) * 1000, 2),
    }


def table(result: dict) -> list[str]:
    """The markdown section for bench/RESULTS.md."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--repeats", type=int, default=5, help="runs at 1x (fewer when larger)")
    parser.add_argument("--json", default="", help="write results as JSON to this file")
    args = parser.parse_args(argv)
    sample = sample_plan_text()
    rows: list[dict[str, Any]] = []
    for scale in (int(s) for s in args.scales.split(",")):
        repeats = max(1, min(args.repeats, args.repeats // scale or 1))
        row = {"scale": scale, **measure_scale("\n\n".join([sample] * scale), repeats)}
        row["growth_vs_1x"] = (
            round(row["per_1000_chars_s"] / rows[0]["per_1000_chars_s"], 2) if rows else 1.0
        )
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    result = {
        "benchmark": "tts_pipeline",
        "cores": os.cpu_count(),
        "goal_per_1000_chars_s": GOAL_S_PER_1000_CHARS,
        "goal_cached_repeat_ms": GOAL_CACHED_S * 1000,
        "rows": rows,
        "goals_met": all(
            r["per_1000_chars_s"] <= GOAL_S_PER_1000_CHARS
            and r["cached_repeat_ms"] <= GOAL_CACHED_S * 1000
            for r in rows
            if r["scale"] == 1  # the goals are set on the sample; larger scales show growth
        ),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
