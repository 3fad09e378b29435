"""Gaps: detected after downtime longer than the feed's window, and healed by ?DateTime= backfill."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from archive_truth import (
    archived_lines,
    archived_versions,
    canonical,
    versions_in_snapshots,
)
from conftest import format_1_state
from fake_polisen import FakePolisenServer

from polisen_collector.api.client import ApiOptions, PolisenClient
from polisen_collector.archive.events import validate_event
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.backfill import backfill_on_demand
from polisen_collector.recovery.gaps import Gap, coverage_start, detect_gap
from polisen_collector.storage.local import LocalStorage

LAST_BEFORE_OUTAGE = 30   # 2026-05-23 19:34 UTC
RESUME = 113              # 2026-06-05 20:54 UTC: 13 days later, the feed then covers 05-30..06-05


def event(event_id: int, when: str) -> dict:
    return {"id": event_id, "datetime": f"{when} 12:00:00 +02:00", "name": "n", "summary": "s",
            "url": "/u", "type": "Brand", "location": {"name": "Skåne län", "gps": "55.9,13.5"}}


def test_a_gap_is_judged_by_time_not_by_a_known_id():
    window = [validate_event(event(1000 - n, "2026-06-05" if n < 250 else "2026-05-30")) for n in range(490)]
    stragglers = [validate_event(event(10 - n, "2026-05-20")) for n in range(10)]
    answer = window + stragglers
    assert coverage_start(answer) == datetime(2026, 5, 30, 12, tzinfo=timezone(timedelta(hours=2)))
    known = {straggler.id: ("h", "2026-05-20", "2026-05-23") for straggler in stragglers}
    last_answer = datetime(2026, 5, 23, 17, 34, tzinfo=UTC)
    gap = detect_gap(answer, last_answer, known)
    assert gap == Gap("2026-05-23", "2026-05-30",
                      "the feed's answer reaches back to 2026-05-30T12:00+02:00, after the last answer we "
                      "stored (2026-05-23T17:34+00:00): events published in between may have scrolled out")
    assert gap.days()[0] == "2026-05-23" and len(gap.days()) == 8
    assert detect_gap(answer, datetime(2026, 5, 30, 22, tzinfo=UTC), {}) is None, "12 h inside the window"
    assert detect_gap(answer, datetime(2026, 5, 30, 21, tzinfo=UTC), {}) is not None, "within the margin"
    assert detect_gap(answer, None, {}) is None, "a fresh archive has nothing to miss"
    assert detect_gap(answer, None, {1: ("h", "2026-05-20", "2026-05-31")}) is None, "a state without the key"
    assert detect_gap(answer, None, {1: ("h", "2026-05-20", "2026-05-29")}).first_day == "2026-05-28"
    assert detect_gap([], last_answer, known) is None


@pytest.mark.slow
def test_downtime_longer_than_the_window_is_reported_and_backfilled(fake_api, collector, snapshot_bodies,
                                                                    snapshot_times):
    fake_api.follow_snapshots(snapshot_times)
    for index in range(LAST_BEFORE_OUTAGE + 1):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    fake_api.serve(RESUME)
    before = len(fake_api.requests)
    result = collector.run()
    assert result.returncode == 0, result.log[-2000:]

    assert "possible gap in the archive from 2026-05-23 to 2026-05-30" in result.log
    gap = {"from": "2026-05-23", "to": "2026-05-30",
           "reason": "the feed's answer reaches back to 2026-05-30T12:02+02:00, after the last answer we stored "
                     "(2026-05-23T19:34+00:00): events published in between may have scrolled out"}
    assert collector.health()["gap"] == gap
    metrics = json.loads(collector.metrics_files()[-1].read_text())
    assert metrics["gap"] == gap and metrics["counts"]["gap_days"] == 8
    assert metrics["counts"]["backfill_days"] == 8 and metrics["counts"]["backfill_pending_days"] == 0
    asked = [r.query.get("DateTime", [None])[0] for r in fake_api.requests[before:]]
    assert asked == [None] + [f"2026-05-{day}" for day in range(23, 31)]

    truth = versions_in_snapshots(snapshot_bodies)
    archived = archived_versions(collector.data_dir)
    assert set(archived) == set(truth), "every id, also of the skipped days, is archived"
    for event_id, versions in archived.items():
        assert versions[-1] == truth[event_id][-1], event_id
    lines = Counter((event["id"], canonical(event)) for _, event in archived_lines(collector.data_dir))
    assert [key for key, count in lines.items() if count > 1] == [], "no event stored twice"

    again = collector.run()
    assert again.returncode == 0 and collector.health()["gap"] is None
    assert "new 0, updated 0" in again.log


@pytest.mark.slow
def test_interrupted_backfill_resumes_next_run(fake_api, collector, snapshot_times):
    fake_api.follow_snapshots(snapshot_times)
    for index in range(LAST_BEFORE_OUTAGE + 1):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    fake_api.serve(RESUME)
    fake_api.add_faults("none", "none", "none", "status:503", "status:503", "status:503", "status:503")
    first = collector.run()
    assert first.returncode == 0, first.log[-2000:]
    backfill = collector.health()["backfill"]
    assert backfill["days_done"] == 2 and backfill["pending_days"] == 6
    assert backfill["next_pending_day"] == "2026-05-25" and "HTTP 503" in backfill["stopped"]
    progress = json.loads((collector.data_dir / "metadata" / "backfill.json").read_text())
    assert progress["pending"] == {f"2026-05-{day}": 1 if day == 25 else 0 for day in range(25, 31)}

    second = collector.run()
    assert second.returncode == 0
    assert collector.health()["backfill"]["days_done"] == 6
    assert json.loads((collector.data_dir / "metadata" / "backfill.json").read_text())["pending"] == {}
    assert [line for line in second.log.splitlines() if "backfill 2026-05-25 (1/6)" in line]


def test_backfill_on_demand_prints_progress_and_never_duplicates(fake_api, collector, snapshot_bodies):
    fake_api.serve(RESUME)
    result = collector.run("--backfill", "2026-05-25..2026-05-27")
    assert result.returncode == 0, result.log[-2000:]
    progress = [line.split("polisen.backfill: ")[1] for line in result.log.splitlines() if "backfill 2026-05-2" in line]
    assert [line.split(":")[0] for line in progress] == [
        "backfill 2026-05-25 (1/3)", "backfill 2026-05-26 (2/3)", "backfill 2026-05-27 (3/3)"]
    assert "backfill summary: 3 of 3 days done" in result.log
    assert not (collector.log_dir / "health.json").exists(), "an on-demand backfill is not a cron run"

    newest = {}
    for body in snapshot_bodies[:RESUME + 1]:
        for raw in json.loads(body) if body.strip() else []:
            if "2026-05-25" <= raw["datetime"][:10] <= "2026-05-27":
                newest[raw["id"]] = canonical(raw)
    archived = {(event["id"], canonical(event)) for _, event in archived_lines(collector.data_dir)}
    assert archived == set(newest.items())

    state = collector.state()
    state["seen"] = {}
    (collector.data_dir / "metadata" / "last_seen.json").write_bytes(format_1_state(state))
    again = collector.run("--backfill", "2026-05-25..2026-05-27")
    assert again.returncode == 0
    assert f"{len(newest)} events, 0 new, 0 updated" in again.log
    assert len(archived_lines(collector.data_dir)) == len(newest)


def test_bad_backfill_range_is_one_line_and_exit_2(collector):
    result = collector.run("--backfill", "2026-05-20..2026-05-01")
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: --backfill: '2026-05-20..2026-05-01' ends before it starts"


def test_a_day_at_the_api_cap_is_reported_as_possibly_truncated(tmp_path):
    body = json.dumps([event(700_000 - n, "2026-05-10") for n in range(600)]).encode()
    with FakePolisenServer([body]) as api:
        client = PolisenClient(ApiOptions(url=api.url))
        metrics = RunMetrics("truncated")
        report = backfill_on_demand(LocalStorage(tmp_path), client, metrics, ["2026-05-10"], retention_days=30)
        client.close()
    assert report.truncated == ["2026-05-10"] and report.new == 500
    assert metrics.counts["backfill_truncated_days"] == 1
    assert metrics.info["backfill"]["possibly_truncated"] == ["2026-05-10"]
