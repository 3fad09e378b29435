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


def test_the_program_pauses_the_cyclic_collector_for_a_run_and_freezes_what_is_left(collector, fake_api, monkeypatch):
    """`python collect_events.py` and `polisen-collect` run program(): no cyclic GC during the run,
    and gc.freeze() before the exit, so the interpreter's last collection skips it all
    (docs/performance.md). main() itself, as the tests call it, leaves the collector alone."""
    import gc
    import os
    import sys

    from in_process import environment, process_state

    import collect_events
    from polisen_collector.run import collection

    seen: list[object] = []
    real = collection.run_once
    monkeypatch.setattr(collection, "run_once", lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k))
    monkeypatch.setattr(gc, "freeze", lambda: seen.append("frozen"))
    monkeypatch.setattr(sys, "argv", ["collect_events.py", "--env-file", os.devnull])
    try:
        with environment(collector.env), process_state(collector.workdir):
            assert collect_events.program() == 0
    finally:
        gc.enable()
    assert seen == [False, "frozen"]
    assert collector.run().returncode == 0
    assert seen[2:] == [True], "main() in-process: the collector as the caller had it"
