"""The last run as a node_exporter textfile (`polisen_collector.prom`), for Prometheus, and the
last audit tick as another (`polisen_collector_audit.prom`) beside it.

Run counters and the last success time carry over from the previous file, and so do the
audit's totals of withdrawals and returns from its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from polisen_collector import __version__
from polisen_collector.clock import utc_now
from polisen_collector.files import SMALL_FILE_BYTES, atomic_write, read_regular
from polisen_collector.metrics.run_metrics import RunMetrics

log = logging.getLogger("polisen.metrics")

TEXTFILE_NAME = "polisen_collector.prom"

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
    "pages_stored": ("polisen_collector_last_run_pages_stored", "Event page versions stored by the last run."),
    "pages_failed": ("polisen_collector_last_run_pages_failed", "Event page requests of the last run that failed."),
    "pages_backlog": ("polisen_collector_pages_backlog", "Event pages due but left for the next runs."),
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


AUDIT_TEXTFILE_NAME = "polisen_collector_audit.prom"
_AUDIT_GAUGES = {
    "audit_requests": ("polisen_collector_audit_last_tick_requests", "API requests of the last audit tick."),
    "audit_days": ("polisen_collector_audit_last_tick_days", "Days the last audit tick re-read."),
    "audit_new": ("polisen_collector_audit_last_tick_new_events", "Events the last audit tick found missing and stored."),
    "audit_updated": ("polisen_collector_audit_last_tick_updated_events",
                      "Edited versions the last audit tick found missing and stored."),
    "audit_withdrawn": ("polisen_collector_audit_last_tick_withdrawn_events",
                        "Events the last audit tick confirmed as withdrawn by polisen.se."),
    "audit_republished": ("polisen_collector_audit_last_tick_republished_events",
                          "Withdrawn events the last audit tick found published again."),
}
_AUDIT_TOTALS = {
    "audit_withdrawn": ("polisen_collector_audit_withdrawn_events",
                        "Events the audit confirmed as withdrawn, since this file was created."),
    "audit_republished": ("polisen_collector_audit_republished_events",
                          "Withdrawn events the audit found published again, since this file was created."),
}


def write_audit_textfile(directory: Path, metrics: RunMetrics) -> Path:
    """Write polisen_collector_audit.prom for node_exporter: the last tick's figures, and the totals of
    withdrawals and returns it confirmed (carried over from the previous file), atomically."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    path = Path(directory) / AUDIT_TEXTFILE_NAME
    totals = _previous_samples(path)
    finished = (metrics.finished_at or utc_now()).timestamp()
    families: list[Any] = [
        GaugeMetricFamily("polisen_collector_audit_last_tick_timestamp_seconds",
                          "When the last audit tick finished (Unix time).", value=finished),
        GaugeMetricFamily("polisen_collector_audit_last_tick_success", "1 if the last audit tick succeeded, else 0.",
                          value=float(metrics.outcome == "success")),
    ]
    for key, (name, help_text) in _AUDIT_GAUGES.items():
        if key in metrics.counts:
            families.append(GaugeMetricFamily(name, help_text, value=metrics.counts[key]))
    for key, (name, help_text) in _AUDIT_TOTALS.items():
        families.append(CounterMetricFamily(name, help_text,
                                            value=totals.get(f"{name}_total", 0.0) + metrics.counts.get(key, 0)))

    class _Families:
        def collect(self) -> list[Any]:
            return families

    registry = CollectorRegistry()
    registry.register(_Families())
    atomic_write(path, generate_latest(registry), durable=False)
    return path


def _previous_samples(path: Path) -> dict[str, float]:
    """The unlabelled samples of a previous textfile by name; nothing if it is missing or unreadable."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = read_regular(path, SMALL_FILE_BYTES).decode("utf-8")
        return {sample.name: sample.value for family in text_string_to_metric_families(text)
                for sample in family.samples if not sample.labels}
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as error:
        log.warning("ignoring unreadable %s (its totals restart): %s", path, error)
        return {}


def _previous_textfile(path: Path) -> tuple[dict[str, float], float | None]:
    """Run counters and last success time of the previous textfile; nothing if unreadable."""
    from prometheus_client.parser import text_string_to_metric_families

    runs: dict[str, float] = {}
    last_success = None
    try:
        text = read_regular(path, SMALL_FILE_BYTES).decode("utf-8")
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
