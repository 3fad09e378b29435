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


@pytest.mark.parametrize(("args", "paused"), [((), True), (("--compact",), False)])
def test_a_collection_run_pauses_the_cyclic_collector_and_restores_it(collector, fake_api, monkeypatch, args, paused):
    """A run skips the cyclic GC's scans of its imports (docs/performance.md); the jobs over many
    days keep it; either way the caller's collector is on again after main() (tests call it in-process)."""
    import gc

    from polisen_collector.run import collection

    seen = []
    for name in ("run_once", "run_compaction"):
        real = getattr(collection, name)
        monkeypatch.setattr(collection, name, lambda *a, real=real, **k: seen.append(gc.isenabled()) or real(*a, **k))
    assert gc.isenabled()
    assert collector.run(*args).returncode == 0
    assert seen == [not paused]
    assert gc.isenabled()
