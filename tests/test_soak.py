"""Soak: the whole replay with random faults on the API and on the store, kill -9 included.

Seeded, so a failure replays exactly. A failed or killed run is followed by the next run
on the same snapshot, as the next cron tick would find the feed nearly unchanged, so every
recorded answer is eventually collected and the archive must equal the truth.
"""

from __future__ import annotations

import json
import random
import signal

import pytest
from archive_truth import assert_archive_complete
from crash_run import store_faults

SEED = 6_2026
API_FAULTS = ["status:500", "status:502", "status:503", "status:504", "429:0", "empty", "truncated",
              "reset", "cut", "object", "short:60", "slow:0.2"]
STORE_FAULTS = ["error-put", "before-put", "after-put"]
KILLS = {"before-put", "after-put"}
ATTEMPTS = 6


@pytest.mark.slow
def test_soak_with_api_and_storage_faults_loses_nothing(fake_api, collector, snapshot_bodies):
    rng = random.Random(SEED)
    outcomes = {"ok": 0, "failed": 0, "killed": 0}
    gaps = []
    for index, body in enumerate(snapshot_bodies):
        fake_api.serve(index)
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            fake_api.state.faults.clear()
            if not last and rng.random() < 0.5:
                fake_api.add_faults(*rng.choices(API_FAULTS, k=rng.randint(1, 4)))
            point, at = "before-put", 0
            if not last and rng.random() < 0.5:
                at = rng.randint(1, 4)
                point = rng.choice(STORE_FAULTS)
            # A short read timeout turns the `slow` fault into a timeout; the last attempt, free of
            # faults, keeps the default so a busy machine cannot make it fail.
            env = {"API_READ_TIMEOUT": "30" if last else "0.1"}
            if at and point in KILLS:  # kill -9 needs a process of its own
                result = collector.run(script="tests/crash_run.py",
                                       env={**env, "CRASH_POINT": point, "CRASH_AT": str(at)})
            else:
                with store_faults(point, at):
                    result = collector.run(env=env)
            if result.returncode == -signal.SIGKILL:
                outcomes["killed"] += 1
            elif result.returncode == 0:
                outcomes["ok"] += 1
                gaps.append(json.loads((collector.log_dir / "health.json").read_text())["gap"])
                break
            else:
                assert result.returncode == 1, result.log[-2000:] + result.stderr[-2000:]
                assert "Traceback" not in result.stdout + result.stderr + result.log, result.log[-2000:]
                assert len(result.stderr.splitlines()) == 1, result.stderr
                outcomes["failed"] += 1
            if not body.strip():
                break

    assert outcomes["killed"] >= 20 and outcomes["failed"] >= 15, outcomes
    assert outcomes["ok"] == len(snapshot_bodies) - 1, outcomes
    assert gaps == [None] * outcomes["ok"], "no gap may be reported when none happened"

    assert_archive_complete(collector.data_dir, snapshot_bodies)
