#!/usr/bin/env python3
"""Time export_events.py on a generated year of archive, before and after compaction (best of 3).

A year: 365 days x ~71 events (~26,000), spread over 48 per-run objects a day, 1.2% of the
events edited once in a later run. Written into a temporary folder, removed at the end.
Prints wall time (best of 3) and peak memory (max RSS) of each export.
Usage: python3 bench/bench_export.py [--days 365]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from polisen_collector.archive.compaction import compact
from polisen_collector.archive.events import encode_jsonl
from polisen_collector.archive.layout import run_object_name
from polisen_collector.storage.local import LocalStorage

RUNS_PER_DAY = 48
EVENTS_PER_DAY = 71
EDIT_SHARE = 0.012
TYPES = ["Brand", "Stöld", "Trafikolycka", "Misshandel", "Rattfylleri", "Inbrott", "Sammanfattning natt"]
PLACES = [("Stockholms län", "59.329324,18.068581"), ("Skåne län", "55.990257,13.595769"),
          ("Kävlinge", "55.793637,13.113398"), ("Uppsala län", "59.858564,17.638927")]


def run_id(day: date, run: int) -> str:
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=30 * run, seconds=7)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{run:03d}Z-bench{run % 10}"


def generate(root: Path, days: int, rng: random.Random) -> int:
    """Write the per-run objects directly (no fsync per file: this is set-up, not the thing timed)."""
    event_id = 600_000
    count = 0
    start = date(2025, 1, 1)
    for offset in range(days):
        day = start + timedelta(days=offset)
        runs: list[list[dict]] = [[] for _ in range(RUNS_PER_DAY)]
        for _ in range(EVENTS_PER_DAY):
            event_id += 1
            run = rng.randrange(RUNS_PER_DAY - 1)
            kind, (place, gps) = rng.choice(TYPES), rng.choice(PLACES)
            when = f"{day} {run // 2}:{rng.randrange(60):02d}:{rng.randrange(60):02d} +01:00"
            event = {"id": event_id, "datetime": when, "name": f"{day}, {kind}, {place}",
                     "summary": "Polisen rycker ut. " * rng.randint(1, 8),
                     "url": f"/aktuellt/handelser/{event_id}/", "type": kind,
                     "location": {"name": place, "gps": gps}}
            runs[run].append(event)
            if rng.random() < EDIT_SHARE:
                runs[rng.randrange(run + 1, RUNS_PER_DAY)].append({**event, "summary": event["summary"] + " Uppdaterad."})
            count += 1
        for run, events in enumerate(runs):
            path = root / run_object_name(day.isoformat(), run_id(day, run))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_jsonl(events))
    return count


def timed(label: str, command: list[str], repeat: int = 3) -> float:
    """Best of `repeat` runs of a command, its peak memory, and the summary line it printed."""
    best, peak_kb = float("inf"), 0
    for _ in range(repeat):
        with tempfile.TemporaryFile() as errors:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
            _, status, usage = os.wait4(process.pid, 0)
            best = min(best, time.perf_counter() - started)
            peak_kb = max(peak_kb, usage.ru_maxrss)
            errors.seek(0)
            summary = errors.read().decode().strip().splitlines()
        if status != 0:
            sys.exit(f"{label} failed: {summary}")
    print(f"  {label:<40} {best:6.2f} s {peak_kb / 1024:6.0f} MB   {summary[-1]}")
    return best


def export_all(data_dir: Path, out: Path, phase: str) -> None:
    base = [sys.executable, str(REPO / "export_events.py"), "--env-file", "/nonexistent.env", "--data-dir", str(data_dir)]
    for name in ("events.jsonl", "events.csv", "events.parquet"):
        timed(f"{phase}: export -o {name}", [*base, "-o", str(out / name)])
    timed(f"{phase}: export --all-versions -o .jsonl", [*base, "--all-versions", "-o", str(out / "all.jsonl")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        data_dir, out = Path(tmp) / "data", Path(tmp)
        started = time.perf_counter()
        events = generate(data_dir, args.days, random.Random(2026))
        objects = sum(1 for _ in (data_dir / "events").rglob("*.jsonl"))
        print(f"generated {events} events in {objects} objects over {args.days} days "
              f"({time.perf_counter() - started:.1f} s)")
        export_all(data_dir, out, "before")

        storage = LocalStorage(data_dir)
        started = time.perf_counter()
        report = compact(storage, date.today(), 2)
        print(f"  {'compaction':<40} {time.perf_counter() - started:6.2f} s {'':9}   {report}")
        started = time.perf_counter()
        report = compact(storage, date.today(), 2)
        print(f"  {'compaction again (nothing to do)':<40} {time.perf_counter() - started:6.2f} s {'':9}   {report}")
        objects = sum(1 for _ in (data_dir / "events").rglob("*.jsonl"))
        print(f"after compaction: {objects} objects")
        export_all(data_dir, out, "after")


if __name__ == "__main__":
    main()
