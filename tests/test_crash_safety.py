"""kill -9 at every write of a run, then a normal run: nothing is lost, copies are identical."""

from __future__ import annotations

import json
import signal

import pytest
from archive_truth import assert_archive_complete

# Snapshot 1 stores a few new events; at snapshot 48 event 636277 has just been edited
# (name, summary, type and url changed), so that crash hits a run storing an updated version.
SCENARIOS = [1, 48]


def assert_complete(collector, bodies: list[bytes]) -> None:
    """Every version served so far is archived, the latest last, and the state knows each id."""
    assert_archive_complete(collector.data_dir, bodies)
    state = {int(event_id): entry for event_id, entry in collector.state()["seen"].items()}
    assert {event["id"] for event in json.loads(bodies[-1])} <= set(state)


@pytest.mark.slow
@pytest.mark.parametrize("index", SCENARIOS)
@pytest.mark.parametrize("point", ["before-put", "mid-put", "after-put"])
def test_kill_at_each_write_then_rerun_loses_nothing(fake_api, collector, snapshot_bodies, index, point):
    for earlier in range(index):
        fake_api.serve(earlier)
        assert collector.run().returncode == 0
    fake_api.serve(index)
    restore = collector.checkpoint()
    killed_at = []
    nth = 1
    while True:
        restore()
        crashed = collector.run(script="tests/crash_run.py", env={"CRASH_POINT": point, "CRASH_AT": str(nth)})
        if crashed.returncode != -signal.SIGKILL:
            assert crashed.returncode == 0, crashed.log + crashed.stderr
            break
        killed_at.append(nth)
        recovered = collector.run()
        assert recovered.returncode == 0, recovered.log + recovered.stderr
        assert_complete(collector, snapshot_bodies[: index + 1])
        nth += 1
    assert len(killed_at) >= 2, "the run must have been killed at an event write and at the state write"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["last_seen", "pages"])
@pytest.mark.parametrize("point", ["before-put", "mid-put", "after-put"])
def test_kill_at_a_base_write_loses_nothing(fake_api, collector, snapshot_bodies, kind, point):
    """A first run writes the state's and the page queue's bases before the heads that name them."""
    pages = {"PAGES_PER_RUN": "2"}
    fake_api.serve(0)
    crashed = collector.run(script="tests/crash_run.py",
                            env={**pages, "CRASH_POINT": point, "CRASH_AT": "1", "CRASH_MATCH": f"bases/{kind}-"})
    assert crashed.returncode == -signal.SIGKILL, crashed.log + crashed.stderr
    fake_api.serve(1)
    recovered = collector.run(env=pages)
    assert recovered.returncode == 0, recovered.log + recovered.stderr
    assert_complete(collector, snapshot_bodies[:2])
    from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue
    from polisen_collector.storage.local import LocalStorage

    storage = LocalStorage(collector.data_dir)
    queue, base = decode_queue(storage.get(QUEUE_OBJECT).data, storage)
    assert base.name is not None and collector.state()["base"] is not None
    assert {event["id"] for body in snapshot_bodies[:2] for event in json.loads(body)} <= set(queue)
    assert len(list(storage.list("metadata/bases/"))) <= 4, "at most an unused base of each kind beside the used"
