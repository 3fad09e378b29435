"""health_check.py --serve as a real process over a real socket: /healthz, /metrics, nothing else."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from polisen_collector.health.file import audit_health_path, write_audit_health, write_health
from polisen_collector.health.server import HealthCollector


@pytest.fixture
def server(tmp_path):
    health = tmp_path / "health.json"
    process = subprocess.Popen(
        [sys.executable, str(REPO / "health_check.py"), "--serve", "--port", "0", "--health-file", str(health)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/healthz", first)
        assert match, (first, process.stderr.read() if process.poll() is not None else "")
        yield health, f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def get(url: str, method: str = "GET") -> tuple[int, str, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


def metrics(base: str) -> dict[str, float]:
    status, content_type, body = get(base + "/metrics")
    assert (status, content_type) == (200, CONTENT_TYPE_LATEST)
    return {sample.name: sample.value for family in text_string_to_metric_families(body) for sample in family.samples}


def record(path: Path, minutes_ago: float, success: bool, error: BaseException | None = None) -> dict:
    return write_health(path, finished_at=datetime.now(UTC) - timedelta(minutes=minutes_ago), success=success,
                        events_processed=12 if success else 0, execution_time=2.5, error=error, run_id="r1")


def test_healthz_and_metrics_follow_the_file_on_each_request(server):
    health, base = server
    status, _, body = get(base + "/healthz")
    assert status == 503
    assert json.loads(body)["message"] == f"health file {health} does not exist (has the collector ever run?)"
    assert metrics(base) == {"polisen_health_file_valid": 0.0, "polisen_health_healthy": 0.0}

    good = record(health, 5, success=True)
    status, content_type, body = get(base + "/healthz")
    verdict = json.loads(body)
    assert (status, content_type) == (200, "application/json; charset=utf-8")
    assert (verdict["state"], verdict["healthy"], verdict["health"]) == ("OK", True, good)
    last_run = datetime.fromisoformat(good["last_run"]).timestamp()
    seen = metrics(base)
    assert 299 < seen.pop("polisen_health_age_seconds") < 330
    assert seen == {
        "polisen_health_file_valid": 1.0, "polisen_health_healthy": 1.0,
        "polisen_health_last_run_timestamp_seconds": last_run, "polisen_health_last_run_success": 1.0,
        "polisen_health_last_run_events_processed": 12.0, "polisen_health_last_run_duration_seconds": 2.5,
        "polisen_health_consecutive_failures": 0.0, "polisen_health_last_success_timestamp_seconds": last_run,
        "polisen_health_collector_info": 1.0,
    }

    record(health, 1, success=False, error=ConnectionError("refused"))
    status, _, body = get(base + "/healthz")
    assert status == 503 and json.loads(body)["state"] == "WARNING", "one failure warns; three in a row are critical"
    seen = metrics(base)
    assert (seen["polisen_health_last_run_success"], seen["polisen_health_consecutive_failures"],
            seen["polisen_health_last_success_timestamp_seconds"], seen["polisen_health_healthy"]) == (
        0.0, 1.0, last_run, 0.0)

    health.write_text('{"last_run": "soon", "status": "success", "events_processed": 1, "execution_time": 1}')
    status, _, body = get(base + "/healthz")
    assert (status, json.loads(body)["state"]) == (503, "UNKNOWN")
    assert metrics(base) == {"polisen_health_file_valid": 0.0, "polisen_health_healthy": 0.0}

    record(health, 60, success=True)
    assert get(base + "/healthz")[0] == 503


def test_serves_nothing_else(server):
    _, base = server
    assert get(base + "/")[0] == 404
    assert get(base + "/healthz/../etc/passwd")[0] == 404
    assert get(base + "/metrics", method="POST")[0] == 501
    assert get(base + "/healthz?verbose=1")[0] == 503


def test_a_taken_port_is_one_line_and_exit_1(tmp_path, server):
    _, base = server
    port = base.rsplit(":", 1)[1]
    result = subprocess.run([sys.executable, str(REPO / "health_check.py"), "--serve", "--port", port],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stdout) == (1, f"cannot listen on 127.0.0.1:{port}: Address already in use\n")


def test_alert_rules_use_only_metrics_the_endpoint_serves(tmp_path):
    record(tmp_path / "health.json", 5, success=True)
    served = {family.name for family in text_string_to_metric_families(
        generate_latest(HealthCollector(tmp_path / "health.json", timedelta(minutes=45))).decode())}
    used = set(re.findall(r"polisen_health_\w+", (REPO / "deploy" / "prometheus-alerts.yml").read_text()))
    assert len(used) == 5 and used <= served, used - served


def test_the_audit_tick_s_figures_are_gauges_beside_the_collection_s(tmp_path):
    """health-audit.json (the --audit cron job's file) shown as its own gauges; left out while absent,
    and each figure left out when the file lacks it."""
    health = tmp_path / "health.json"
    record(health, 5, success=True)
    collector = HealthCollector(health, timedelta(minutes=45))

    def gauges() -> dict[str, float]:
        return {sample.name: sample.value for family in text_string_to_metric_families(
            generate_latest(collector).decode()) for sample in family.samples if "_audit_" in sample.name}

    assert gauges() == {}
    tick = datetime.now(UTC) - timedelta(minutes=20)
    due = datetime(2026, 12, 24, tzinfo=UTC)
    write_audit_health(audit_health_path(health), finished_at=tick, error=None, run_id="a1", audit={
        "audit_new": 2, "audit_updated": 1, "sweep_due_by": due.isoformat(timespec="seconds"),
        "unhealed_gap": {"days": 3, "from": "2026-11-01", "to": "2026-11-03"}, "audit_withdrawn": 4,
        "audit_republished": 0})
    assert gauges() == {
        "polisen_health_audit_last_tick_timestamp_seconds": tick.timestamp(),
        "polisen_health_audit_last_tick_success": 1.0,
        "polisen_health_audit_last_tick_new_events": 2.0,
        "polisen_health_audit_last_tick_updated_events": 1.0,
        "polisen_health_audit_sweep_due_timestamp_seconds": due.timestamp(),
        "polisen_health_audit_unhealed_gap_dates": 3.0,
        "polisen_health_audit_last_tick_withdrawn_events": 4.0,
        "polisen_health_audit_last_tick_republished_events": 0.0,
    }
    write_audit_health(audit_health_path(health), finished_at=tick, error=TimeoutError("API too slow"), run_id="a2",
                       audit={"unhealed_gap": None, "audit_new": "many"})
    assert gauges() == {
        "polisen_health_audit_last_tick_timestamp_seconds": tick.timestamp(),
        "polisen_health_audit_last_tick_success": 0.0,
        "polisen_health_audit_unhealed_gap_dates": 0.0,
    }
