"""kill -9 at the writes of a run that backfills an outage, then normal runs: nothing is lost."""

from __future__ import annotations

import json
import signal

import pytest
from archive_truth import archived_versions, versions_in_snapshots

LAST_BEFORE_OUTAGE = 30   # as in test_gaps.py: 13 days down, the next answer no longer reaches back
RESUME = 113
EVERY = 4                 # kill at writes 1, 5, 9, ... and the last: events, state and queue all get hit


def kind(name: str) -> str:
    if name.startswith("events/"):
        return "event"
    if name.startswith("metadata/bases/last_seen-"):
        return "base"
    return {"metadata/last_seen.json": "state", "metadata/backfill.json": "queue"}[name]


def expected_versions(bodies: list[bytes]) -> dict[int, set[str]]:
    """What the archive must hold: every version served before the outage, and each id's
    version as the feed or ?DateTime= shows it at RESUME (the newest one; versions that
    came and went during the outage were never visible to us)."""
    expected = {event_id: set(contents) for event_id, contents in versions_in_snapshots(bodies[:LAST_BEFORE_OUTAGE + 1]).items()}
    for event_id, contents in versions_in_snapshots(bodies[:RESUME + 1]).items():
        expected.setdefault(event_id, set()).add(contents[-1])
    return expected


def newest(bodies: list[bytes]) -> dict[int, str]:
    return {event_id: contents[-1] for event_id, contents in versions_in_snapshots(bodies).items()}


@pytest.fixture
def outage(fake_api, collector, snapshot_times):
    """The workspace after snapshots 0..30, the feed at 113, a copy of data/ and logs/ to restore."""
    fake_api.follow_snapshots(snapshot_times)
    for index in range(LAST_BEFORE_OUTAGE + 1):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    fake_api.serve(RESUME)
    return collector.checkpoint()


def crash_run(collector, point: str, at: int):
    log = collector.workdir / "puts.log"
    log.unlink(missing_ok=True)
    result = collector.run(script="tests/crash_run.py",
                           env={"CRASH_POINT": point, "CRASH_AT": str(at), "CRASH_LOG": str(log)})
    writes = dict(line.split(" ", 1) for line in log.read_text().splitlines())
    return result, writes


def assert_healed(collector, bodies: list[bytes]) -> None:
    archived = archived_versions(collector.data_dir)
    want, latest = expected_versions(bodies), newest(bodies[:RESUME + 1])
    assert set(archived) == set(want), f"missing ids: {sorted(set(want) - set(archived))[:10]}"
    for event_id, contents in archived.items():
        assert set(contents) == want[event_id], event_id
        assert contents[-1] == latest[event_id], event_id
    assert json.loads((collector.data_dir / "metadata" / "backfill.json").read_text())["pending"] == {}


@pytest.mark.slow
def test_the_uninterrupted_backfill_run_and_its_writes(outage, collector, snapshot_bodies):
    """Pins what the kills below hit: the gap queued first, the window's 7 days, the state, then per day
    event, state, queue; twice the state's heads have carried enough to start a new base first."""
    outage()
    result, writes = crash_run(collector, "before-put", 0)
    assert result.returncode == 0, result.log[-2000:]
    assert "possible gap in the archive from 2026-05-23 to 2026-05-30" in result.log
    kinds = [kind(writes[str(n)]) for n in range(1, len(writes) + 1)]
    once_a_day, rebasing = ["event", "state", "queue"], ["event", "base", "state", "queue"]
    assert kinds == ["queue"] + ["event"] * 7 + ["state"] + rebasing + once_a_day * 5 + rebasing + once_a_day
    assert_healed(collector, snapshot_bodies)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-put", "after-put"])
def test_kill_at_the_writes_of_a_backfilling_run_then_normal_runs_heal_the_gap(
        outage, collector, snapshot_bodies, point):
    total, base = 35, 11  # see test_the_uninterrupted_backfill_run_and_its_writes
    hit = {}
    for at in sorted({*range(1, total + 1, EVERY), base, total}):
        outage()
        crashed, writes = crash_run(collector, point, at)
        assert crashed.returncode == -signal.SIGKILL, crashed.log[-2000:]
        hit[at] = writes[str(at)]
        for _ in range(3):
            recovered = collector.run()
            if recovered.returncode == 0:
                break
        assert recovered.returncode == 0, recovered.log[-2000:]
        try:
            assert_healed(collector, snapshot_bodies)
        except AssertionError as error:
            raise AssertionError(f"killed {point} write {at} ({writes[str(at)]}): {error}") from error
    assert {kind(name) for name in hit.values()} == {"event", "base", "state", "queue"}, hit

