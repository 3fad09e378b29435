"""Outages of every length, on the recorded snapshots: after the feed resumes and the audit has
swept, 0 ids are missing. The fake API serves each snapshot as of its recorded time, and its
?DateTime= answers what had been published by then. Runs are in-process (run_once, as cron
calls it; run_audit at the snapshot's time)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from archive_truth import archived_lines, archived_versions, canonical
from fake_polisen import FakePolisenServer, with_late_publications

from polisen_collector.api.client import ApiOptions, PolisenClient
from polisen_collector.archive.events import validate_event
from polisen_collector.config import load_settings
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.audit import Budget, run_audit
from polisen_collector.recovery.gaps import PUBLICATION_MARGIN
from polisen_collector.run.collection import run_once
from polisen_collector.storage.local import LocalStorage

SWEEP = Budget(horizon_days=90, per_tick=400, per_day=400)
"""One tick that sweeps every day back to before the oldest recorded event (2026-03-17)."""


class Replay:
    """A workspace fed snapshot by snapshot, with outages, then audited."""

    def __init__(self, workdir, api: FakePolisenServer, times: list[float]) -> None:
        self.api, self.times = api, times
        (workdir / "logs").mkdir()
        self.settings = load_settings(environ={
            "POLISEN_API_URL": api.url, "DATA_DIR": str(workdir / "data"), "LOG_DIR": str(workdir / "logs"),
            "METRICS_DIR": str(workdir / "metrics"), "API_RATE_LIMIT": "off", "API_BACKOFF_FACTOR": "0.01",
            "PAGES_PER_RUN": "0",  # pages have their own replay (test_pages.py); here only the ids count
        }, env_file=None)
        self.storage = LocalStorage(self.settings.data_dir)
        self.served: list[int] = []
        api.follow_snapshots(times)

    def feed(self, index: int) -> None:
        self.api.serve(index)
        self.served.append(index)
        assert run_once(self.settings) == 0

    def audit(self, index: int, budget: Budget = SWEEP):
        """An audit tick a day after snapshot `index` (today's events are audited as yesterday's)."""
        self.api.serve(index)
        client = PolisenClient(ApiOptions(url=self.api.url))
        try:
            return run_audit(self.storage, client, RunMetrics("audit"), budget=budget, retention_days=30,
                             now=datetime.fromtimestamp(self.times[index], UTC) + timedelta(days=1))
        finally:
            client.close()

    def missing(self, bodies: list[bytes]) -> dict[int, str]:
        """Ids any snapshot since the first run served that the archive lacks, with their dates."""
        archived = archived_versions(self.settings.data_dir)
        truth = {}
        for answer in answers_of(bodies)[self.served[0]:max(self.served) + 1]:
            for raw in answer:
                truth[raw["id"]] = raw["datetime"][:10]
        return {event_id: day for event_id, day in truth.items() if event_id not in archived}

    def assert_latest_versions(self, bodies: list[bytes]) -> None:
        newest = {}
        for answer in answers_of(bodies)[:max(self.served) + 1]:
            for raw in answer:
                newest[raw["id"]] = canonical(raw)
        for event_id, versions in archived_versions(self.settings.data_dir).items():
            if event_id in newest:
                assert versions[-1] == newest[event_id], event_id


PARSED: dict[int, list[list[dict]]] = {}


def answers_of(bodies: list[bytes]) -> list[list[dict]]:
    """The bodies parsed, once per list of bodies."""
    if id(bodies) not in PARSED:
        PARSED[id(bodies)] = [json.loads(body) if body.strip() else [] for body in bodies]
    return PARSED[id(bodies)]


def withdrawn(bodies: list[bytes], event_id: int) -> bool:
    """Did the feed drop the event while it still showed older ones (ids grow with publication)?"""
    answers = answers_of(bodies)
    last = max(index for index, answer in enumerate(answers) if any(raw["id"] == event_id for raw in answer))
    after = next((answer for answer in answers[last + 1:] if answer), [])
    dense = after[:int(len(after) * 0.9)]
    return bool(dense) and min(raw["id"] for raw in dense) < event_id


def resume_index(times: list[float], last: int, hours: float) -> int:
    return next(i for i in range(last + 1, len(times)) if times[i] - times[last] >= hours * 3600)


def outage(tmp_path, bodies: list[bytes], times: list[float], last: int, hours: float) -> tuple[Replay, dict]:
    """Feed runs up to `last`, down for `hours`, three runs after; then the audit. Returns what
    was missing before the audit."""
    resume = resume_index(times, last, hours)
    with FakePolisenServer(bodies) as api:
        replay = Replay(tmp_path, api, times)
        for index in [*range(max(0, last - 2), last + 1), *range(resume, min(resume + 3, len(bodies)))]:
            replay.feed(index)
        before = replay.missing(bodies)
        report = replay.audit(max(replay.served))
    assert not report.failed and replay.missing(bodies) == {}, "0 ids missing after the audit"
    replay.assert_latest_versions(bodies)
    lines = [canonical(event) for _, event in archived_lines(replay.settings.data_dir)]
    assert len(lines) == len(set(lines)), "no version stored twice by feed, backfill and audit together"
    down_from = (datetime.fromtimestamp(times[last], UTC) - PUBLICATION_MARGIN).date().isoformat()
    scrolled_out = {event_id: day for event_id, day in before.items()
                    if day >= down_from and not withdrawn(bodies, event_id)}
    assert scrolled_out == {}, "what scrolled out unseen is backfilled without the audit (gap by time)"
    return replay, before


# (last run before the outage, outage length in hours): starts early, mid and late in the 16 days.
FAST = [(20, 8 * 24)]
SLOW = [(5, 1), (40, 30), (60, 6), (90, 24), (10, 3 * 24), (45, 5 * 24), (30, 6.5 * 24), (35, 7 * 24), (3, 9 * 24),
        (12, 10 * 24), (2, 12 * 24), (8, 12 * 24)]


@pytest.mark.parametrize(("last", "hours"), [*FAST, *[pytest.param(*case, marks=pytest.mark.slow) for case in SLOW]])
def test_after_an_outage_no_id_is_missing(tmp_path, snapshot_bodies, snapshot_times, last, hours):
    outage(tmp_path, snapshot_bodies, snapshot_times, last, hours)


@pytest.mark.slow
def test_events_dated_months_back_published_only_during_an_outage_are_recovered_by_the_audit(
        tmp_path, snapshot_bodies, snapshot_times):
    late = [{"id": 900_000 + n, "datetime": f"2026-0{2 + n}-1{n} 9:1{n}:00 +01:00", "name": "sen publicering",
             "summary": "s", "url": f"/aktuellt/handelser/late-{n}", "type": "Brand",
             "location": {"name": "Skåne län", "gps": "55.9,13.5"}} for n in range(3)]
    last, hours = 20, 8 * 24
    resume = resume_index(snapshot_times, last, hours)
    bodies = with_late_publications(snapshot_bodies, late, range(last + 3, resume - 2))
    with FakePolisenServer(bodies) as api:
        replay = Replay(tmp_path, api, snapshot_times)
        for index in [last - 1, last, resume, resume + 1]:
            replay.feed(index)
        before = replay.missing(bodies)
        assert {event["id"] for event in late} <= set(before), "the gap's backfill cannot find them"
        report = replay.audit(resume + 1, Budget(horizon_days=120, per_tick=400, per_day=400))
    assert replay.missing(bodies) == {}
    found = report.found()
    assert {validate_event(event).day for event in late} <= set(found), "the warning names their days"
    assert report.new >= len(late)
