"""What a run that finds nothing new costs: one API request and one state read, and no writes but its own records."""

from __future__ import annotations

from pathlib import Path

import pytest


def files(root: Path) -> dict[str, int]:
    return {path.relative_to(root).as_posix(): path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("etag", [True, False])
def test_nothing_new_writes_only_its_metrics_health_lock_and_log(collector, fake_api, etag):
    assert collector.run().returncode == 0
    fake_api.state.support_etag = etag
    if not etag:
        assert collector.run().returncode == 0, "the first answer without an ETag replaces the cached validators"
    before = files(collector.workdir)
    fake_api.requests.clear()
    result = collector.run()
    assert result.returncode == 0, result.stdout
    assert [r.status for r in fake_api.requests] == [304 if etag else 200]
    after = files(collector.workdir)
    changed = sorted(name for name, mtime in after.items() if before.get(name) != mtime)
    assert [name for name in changed if not name.startswith("metrics/run-")] == [
        "logs/collect_events.lock", "logs/health.json", "logs/polisen-collector.log",
    ], "the lock (its pid), the health file and the log"
    assert len([name for name in changed if name.startswith("metrics/run-")]) == 1
    assert collector.health()["status"] == "success" and collector.health()["events_processed"] == 0


def test_the_program_freezes_what_the_job_leaves_before_the_exit(collector, monkeypatch):
    """`python collect_events.py` and `polisen-collect` run program(): the interpreter's last
    collection skips what the job leaves (docs/performance.md)."""
    import gc
    import os
    import sys

    from in_process import environment, process_state

    from polisen_collector.cli import collect_events

    order: list[str] = []
    monkeypatch.setattr(collect_events, "main", lambda: order.append("job") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: order.append("frozen"))
    monkeypatch.setattr(sys, "argv", ["collect_events.py", "--env-file", os.devnull])
    with environment(collector.env), process_state(collector.workdir):
        assert collect_events.program() == 0
    assert order == ["job", "frozen"]


def test_what_a_run_leaves_to_the_cyclic_collector_holds_no_open_file(collector, fake_api):
    """program() freezes what a job leaves, so nothing in a reference cycle is finalized at exit:
    a file there would never be flushed or closed."""
    import gc
    import io

    gc.collect()
    gc.disable()
    try:
        assert collector.run().returncode == 0
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        # Open ones only: another test's closed pipe may turn to garbage in this window (a worker
        # runs many tests), and a closed file has nothing left to flush.
        files = [repr(thing) for thing in gc.garbage
                 if isinstance(thing, io.IOBase) and not isinstance(thing, (io.StringIO, io.BytesIO))
                 and not thing.closed]
        cycles = len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cycles > 0, "the check saw the run's cyclic garbage"
    assert files == []
