"""End to end: the collector over all 114 recorded API answers."""

from __future__ import annotations

import random

import pytest
from archive_truth import archived_versions, assert_archive_complete, versions_in_snapshots


def replay(fake_api, collector, count: int, before_run=None) -> list:
    results = []
    for index in range(count):
        fake_api.serve(index)
        if before_run:
            before_run(index)
        results.append(collector.run())
    return results


@pytest.mark.slow
def test_full_replay_archives_every_version_exactly_once(replayed_archive, snapshot_bodies):
    collector, results = replayed_archive.collector, replayed_archive.results

    empty_index = next(i for i, body in enumerate(snapshot_bodies) if not body.strip())
    failed = [i for i, r in enumerate(results) if r.returncode != 0]
    assert failed == [empty_index], [results[i].log[-500:] for i in failed]
    assert "empty body" in results[empty_index].log

    truth = versions_in_snapshots(snapshot_bodies)
    assert archived_versions(collector.data_dir) == truth
    edited = {event_id for event_id, versions in truth.items() if len(versions) > 1}
    assert len(edited) == 13


@pytest.mark.slow
def test_replay_with_faults_in_a_third_of_runs_loses_nothing(fake_api, collector, snapshot_bodies):
    rng = random.Random(20260520)
    faults = ["status:500", "status:502", "status:503", "status:504", "429:0", "empty",
              "truncated", "reset", "cut", "object", "short:60"]

    def inject(index: int) -> None:
        if rng.random() < 1 / 3:
            fake_api.add_faults(*rng.choices(faults, k=rng.randint(1, 5)))

    results = replay(fake_api, collector, len(snapshot_bodies), before_run=inject)
    assert any(r.returncode != 0 for r in results), "some runs must exhaust their retries"
    fake_api.state.faults.clear()
    fake_api.serve(len(snapshot_bodies) - 1)
    assert collector.run().returncode == 0

    assert_archive_complete(collector.data_dir, snapshot_bodies, copies_allowed=False)
