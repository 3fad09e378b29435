"""Per-run metrics: how long each step took, what was counted, what went wrong.

One JSON file per run in METRICS_DIR, named `run-<run id>.json` so names sort by time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage import atomic_write
from version import __version__

log = logging.getLogger("polisen.metrics")

STEPS = ("api_fetch", "metadata_fetch", "deduplication", "save_events", "metadata_update", "total")


def utc_now() -> datetime:
    return datetime.now(UTC)


class RunMetrics:
    """Timings, counts and errors of one run; safe to use from the run's worker threads."""

    def __init__(self, run_id: str, clock=time.perf_counter, now=utc_now) -> None:
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

    def save(self, directory: Path) -> Path:
        path = Path(directory) / f"run-{self.run_id}.json"
        atomic_write(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode("utf-8"), durable=False)
        return path

    def summary(self) -> str:
        c = self.counts
        return (
            f"run {self.run_id} {self.outcome}: fetched {c.get('api_events', 0)}, "
            f"new {c.get('new_events', 0)}, updated {c.get('updated_events', 0)}, "
            f"unchanged {c.get('unchanged_events', 0)}, invalid {c.get('invalid_events', 0)}, "
            f"{c.get('bytes_wire', 0)} bytes on the wire ({c.get('bytes_decoded', 0)} decoded), "
            f"{c.get('retries', 0)} retries, {self.timings.get('total', 0.0):.2f} s"
        )
