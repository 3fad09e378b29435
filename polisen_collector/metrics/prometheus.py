"""The last run of each job as a node_exporter textfile, for Prometheus.

Each job has its file in PROMETHEUS_TEXTFILE_DIR, so jobs that run at the same time (the
audit tick beside a collection) never overwrite each other's figures: the collection's
`polisen_collector.prom`, the audit tick's `polisen_collector_audit.prom` and compaction's
`polisen_collector_compaction.prom`. Run counters, the last success time and the job's
totals (the withdrawals and returns the audit confirmed) carry over from the job's previous
file. Names follow Prometheus' conventions (base units, `_total` only on counters, no sum of
labels that counts twice), as `promtool check metrics` checks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polisen_collector import __version__
from polisen_collector.clock import utc_now
from polisen_collector.files import SMALL_FILE_BYTES, atomic_write, read_regular
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.readback import is_finite_number

log = logging.getLogger("polisen.metrics")


@dataclass(frozen=True)
class Job:
    """A job's textfile: its name, the prefix of its metrics, and the figures it exposes."""

    file_name: str
    prefix: str
    what: str
    counts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """The run's count key (or a key of the writer's `figures`) -> metric name after the prefix, help."""
    totals: dict[str, tuple[str, str]] = field(default_factory=dict)
    """The run's count key -> a counter (name after the prefix, without _total) that adds it up across runs."""
    steps: bool = False
    """Whether each timed step is a gauge of its own (the collection's)."""
    run: str = "run"
    """What the job's metrics call one run of it: last_run_..., runs_total (the audit's: tick)."""


COLLECTION = Job("polisen_collector.prom", "polisen_collector", "run", {
    "api_events": ("last_run_api_events", "Events in the API answer of the last run."),
    "new_events": ("last_run_new_events", "New events stored by the last run."),
    "updated_events": ("last_run_updated_events", "Edited events stored again by the last run."),
    "invalid_events": ("last_run_invalid_events", "Invalid events skipped by the last run."),
    "retries": ("last_run_retries", "API retries of the last run."),
    "http_status": ("last_run_http_status", "HTTP status of the last run's API answer."),
    "bytes_wire": ("last_run_wire_bytes", "Bytes of the API answer on the wire (compressed)."),
    "bytes_decoded": ("last_run_decoded_bytes", "Bytes of the API answer decoded."),
    "objects_written": ("last_run_objects_written", "Archive objects written by the last run."),
    "state_ids": ("state_ids", "Event ids remembered in the state after the last run."),
    "pages_stored": ("last_run_pages_stored", "Event page versions stored by the last run."),
    "pages_failed": ("last_run_pages_failed", "Event page requests of the last run that failed."),
    "pages_backlog": ("pages_backlog", "Event pages due but left for the next runs."),
}, steps=True)
AUDIT = Job("polisen_collector_audit.prom", "polisen_collector_audit", "audit tick", {
    "audit_requests": ("last_tick_requests", "API requests of the last audit tick."),
    "audit_days": ("last_tick_audited_dates", "Days the last audit tick re-read."),
    "audit_new": ("last_tick_new_events", "Events the last audit tick found missing and stored."),
    "audit_updated": ("last_tick_updated_events", "Edited versions the last audit tick found missing and stored."),
    "audit_withdrawn": ("last_tick_withdrawn_events", "Events the last audit tick confirmed as withdrawn by polisen.se."),
    "audit_republished": ("last_tick_republished_events", "Withdrawn events the last audit tick found published again."),
    "audit_gap_days": ("unhealed_gap_dates", "Days of a detected gap still to backfill, as the last tick saw."),
    "sweep_due_by": ("sweep_due_timestamp_seconds",
                     "When the audit's current sweep of past days is due to be complete (Unix time)."),
}, totals={
    "audit_withdrawn": ("withdrawn_events", "Events the audit confirmed as withdrawn, since this file was created."),
    "audit_republished": ("republished_events",
                          "Withdrawn events the audit found published again, since this file was created."),
}, run="tick")
COMPACTION = Job("polisen_collector_compaction.prom", "polisen_collector_compaction", "compaction", {
    "compacted_days": ("last_run_compacted_dates", "Days the last compaction merged into one object each."),
    "skipped_days": ("last_run_skipped_dates", "Days the last compaction left for the next one."),
    "objects_removed": ("last_run_objects_removed", "Objects (per-run or compacted) the last compaction merged and removed."),
    "versions_kept": ("last_run_versions_kept", "Event versions in the days the last compaction merged."),
    "copies_dropped": ("last_run_copies_dropped", "Identical copies the last compaction dropped."),
})


