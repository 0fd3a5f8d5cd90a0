"""`python -m bench [--only P1,P2,...]`: run the benchmarks, print a markdown table, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench import scenarios, studio

TARGETS: dict[str, tuple[str, str, float]] = {
    "P1": ("vs_limit", "<=", 1.05),
    "P2": ("ratio", "<=", 1.1),
    "P3": ("ratio", "<=", 0.55),
    "P4": ("ratio", ">=", 0.7),
    "P5": ("start_median_ms", "<=", 20.0),
    "P6": ("worker_peak_rss_mb", "<=", 300.0),
    "P7": ("spread", "<=", 0.05),
    "STUDIO": ("detail_median_ms", "<=", 1000.0),
}
DEFAULT = ["P1", "P2", "P3", "P4", "P5", "P7"]


def _verdict(name: str, figures: dict[str, Any]) -> str:
    key, op, target = TARGETS[name]
    value = figures[key]
    met = value <= target if op == "<=" else value >= target
    extra = ""
    if name == "P1":
        extra = f"; vs DIY {figures['vs_diy']:.2f} (target <= 1.0: {'met' if figures['vs_diy'] <= 1.0 else 'MISSED'})"
    if name == "P6":
        page = figures["page_ms"]
        extra = f"; page {page:.0f} ms (target <= 100: {'met' if page <= 100 else 'MISSED'})"
    if name == "P5":
        extra = f"; streams on time {figures['streams_on_time']}/{figures['streams']} (target 500)"
    if name == "P7":
        extra = f"; against the bare client run beside each run {figures['normalised_spread']:.2f}"
    return f"{key} {value:.2f} (target {op} {target}: {'met' if met else 'MISSED'}){extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(DEFAULT), help="comma-separated: P1..P7 (P6 only on demand)")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so every stack's `finally` stops its processes and drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    machine = f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    results: dict[str, Any] = {"machine": machine, "when": time.strftime("%Y-%m-%d %H:%M"), "figures": {}}
    print(f"| figure | result | measured ({machine}) |\n| --- | --- | --- |")
    for name in args.only.upper().split(","):
        figures = getattr(studio if name == "STUDIO" else scenarios, name.lower())()
        results["figures"][name] = figures
        measured = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
        print(f"| {name} | {_verdict(name, figures)} | {measured} |", flush=True)
    out = Path("bench/results/latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
