#!/usr/bin/env python3
"""Time analyze_metrics.py over a year of realistic metrics files (17,520 runs every 30 minutes).

Files are written by RunMetrics.save itself, so their format is the collector's. The
analysis runs as a real process pinned to one core, a few times; the figures are printed.

    python3 bench/bench_analyze.py [--runs 17520] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from polisen_collector.archive.layout import new_run_id
from polisen_collector.metrics.run_metrics import RunMetrics

ERRORS = [
    ("ApiError", "HTTP 503 from https://polisen.se/api/events (after 3 retries)"),
    ("ApiError", "empty body from https://polisen.se/api/events (after 3 retries)"),
    ("ApiError", "timed out reading https://polisen.se/api/events (after 3 retries)"),
    ("StorageError", "could not write metadata/last_seen.json: service unavailable"),
]


def generate(directory: Path, runs: int, seed: int = 1) -> int:
    """Write `runs` metrics files, one per 30 minutes ending now, with outages and failures."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(minutes=30 * (runs - 1))
    outages = {rng.randrange(runs) for _ in range(6)}
    written, skip = 0, 0
    for index in range(runs):
        if index in outages:
            skip = rng.randint(2, 20)
        if skip:
            skip -= 1
            continue
        started = start + timedelta(minutes=30 * index, seconds=rng.uniform(0, 4))
        slow = 1 + index / runs * 0.3
        metrics = RunMetrics(new_run_id(started), now=lambda started=started: started)
        fetch = rng.lognormvariate(-0.4, 0.3) * slow
        metrics.timings = {"metadata_fetch": rng.lognormvariate(-4.5, 0.3), "api_fetch": round(fetch, 6)}
        roll = rng.random()
        if roll < 0.015:
            error_type, message = rng.choice(ERRORS)
            metrics.errors = [{"type": error_type, "message": message, "time": started.isoformat(), "step": "api_fetch"}]
            metrics.timings["api_fetch"] = round(fetch + 7, 6)
            outcome = "failed"
        elif roll < 0.017:
            metrics.timings, outcome = {}, "locked"
        else:
            not_modified = rng.random() < 0.2
            new = 0 if not_modified else min(12, int(rng.expovariate(1 / 1.5)))
            updated = 0 if not_modified else int(rng.random() < 0.02)
            metrics.counts = {
                "http_status": 304 if not_modified else 200,
                "bytes_wire": rng.randint(280, 320) if not_modified else rng.randint(24000, 28000),
                "bytes_decoded": 0 if not_modified else rng.randint(165000, 175000),
                "retries": int(rng.random() < 0.03), "api_requests": 1, "seen_ids": 2100,
                "invalid_events": 0, "api_events": 0 if not_modified else 500, "new_events": new,
                "updated_events": updated, "unchanged_events": 0 if not_modified else 500 - new - updated,
                "objects_written": 1 if new + updated else 0, "state_ids": 2100, "state_bytes": 120000,
            }
            if not not_modified:
                metrics.timings.update(deduplication=rng.uniform(0.004, 0.008),
                                       save_events=rng.lognormvariate(-4, 0.5),
                                       metadata_update=rng.lognormvariate(-3.5, 0.4))
            outcome = "success"
        metrics.timings = {name: round(value, 6) for name, value in metrics.timings.items()}
        metrics.finish(outcome)
        metrics.timings["total"] = round(sum(metrics.timings.values()) + 0.05, 6)
        metrics.finished_at = started + timedelta(seconds=metrics.timings["total"])
        metrics.save(directory)
        written += 1
    return written


def time_analysis(directory: Path, args: list[str], repeat: int) -> list[float]:
    """Wall times of analyze_metrics.py as a real process on one core."""
    cpu = min(os.sched_getaffinity(0))
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(REPO / "analyze_metrics.py"), "--metrics-dir", str(directory),
             "--env-file", os.devnull, *args],
            capture_output=True, text=True, check=False, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        )
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            sys.exit(f"analyze_metrics.py failed: {done.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=17_520, help="schedule slots to generate (default a year)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = options.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        files = generate(directory, options.runs)
        print(f"generated {files:,} metrics files in {time.perf_counter() - began:.1f} s")
        for label, extra in (("text report", []), ("--json", ["--json"]), ("--days 7", ["--days", "7"])):
            times = time_analysis(directory, extra, options.repeat)
            print(f"analyze_metrics.py {label:<12} over {files:,} files, one core: "
                  f"best {min(times):.3f} s, median {statistics.median(times):.3f} s ({options.repeat} runs)")


if __name__ == "__main__":
    main()
