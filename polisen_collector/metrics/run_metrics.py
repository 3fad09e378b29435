"""Per-run metrics: how long each step took, what was counted, what went wrong.

One JSON file per run in METRICS_DIR, named `run-<run id>.json` so names sort by time;
old files are pruned by name alone, their age counted along the runs after them so that a
clock jump deletes no history (prune_metrics). Optionally the last run is also exposed as a
node_exporter textfile (`polisen_collector.prom`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from polisen_collector import __version__
from polisen_collector.clock import utc_now
from polisen_collector.files import atomic_write

log = logging.getLogger("polisen.metrics")

STEPS = ("api_fetch", "metadata_fetch", "deduplication", "save_events", "metadata_update", "total")
METRICS_FILE = re.compile(r"\.?(?:run|audit)-(\d{8}T\d{6})")
"""`run-<id>.json` of collection runs, `audit-<id>.json` of audit ticks (kept apart from the runs' statistics)."""
STAMP = "%Y%m%dT%H%M%S"
MAX_PAUSE = timedelta(days=7)
"""The most a pause between two metrics files adds to the age of the files before it."""
CLOCK_SLACK = timedelta(minutes=10)
"""A file dated later than now plus this was written while the clock was wrong (dated in the future)."""


class RunMetrics:
    """Timings, counts and errors of one run; safe to use from the run's worker threads."""

    def __init__(self, run_id: str, clock: Callable[[], float] = time.perf_counter,
                 now: Callable[[], datetime] = utc_now) -> None:
        self.run_id = run_id
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._started = clock()
        self.started_at = now()
        self.finished_at: datetime | None = None
        self.outcome = "running"
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.errors: list[dict[str, str]] = []
        self.info: dict[str, Any] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step; if it raises, record the error and let it propagate."""
        start = self._clock()
        try:
            yield
        except BaseException as error:
            self.record_error(error, step=name)
            raise
        finally:
            with self._lock:
                self.timings[name] = round(self.timings.get(name, 0.0) + self._clock() - start, 6)

    def record_error(self, error: BaseException, step: str | None = None) -> None:
        entry = {"type": type(error).__name__, "message": str(error), "time": self._now().isoformat()}
        if step:
            entry["step"] = step
        with self._lock:
            if not any(e["type"] == entry["type"] and e["message"] == entry["message"] for e in self.errors):
                self.errors.append(entry)

    def count(self, **counts: int) -> None:
        with self._lock:
            self.counts.update(counts)

    def add(self, name: str, amount: int) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + amount

    def finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.finished_at = self._now()
        self.timings["total"] = round(self._clock() - self._started, 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": __version__,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "outcome": self.outcome,
            "timings": dict(self.timings),
            "counts": dict(self.counts),
            "errors": list(self.errors),
            **self.info,
        }

    def save(self, directory: Path, kind: str = "run") -> Path:
        path = Path(directory) / f"{kind}-{self.run_id}.json"
        atomic_write(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode("utf-8"), durable=False)
        return path

    def summary(self) -> str:
        return summary_line(self.to_dict())


def summary_line(document: dict[str, Any]) -> str:
    """The one-line summary of a run, from its metrics document (live or read from a file)."""
    c = document.get("counts") or {}
    total = (document.get("timings") or {}).get("total", 0.0)
    return (
        f"run {document.get('run_id')} {document.get('outcome')}: fetched {c.get('api_events', 0)}, "
        f"new {c.get('new_events', 0)}, updated {c.get('updated_events', 0)}, "
        f"unchanged {c.get('unchanged_events', 0)}, invalid {c.get('invalid_events', 0)}, "
        f"{c.get('bytes_wire', 0)} bytes on the wire ({c.get('bytes_decoded', 0)} decoded), "
        f"{c.get('retries', 0)} retries, {total:.2f} s"
    )


def prune_metrics(directory: Path, retention_days: int, now: datetime | None = None) -> int:
    """Delete metrics files (and leftover temp files) older than retention_days; returns how many.

    Run ids start with their UTC time, so the age is read from the name: no file is opened. A
    file's age is the time the files after it span up to the newest, each pause between two of
    them counted at most MAX_PAUSE: the clock jumping a year ahead (or a collector stopped for
    months) makes one long pause, which ages no history by more than a week. Files dated in the
    future (written while the clock was wrong) are kept, and neither count nor are counted.
    """
    horizon = ((now or utc_now()) + CLOCK_SLACK).strftime(STAMP)
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    dated = sorted((match.group(1), entry.path) for entry in entries
                   if (match := METRICS_FILE.match(entry.name)) and match.group(1) <= horizon)
    limit = timedelta(days=retention_days)
    age = timedelta(0)
    later: datetime | None = None
    deleted = 0
    for stamp, path in reversed(dated):
        try:
            moment = datetime.strptime(stamp, STAMP)
        except ValueError:  # digits that are no time: not a name this module wrote
            continue
        age += min(later - moment, MAX_PAUSE) if later is not None else timedelta(0)
        later = moment
        if age > limit:
            try:
                os.unlink(path)
                deleted += 1
            except FileNotFoundError:
                pass
    if deleted:
        log.info("deleted %d metrics files older than %d days from %s", deleted, retention_days, directory)
    return deleted
