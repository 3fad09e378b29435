"""Per-run metrics: how long each step took, what was counted, what went wrong.

One JSON file per run in METRICS_DIR, named `run-<run id>.json` so names sort by time;
old files are pruned by name alone. Optionally the last run is also exposed as a
node_exporter textfile (`polisen_collector.prom`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storage import atomic_write
from version import __version__

log = logging.getLogger("polisen.metrics")

STEPS = ("api_fetch", "metadata_fetch", "deduplication", "save_events", "metadata_update", "total")
METRICS_FILE = re.compile(r"\.?run-(\d{8}T\d{6})")
TEXTFILE_NAME = "polisen_collector.prom"


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


def prune_metrics(directory: Path, retention_days: int, now: datetime | None = None) -> int:
    """Delete metrics files (and leftover temp files) older than retention_days; returns how many.

    Run ids start with their UTC time, so the age is read from the name: no file is opened.
    """
    cutoff = ((now or utc_now()) - timedelta(days=retention_days)).strftime("%Y%m%dT%H%M%S")
    deleted = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        match = METRICS_FILE.match(entry.name)
        if match and match.group(1) < cutoff:
            try:
                os.unlink(entry.path)
                deleted += 1
            except FileNotFoundError:
                pass
    if deleted:
        log.info("deleted %d metrics files older than %d days from %s", deleted, retention_days, directory)
    return deleted


_COUNT_GAUGES = {
    "api_events": ("polisen_collector_last_run_api_events", "Events in the API answer of the last run."),
    "new_events": ("polisen_collector_last_run_new_events", "New events stored by the last run."),
    "updated_events": ("polisen_collector_last_run_updated_events", "Edited events stored again by the last run."),
    "invalid_events": ("polisen_collector_last_run_invalid_events", "Invalid events skipped by the last run."),
    "retries": ("polisen_collector_last_run_retries", "API retries of the last run."),
    "http_status": ("polisen_collector_last_run_http_status", "HTTP status of the last run's API answer."),
    "bytes_wire": ("polisen_collector_last_run_wire_bytes", "Bytes of the API answer on the wire (compressed)."),
    "bytes_decoded": ("polisen_collector_last_run_decoded_bytes", "Bytes of the API answer decoded."),
    "objects_written": ("polisen_collector_last_run_objects_written", "Archive objects written by the last run."),
    "state_ids": ("polisen_collector_state_ids", "Event ids remembered in the state after the last run."),
}


def write_prometheus_textfile(directory: Path, metrics: RunMetrics) -> Path:
    """Write polisen_collector.prom for node_exporter's textfile collector, atomically.

    The run counters and the last success time carry over from the previous file, so a
    failed run does not hide when the collector last succeeded.
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    path = Path(directory) / TEXTFILE_NAME
    runs, last_success = _previous_textfile(path)
    runs[metrics.outcome] = runs.get(metrics.outcome, 0.0) + 1
    finished = (metrics.finished_at or utc_now()).timestamp()
    if metrics.outcome == "success":
        last_success = finished

    families: list[Any] = []

    def gauge(name: str, help_text: str, value: float) -> None:
        families.append(GaugeMetricFamily(name, help_text, value=value))

    info = GaugeMetricFamily("polisen_collector_info", "Version of the collector.", labels=["version"])
    info.add_metric([__version__], 1)
    families.append(info)
    gauge("polisen_collector_last_run_timestamp_seconds", "When the last run finished (Unix time).", finished)
    gauge("polisen_collector_last_run_success", "1 if the last run succeeded, else 0.", float(metrics.outcome == "success"))
    if last_success is not None:
        gauge("polisen_collector_last_success_timestamp_seconds", "When a run last succeeded (Unix time).", last_success)
    gauge("polisen_collector_last_run_errors", "Errors recorded by the last run.", len(metrics.errors))
    steps = GaugeMetricFamily("polisen_collector_last_run_step_seconds", "Duration of each step of the last run.",
                              labels=["step"])
    for step, seconds in sorted(metrics.timings.items()):
        steps.add_metric([step], seconds)
    families.append(steps)
    for key, (name, help_text) in _COUNT_GAUGES.items():
        if key in metrics.counts:
            gauge(name, help_text, metrics.counts[key])
    counter = CounterMetricFamily("polisen_collector_runs", "Runs by outcome, since this file was created.",
                                  labels=["outcome"])
    for outcome, value in sorted(runs.items()):
        counter.add_metric([outcome], value)
    families.append(counter)

    class _Families:
        def collect(self) -> list[Any]:
            return families

    registry = CollectorRegistry()
    registry.register(_Families())
    atomic_write(path, generate_latest(registry), durable=False)
    return path


def _previous_textfile(path: Path) -> tuple[dict[str, float], float | None]:
    """Run counters and last success time of the previous textfile; nothing if unreadable."""
    from prometheus_client.parser import text_string_to_metric_families

    runs: dict[str, float] = {}
    last_success = None
    try:
        text = path.read_text(encoding="utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "polisen_collector_runs_total" and "outcome" in sample.labels:
                    runs[sample.labels["outcome"]] = sample.value
                elif sample.name == "polisen_collector_last_success_timestamp_seconds":
                    last_success = sample.value
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, ValueError) as error:
        log.warning("ignoring unreadable %s (its run counters restart): %s", path, error)
        return {}, None
    return runs, last_success
