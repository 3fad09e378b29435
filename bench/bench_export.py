#!/usr/bin/env python3
"""Time export_events.py and its peak memory on generated archives of 1 and 4 years, before and after compaction.

A year: 365 days x ~71 events (~26,000), spread over 48 per-run objects a day, 1.2% of the
events edited once in a later run. Written into a temporary folder, removed at the end.
Each export runs 3 times; the figures are the best wall time and the largest peak RSS of the
export process alone: a small launcher (python3 -S -I, about 8 MB) spawns it and reads its
ru_maxrss from wait4. Linux starts a child's ru_maxrss from the memory of the process that
spawned it, so measured from this benchmark (~30 MB after generating) the figure would be at
least that; the launcher's own peak, printed as the floor, is what no figure can go below.
Usage: python3 bench/bench_export.py [--years 1 4] [--repeat 3] [--compare OTHER_CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
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

COMPACT_AFTER_DAYS = 2
RUNS_PER_DAY = 48
EVENTS_PER_DAY = 71
EDIT_SHARE = 0.012
TYPES = ["Brand", "Stöld", "Trafikolycka", "Misshandel", "Rattfylleri", "Inbrott", "Sammanfattning natt"]
PLACES = [("Stockholms län", "59.329324,18.068581"), ("Skåne län", "55.990257,13.595769"),
          ("Kävlinge", "55.793637,13.113398"), ("Uppsala län", "59.858564,17.638927")]
OUTPUTS = [("JSONL", "events.jsonl", []), ("CSV", "events.csv", []), ("Parquet", "events.parquet", []),
           ("SQLite", "events.db", []), ("JSONL --all-versions", "all.jsonl", ["--all-versions"])]

LAUNCHER = [sys.executable, "-I", "-S", str(Path(__file__).resolve().parent / "launch.py")]
"""Runs a command from a bare interpreter and writes its figures (bench/launch.py)."""


def run_id(day: date, run: int) -> str:
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=30 * run, seconds=7)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{run:03d}Z-bench{run % 10}"


def generate(root: Path, days: int, rng: random.Random) -> int:
    """Write the per-run objects directly (no fsync per file: this is set-up, not the thing timed)."""
    event_id = 600_000
    count = 0
    start = date.today() - timedelta(days=days + COMPACT_AFTER_DAYS)  # every day old enough to compact
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


def measured(command: list[str]) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS KB of the command, launcher floor KB, last stderr line) of one run."""
    with tempfile.TemporaryDirectory() as temp, tempfile.TemporaryFile() as errors:
        figures_path = Path(temp) / "launch.json"
        subprocess.run([*LAUNCHER, str(figures_path), *command], stdout=subprocess.DEVNULL, stderr=errors, check=True)
        figures = json.loads(figures_path.read_text())
        errors.seek(0)
        lines = errors.read().decode().strip().splitlines()
    if figures["returncode"] != 0:
        sys.exit(f"{' '.join(command)} failed ({figures['returncode']}): {lines[-3:]}")
    return figures["wall"], figures["rss_kb"], figures["floor_kb"], lines[-1] if lines else ""


def export_all(data_dir: Path, out: Path, checkouts: dict[str, Path], repeat: int) -> None:
    for label, name, extra in OUTPUTS:
        for checkout_label, checkout in checkouts.items():
            if checkout_label == "other" and name.endswith(".db"):
                continue  # an older checkout may not write SQLite (it would write JSONL under that name)
            command = [sys.executable, str(checkout / "export_events.py"), "--env-file", os.devnull,
                       "--data-dir", str(data_dir), *extra, "-o", str(out / name)]
            runs = [measured(command) for _ in range(repeat)]
            wall, peak, floor = min(r[0] for r in runs), max(r[1] for r in runs), max(r[2] for r in runs)
            row = f"  {label:<22} {checkout_label:<8} {wall:6.2f} s {peak / 1024:6.1f} MB"
            print(f"{row}   (launcher floor {floor / 1024:.1f} MB)   {runs[-1][3]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also run this other checkout's export_events.py on the same archives")
    args = parser.parse_args()
    checkouts = {"this": REPO, **({"other": args.compare.resolve()} if args.compare else {})}
    for years in args.years:
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            data_dir, out = Path(tmp) / "data", Path(tmp)
            started = time.perf_counter()
            events = generate(data_dir, 365 * years, random.Random(2026))
            objects = sum(1 for _ in (data_dir / "events").rglob("*.jsonl"))
            print(f"{years} year(s): {events} events in {objects} objects "
                  f"(generated in {time.perf_counter() - started:.1f} s); before compaction:", flush=True)
            export_all(data_dir, out, checkouts, args.repeat)

            storage = LocalStorage(data_dir)
            started = time.perf_counter()
            report = compact(storage, date.today(), COMPACT_AFTER_DAYS)
            print(f"  compaction {time.perf_counter() - started:.2f} s: {report}")
            started = time.perf_counter()
            compact(storage, date.today(), COMPACT_AFTER_DAYS)
            print(f"  compaction again (nothing to do) {time.perf_counter() - started:.2f} s")
            objects = sum(1 for _ in (data_dir / "events").rglob("*.jsonl"))
            print(f"{years} year(s) after compaction ({objects} objects):", flush=True)
            export_all(data_dir, out, checkouts, args.repeat)


if __name__ == "__main__":
    main()
