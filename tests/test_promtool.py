"""`promtool check metrics` (Prometheus' own linter) on all we expose: each job's node_exporter
textfile after real runs, and health_check.py --serve's /metrics.

promtool comes with Debian's package `prometheus`; .ci/run installs it. Without it these
tests fail: a lint that did not run has not passed.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from polisen_collector.health.file import audit_health_path, write_audit_health, write_health
from polisen_collector.interrupt import Interrupted


def promtool_clean(text: bytes) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: apt-get install prometheus (Debian; .ci/run installs it)"
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, b""), (result.stdout + result.stderr).decode()


def samples(path: Path) -> dict[str, float]:
    return {sample.name: sample.value for family in text_string_to_metric_families(path.read_text())
            for sample in family.samples if not sample.labels}


@pytest.fixture
def textfiles(tmp_path: Path) -> Path:
    return tmp_path / "textfiles"


def test_every_job_writes_its_own_lint_clean_textfile(collector, fake_api, textfiles):
    env = {"PROMETHEUS_TEXTFILE_DIR": str(textfiles), "PAGES_PER_RUN": "3"}
    assert collector.run(env=env).returncode == 0
    fake_api.add_faults("status:503", "status:503", "status:503", "status:503")
    assert collector.run(env=env).returncode == 1
    assert collector.run("--audit", env=env).returncode == 0
    assert collector.run("--compact", env=env).returncode == 0
    assert sorted(path.name for path in textfiles.iterdir()) == [
        "polisen_collector.prom", "polisen_collector_audit.prom", "polisen_collector_compaction.prom"]
    for path in textfiles.iterdir():
        promtool_clean(path.read_bytes())

    collection = samples(textfiles / "polisen_collector.prom")
    assert collection["polisen_collector_last_run_success"] == 0
    assert collection["polisen_collector_last_run_duration_seconds"] > 0
    assert 'step="total"' not in (textfiles / "polisen_collector.prom").read_text()
    audit = samples(textfiles / "polisen_collector_audit.prom")
    assert audit["polisen_collector_audit_last_tick_success"] == 1
    assert audit["polisen_collector_audit_last_tick_audited_dates"] == audit["polisen_collector_audit_last_tick_requests"] > 0
    assert audit["polisen_collector_audit_unhealed_gap_dates"] == 0
    assert audit["polisen_collector_audit_sweep_due_timestamp_seconds"] > datetime.now(UTC).timestamp()
    compaction = samples(textfiles / "polisen_collector_compaction.prom")
    assert compaction["polisen_collector_compaction_last_run_success"] == 1
    assert compaction["polisen_collector_compaction_last_run_compacted_dates"] > 0
    assert compaction["polisen_collector_compaction_last_run_objects_removed"] > 0
    assert 'polisen_collector_compaction_runs_total{outcome="success"} 1.0' in (
        textfiles / "polisen_collector_compaction.prom").read_text()


def test_the_health_endpoint_s_metrics_are_lint_clean(tmp_path):
    from polisen_collector.health.server import make_server

    health = tmp_path / "health.json"
    now = datetime.now(UTC)
    write_health(health, finished_at=now - timedelta(minutes=40), success=True, events_processed=3,
                 execution_time=1.5, run_id="r1")
    write_health(health, finished_at=now - timedelta(minutes=5), success=False, interrupted=True, events_processed=0,
                 execution_time=0.5, error=Interrupted(15), run_id="r2")
    write_audit_health(audit_health_path(health), finished_at=now, error=None, run_id="a1", audit={
        "audit_new": 2, "audit_updated": 0, "sweep_due_by": (now + timedelta(days=9)).isoformat(),
        "unhealed_gap": {"days": 3, "from": "2026-11-01", "to": "2026-11-03"}})
    server = make_server(health, "127.0.0.1", 0, timedelta(minutes=45))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=10) as answer:
            body = answer.read()
    finally:
        server.shutdown()
        server.server_close()
    assert b"polisen_health_audit_unhealed_gap_dates 3.0" in body
    assert b"polisen_health_last_run_success 0.0" in body
    promtool_clean(body)
