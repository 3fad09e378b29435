"""The rolling audit: its schedule, its request budget (on a fake clock), its findings, its health."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import clear_settings
from fake_polisen import FakePolisenServer

from polisen_collector.api.client import ApiOptions, PolisenClient
from polisen_collector.api.rate_limit import MIN_INTERVAL, RateLimiter
from polisen_collector.archive.state import STATE_OBJECT, encode_state, read_state
from polisen_collector.cli import collect_events, health_check
from polisen_collector.clock import utc_today
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.audit import (
    AuditProgress,
    Budget,
    plan_tick,
    read_progress,
    run_audit,
)
from polisen_collector.recovery.backfill import queue_days
from polisen_collector.storage.base import StoredObject
from polisen_collector.storage.local import LocalStorage

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 6, 5, 20, 0, tzinfo=UTC)
DEFAULT = Budget(horizon_days=200, per_tick=4, per_day=96)


def event(event_id: int, day: str) -> dict:
    return {"id": event_id, "datetime": f"{day} 12:00:00 +02:00", "name": "n", "summary": "s",
            "url": "/u", "type": "Brand", "location": {"name": "Skåne län", "gps": "55.9,13.5"}}


def test_a_tick_plans_gap_days_first_then_recent_days_then_the_sweep():
    fresh = AuditProgress()
    assert plan_tick(fresh, [], NOW, DEFAULT) == [
        ("2026-06-04", "recent"), ("2026-06-03", "recent"), ("2026-06-02", "sweep"), ("2026-06-01", "sweep")]
    assert plan_tick(fresh, ["2026-05-24", "2026-05-23", "2026-06-04"], NOW, DEFAULT) == [
        ("2026-05-23", "gap"), ("2026-05-24", "gap"), ("2026-06-04", "gap"), ("2026-06-03", "recent")]
    audited = AuditProgress(recent={"2026-06-04": "2026-06-05T17:00:00+00:00", "2026-06-03": "2026-06-05T15:59:00+00:00"},
                            cursor="2026-01-10")
    assert plan_tick(audited, [], NOW, DEFAULT) == [
        ("2026-06-03", "recent"), ("2026-01-10", "sweep"), ("2026-01-09", "sweep"), ("2026-01-08", "sweep")]
    at_the_end = AuditProgress(recent=audited.recent | {"2026-06-03": "2026-06-05T17:00:00+00:00"},
                               cursor="2025-11-18")
    assert plan_tick(at_the_end, [], NOW, DEFAULT) == [
        ("2025-11-18", "sweep"), ("2025-11-17", "sweep"), ("2026-06-02", "sweep"), ("2026-06-01", "sweep")]
    spent = AuditProgress(spent=[NOW.timestamp() - 3600.0] * 95)
    assert plan_tick(spent, [], NOW, DEFAULT) == [("2026-06-04", "recent")], "96 a day, however often it ticks"


def test_the_state_records_the_last_answer_and_old_states_still_load():
    stamp = datetime(2026, 6, 5, 20, 54, 34, tzinfo=UTC)
    state = read_state(StoredObject(encode_state({1: ("h", "2026-06-05", "2026-06-05")}, "run", stamp), "e1"), None)
    assert state.last_answer_at == stamp and state.seen == {1: ("h", "2026-06-05", "2026-06-05")}
    old = {"format": 1, "updated_at": "2026-06-05T20:54:34+00:00", "seen": {"1": ["h", "2026-06-05", "2026-06-05"]}}
    assert read_state(StoredObject(json.dumps(old).encode(), "e2"), None).last_answer_at is None


@pytest.mark.parametrize("hours", [26, pytest.param(72, marks=pytest.mark.slow)])
def test_the_audit_budget_per_day_on_a_fake_clock(tmp_path, snapshot_bodies, hours):
    """Hourly ticks (and a burst of extra ticks): at most 96 audit requests in any 24 hours,
    10 s apart in the shared ledger, the recent days audited 6 times a day; over three days
    a full sweep of 200 days."""
    clock = [datetime(2026, 6, 6, 0, 5, tzinfo=UTC).timestamp()]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    storage = LocalStorage(tmp_path / "data")
    limiter = RateLimiter(LocalStorage(tmp_path / "logs"), clock=lambda: clock[0], sleep=sleep)
    sweeps = []
    with FakePolisenServer(snapshot_bodies) as api:
        api.serve(len(snapshot_bodies) - 1)
        api.state.clock = lambda: clock[0]
        client = PolisenClient(ApiOptions(url=api.url), limiter=limiter)
        start = clock[0]
        for hour in range(hours):
            ticks = 4 if hour == 20 else 1  # an operator starting extra ticks changes nothing
            for _ in range(ticks):
                clock[0] = max(clock[0], start + hour * 3600)
                run_audit(storage, client, RunMetrics(f"tick-{hour}"), budget=DEFAULT, retention_days=30,
                          now=datetime.fromtimestamp(clock[0], UTC))
            progress = read_progress(storage.get("metadata/audit.json"))
            if progress.last_full_sweep and progress.last_full_sweep not in sweeps:
                sweeps.append(progress.last_full_sweep)
        client.close()
        sent = [(request.time, request.query["DateTime"][0]) for request in api.requests]
    times = [t for t, _ in sent]
    assert all(later - earlier >= MIN_INTERVAL for earlier, later in zip(times, times[1:], strict=False))
    assert max(sum(1 for t in times if first <= t < first + 86400) for first in times) == 96
    assert len(times) == hours * 4, "the burst's extra ticks took what later ticks then lacked: the day's cap holds"
    ledger = json.loads((tmp_path / "logs" / "api-requests.json").read_text())["requests"]
    assert len(ledger) == 96, "every audit request is in the rate-limit ledger"
    per_day = Counter((datetime.fromtimestamp(t, UTC).date(), day) for t, day in sent)
    for offset in range(hours // 24):
        today = date(2026, 6, 6) + timedelta(days=offset)
        for back in (1, 2):
            assert per_day[today, (today - timedelta(days=back)).isoformat()] == 6
    assert DEFAULT.sweep_days() == pytest.approx(198 / 84)
    if hours >= 72:
        assert sweeps and datetime.fromisoformat(sweeps[0]) - datetime.fromtimestamp(start, UTC) < timedelta(days=3)
        audited = {day for _, day in sent}
        assert {(date(2026, 6, 8) - timedelta(days=n)).isoformat() for n in range(3, 201)} <= audited


def test_the_audit_stores_what_the_feed_path_missed_and_says_so(tmp_path, caplog):
    old = [event(500_001, "2026-02-10"), event(500_002, "2026-02-10"), event(500_003, "2026-03-02")]
    recent = [event(600_001, "2026-06-04")]
    with FakePolisenServer([json.dumps(recent + old).encode()]) as api:
        storage = LocalStorage(tmp_path)
        queue_days(storage, ["2026-02-10"])
        client = PolisenClient(ApiOptions(url=api.url))
        metrics = RunMetrics("tick")
        progress = AuditProgress(cursor="2026-03-02", recent={"2026-06-04": NOW.isoformat(), "2026-06-03": NOW.isoformat()})
        storage.put("metadata/audit.json", json.dumps(progress.as_document(NOW)).encode())
        with caplog.at_level("INFO"):
            report = run_audit(storage, client, metrics, budget=Budget(200, 2, 96), retention_days=30, now=NOW)
        client.close()
    assert [(day.day, day.why, day.new) for day in report.audited] == [("2026-02-10", "gap", 2), ("2026-03-02", "sweep", 1)]
    assert metrics.counts["audit_new"] == 3 and metrics.counts["audit_updated"] == 0
    assert metrics.counts["audit_requests"] == 2 and metrics.counts["audit_gap_days"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["the audit found 3 new and 0 edited events the feed path missed, on "
                        "2026-02-10 (2 new, 0 updated), 2026-03-02 (1 new, 0 updated)"]
    assert json.loads((tmp_path / "metadata" / "backfill.json").read_text())["pending"] == {}
    assert read_progress(storage.get("metadata/audit.json")).cursor == "2026-03-01"
    state = read_state(storage.get(STATE_OBJECT), storage)
    assert set(state.seen) == {500_001, 500_002, 500_003}


def test_audit_tick_from_the_command_line_and_its_health(tmp_path, monkeypatch, fake_api, capsys):
    clear_settings(monkeypatch, API_RATE_LIMIT="off")
    monkeypatch.setenv("AUDIT_REQUESTS_PER_TICK", "3")
    args = ["--env-file", os.devnull, "--api-url", fake_api.url, "--data-dir", str(tmp_path / "data"),
            "--log-dir", str(tmp_path / "logs"), "--metrics-dir", str(tmp_path / "metrics")]
    fake_api.serve(113)
    assert collect_events.main(args) == 0
    assert collect_events.main([*args, "--audit"]) == 0
    audit = json.loads((tmp_path / "logs" / "health-audit.json").read_text())
    assert audit["status"] == "success" and len(audit["days_audited"]) == 3
    assert audit["oldest_day_audited"] == (utc_today() - timedelta(days=3)).isoformat()
    assert audit["last_full_sweep"] is None
    assert audit["unhealed_gap"] is None and audit["requests_per_day"] == 96
    metrics = sorted((tmp_path / "metrics").glob("audit-*.json"))
    assert len(metrics) == 1 and json.loads(metrics[0].read_text())["counts"]["audit_requests"] == 3
    assert len(list((tmp_path / "metrics").glob("run-*.json"))) == 1, "the run's statistics stay the runs'"
    capsys.readouterr()

    check = ["--env-file", os.devnull, "--health-file", str(tmp_path / "logs" / "health.json"),
             "--nagios"]
    assert health_check.main(check) == 0
    audit["sweep_due_by"] = "2026-01-01T00:00:00+00:00"
    (tmp_path / "logs" / "health-audit.json").write_text(json.dumps(audit))
    assert health_check.main(check) == 1
    assert "WARNING: audit sweep overdue: last full sweep never, due by 2026-01-01" in capsys.readouterr().out
    audit["sweep_due_by"] = None
    audit["unhealed_gap"] = {"days": 3, "from": "2026-05-23", "to": "2026-05-25"}
    (tmp_path / "logs" / "health-audit.json").write_text(json.dumps(audit))
    assert health_check.main(check) == 1
    assert "WARNING: unhealed gap: 3 days from 2026-05-23 still to backfill" in capsys.readouterr().out


def test_two_jobs_at_once_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        collect_events.main(["--audit", "--compact"])
    assert exit_.value.code == 2
    assert "--compact and --audit are separate jobs" in capsys.readouterr().err


def test_the_default_install_runs_the_audit_between_the_collections_and_compacts_daily():
    deploy = REPO / "deploy"
    cron = [line.split() for line in (deploy / "crontab.example").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    schedule = {" ".join(line[5:]): " ".join(line[:5]) for line in cron}
    job = "cd /opt/polisen-events-collector && .venv/bin/python collect_events.py"
    site = ("cd /opt/polisen-events-collector && .venv/bin/python export_events.py -o site/events.db --update "
            "2>>logs/site-refresh.log")
    assert schedule == {job: "7,37 * * * *", f"{job} --audit": "22 * * * *", f"{job} --compact": "52 3 * * *",
                        site: "12,42 * * * *"}
    assert "OnCalendar=*:12,42\n" in (deploy / "polisen-site-refresh.timer").read_text()
    assert "OnCalendar=*:22\n" in (deploy / "polisen-audit.timer").read_text()
    assert "OnCalendar=*:07,37" in (deploy / "polisen-collector.timer").read_text()
    assert "OnCalendar=*-*-* 03:52\n" in (deploy / "polisen-compact.timer").read_text()
    hardening = [line for line in (deploy / "polisen-collector.service").read_text().splitlines()
                 if line.startswith(("NoNewPrivileges", "Protect", "ReadWritePaths", "Private", "User=", "Group=", "UMask",
                                     "Restrict", "Capability", "Ambient", "SystemCall", "Memory", "Lock", "Device"))]
    for flag in ("--audit", "--compact"):
        service = (deploy / f"polisen-{flag[2:]}.service").read_text()
        assert f"ExecStart=/opt/polisen-events-collector/.venv/bin/python collect_events.py {flag}\n" in service
        assert "SuccessExitStatus=3 130 143\n" in service
        assert hardening and all(line in service.splitlines() for line in hardening)


def test_a_failing_tick_exits_1_counts_its_requests_and_keeps_the_sweep(tmp_path, monkeypatch, fake_api):
    clear_settings(monkeypatch, API_RATE_LIMIT="off")
    monkeypatch.setenv("API_BACKOFF_FACTOR", "0.01")
    args = ["--env-file", os.devnull, "--api-url", fake_api.url, "--data-dir", str(tmp_path / "data"),
            "--log-dir", str(tmp_path / "logs"), "--metrics-dir", str(tmp_path / "metrics"), "--audit"]
    assert collect_events.main(args) == 0
    sweep = read_progress(LocalStorage(tmp_path / "data").get("metadata/audit.json"))
    fake_api.add_faults(*["status:503"] * 4)
    assert collect_events.main(args) == 1
    audit = json.loads((tmp_path / "logs" / "health-audit.json").read_text())
    assert audit["status"] == "failed" and "HTTP 503" in audit["error"]["message"]
    assert audit["days_audited"] == [] and audit["sweep_position"] == sweep.cursor
    after = read_progress(LocalStorage(tmp_path / "data").get("metadata/audit.json"))
    assert len(after.spent) == len(sweep.spent) + 4, "the failed day's 4 requests count against the day's budget"
    assert after.cursor == sweep.cursor and after.recent == sweep.recent
    assert "audit stopped at" in (tmp_path / "logs" / "polisen-collector.log").read_text()


def test_a_gap_the_last_run_left_pending_is_a_warning_until_the_audit_says_otherwise(tmp_path, capsys):
    health = tmp_path / "health.json"
    now = datetime.now(UTC)
    document = {"last_run": (now - timedelta(minutes=5)).isoformat(), "status": "success", "events_processed": 3,
                "execution_time": 1.0, "backfill": {"pending_days": 2, "next_pending_day": "2026-05-29"}}
    health.write_text(json.dumps(document))
    check = ["--env-file", os.devnull, "--health-file", str(health), "--nagios"]
    assert health_check.main(check) == 1
    assert "WARNING: unhealed gap: 2 days from 2026-05-29 still to backfill" in capsys.readouterr().out
    audit = {"last_tick": now.isoformat(), "status": "success", "unhealed_gap": None,
             "sweep_due_by": (now + timedelta(days=2)).isoformat(), "oldest_day_audited": "2026-01-01"}
    (tmp_path / "health-audit.json").write_text(json.dumps(audit))
    assert health_check.main(check) == 0, "the newer audit tick healed it"
    capsys.readouterr()
    assert health_check.main([*check[:-1], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["audit"]["oldest_day_audited"] == "2026-01-01"