def write_prometheus_textfile(directory: Path, metrics: RunMetrics, job: Job = COLLECTION,
                              figures: Mapping[str, float] | None = None) -> Path:
    """Write the job's textfile for node_exporter's textfile collector, atomically.

    Its gauges come from the run's counts and `figures` (what the job knows beside them).

    The run counters and the last success time carry over from the previous file, so a
    failed run does not hide when the job last succeeded.
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    path = Path(directory) / job.file_name
    runs, last_success, totals = _previous_textfile(path, job)
    runs[metrics.outcome] = runs.get(metrics.outcome, 0.0) + 1
    finished = (metrics.finished_at or utc_now()).timestamp()
    if metrics.outcome == "success":
        last_success = finished

    families: list[Any] = []
    what, run = job.what, job.run

    def gauge(name: str, help_text: str, value: float) -> None:
        families.append(GaugeMetricFamily(f"{job.prefix}_{name}", help_text, value=value))

    if job is COLLECTION:
        info = GaugeMetricFamily("polisen_collector_info", "Version of the collector.", labels=["version"])
        info.add_metric([__version__], 1)
        families.append(info)
    gauge(f"last_{run}_timestamp_seconds", f"When the last {what} finished (Unix time).", finished)
    gauge(f"last_{run}_success", f"1 if the last {what} succeeded, else 0.", float(metrics.outcome == "success"))
    if last_success is not None:
        gauge("last_success_timestamp_seconds", f"When a {what} last succeeded (Unix time).", last_success)
    gauge(f"last_{run}_duration_seconds", f"How long the last {what} took, all its steps together.",
          metrics.timings.get("total", 0.0))
    gauge(f"last_{run}_errors", f"Errors recorded by the last {what}.", len(metrics.errors))
    if job.steps:
        # Each step apart, the total left out (it is last_run_duration_seconds): a sum() over the
        # steps then counts nothing twice. api_fetch and metadata_fetch overlap, so the steps
        # may add up to more than the duration.
        steps = GaugeMetricFamily(f"{job.prefix}_last_{run}_step_seconds",
                                  f"Duration of each step of the last {what} (the fetch and the state read overlap).",
                                  labels=["step"])
        for step, seconds in sorted(metrics.timings.items()):
            if step != "total":
                steps.add_metric([step], seconds)
        families.append(steps)
    values = {**metrics.counts, **(figures or {})}
    for key, (name, help_text) in job.counts.items():
        if key in values:
            gauge(name, help_text, values[key])
    for key, (name, help_text) in job.totals.items():
        families.append(CounterMetricFamily(f"{job.prefix}_{name}", help_text,
                                            value=totals.get(name, 0.0) + metrics.counts.get(key, 0)))
    counter = CounterMetricFamily(f"{job.prefix}_{run}s", f"Each {what} by outcome, since this file was created.",
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


def _previous_textfile(path: Path, job: Job) -> tuple[dict[str, float], float | None, dict[str, float]]:
    """Run counters, last success time and totals (by name after the prefix) of the job's previous
    textfile; nothing if unreadable."""
    from prometheus_client.parser import text_string_to_metric_families

    runs: dict[str, float] = {}
    last_success = None
    totals: dict[str, float] = {}
    counted = {f"{job.prefix}_{name}_total": name for name, _ in job.totals.values()}
    try:
        text = read_regular(path, SMALL_FILE_BYTES).decode("utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == f"{job.prefix}_{job.run}s_total" and "outcome" in sample.labels:
                    runs[sample.labels["outcome"]] = sample.value
                elif sample.name == f"{job.prefix}_last_success_timestamp_seconds":
                    last_success = sample.value
                elif sample.name in counted and not sample.labels:
                    totals[counted[sample.name]] = sample.value
        carried = [*runs.values(), *totals.values(), *([] if last_success is None else [last_success])]
        if not all(is_finite_number(value) and value >= 0 for value in carried):  # NaN + 1 stays NaN for ever
            raise ValueError("a counter or time that is not a finite number of at least 0")
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, ValueError) as error:
        log.warning("ignoring unreadable %s (its counters restart): %s", path, error)
        return {}, None, {}
    return runs, last_success, totals
