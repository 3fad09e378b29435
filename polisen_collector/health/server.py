"""health_check.py --serve: GET /healthz (200 or 503 with the verdict) and GET /metrics (Prometheus).

Both read the health file on each request, so the answer is never older than the file, and
a missing or corrupt file is an answer (503, polisen_health_file_valid 0), never a crash.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from polisen_collector.health.ranges import PluginRange
from polisen_collector.health.verdict import UNKNOWN, AuditFigures, Verdict, assess, audit_figures

log = logging.getLogger("polisen.health")


class HealthCollector:
    """A prometheus_client collector that judges the health file at scrape time."""

    def __init__(self, path: Path, max_age: timedelta) -> None:
        self.path = path
        self.max_age = max_age

    def verdict(self) -> Verdict:
        limit = PluginRange.up_to(self.max_age.total_seconds() / 60)
        return assess(self.path, warning=limit, critical=limit)

    def collect(self) -> Iterator[Metric]:
        verdict = self.verdict()
        valid = verdict.state != UNKNOWN
        yield _gauge("polisen_health_file_valid", "1 when the health file was read and every field is usable.", valid)
        yield _gauge("polisen_health_healthy", "1 when health_check.py would exit 0.", verdict.healthy)
        if not valid or verdict.age_seconds is None or verdict.last_run is None:  # a valid file has both
            return
        health = verdict.health or {}
        yield _gauge("polisen_health_age_seconds", "Seconds since the last run ended.", verdict.age_seconds)
        yield _gauge("polisen_health_last_run_timestamp_seconds", "When the last run ended (Unix time).",
                     verdict.last_run.timestamp())
        yield _gauge("polisen_health_last_run_success", "1 when the last run succeeded.",
                     health["status"] == "success")
        yield _gauge("polisen_health_last_run_events_processed", "New and updated events stored by the last run.",
                     health["events_processed"])
        yield _gauge("polisen_health_last_run_duration_seconds", "Execution time of the last run.",
                     health["execution_time"])
        if health.get("consecutive_failures") is not None:
            yield _gauge("polisen_health_consecutive_failures", "Failed runs since the last success.",
                         health["consecutive_failures"])
        if verdict.last_success is not None:
            yield _gauge("polisen_health_last_success_timestamp_seconds",
                         "When the last successful run ended (Unix time).", verdict.last_success.timestamp())
        info = GaugeMetricFamily("polisen_health_collector_info", "Version and host of the last run.",
                                 labels=["version", "host"])
        info.add_metric([str(health.get("version", "")), str(health.get("host", ""))], 1)
        yield info
        if verdict.audit is not None:
            yield from _audit_gauges(audit_figures(verdict.audit))


AUDIT_GAUGES = (
    ("last_tick", "polisen_health_audit_last_tick_timestamp_seconds", "When the last audit tick ended (Unix time)."),
    ("success", "polisen_health_audit_last_tick_success", "1 when the last audit tick succeeded."),
    ("new", "polisen_health_audit_last_tick_new_events", "Events the last audit tick found missing and stored."),
    ("updated", "polisen_health_audit_last_tick_updated_events",
     "Edited versions the last audit tick found missing and stored."),
    ("sweep_due_by", "polisen_health_audit_sweep_due_timestamp_seconds",
     "When the audit's current sweep of past days is due to be complete (Unix time)."),
    ("unhealed_gap_days", "polisen_health_audit_unhealed_gap_dates",
     "Days (dates) of a gap the audit saw still to backfill: a count, not a duration."),
    ("withdrawn", "polisen_health_audit_last_tick_withdrawn_events",
     "Events the last audit tick confirmed as withdrawn by polisen.se."),
    ("republished", "polisen_health_audit_last_tick_republished_events",
     "Withdrawn events the last audit tick found published again."),
)


def _audit_gauges(figures: AuditFigures) -> Iterator[Metric]:
    """The audit tick's figures (health-audit.json), each left out when its file lacks it."""
    for field, name, documentation in AUDIT_GAUGES:
        value = getattr(figures, field)
        if value is not None:
            yield _gauge(name, documentation, value.timestamp() if isinstance(value, datetime) else value)


def _gauge(name: str, documentation: str, value: float | bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def make_server(path: Path, host: str, port: int, max_age: timedelta) -> ThreadingHTTPServer:
    """Bind (port 0 picks a free port) without serving yet, so the caller knows the address."""
    collector = HealthCollector(path, max_age)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = self.path.split("?", 1)[0]
            if route == "/healthz":
                verdict = collector.verdict()
                body = json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
                self._send(200 if verdict.healthy else 503, body, "application/json; charset=utf-8")
            elif route == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: try /healthz or /metrics\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    return Server((host, port), Handler)


def serve(path: Path, *, host: str, port: int, max_age: timedelta) -> int:
    """Serve until interrupted; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = make_server(path, host, port, max_age)
    except OSError as error:
        print(f"cannot listen on {host}:{port}: {error.strerror or error}", flush=True)
        return 1
    bound_host, bound_port = server.socket.getsockname()[:2]
    print(f"serving the health of {path} on http://{bound_host}:{bound_port}/healthz and /metrics", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
