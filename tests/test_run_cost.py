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


def program_run(collector, monkeypatch, *args: str) -> int:
    """collect_events.program() in-process, as `python collect_events.py args` runs it; the test
    process's collector is on again afterwards."""
    import gc
    import os
    import sys

    from in_process import environment, process_state

    from polisen_collector.cli import collect_events

    monkeypatch.setattr(sys, "argv", ["collect_events.py", "--env-file", os.devnull, *args])
    try:
        with environment(collector.env), process_state(collector.workdir):
            return collect_events.program()
    finally:
        gc.unfreeze()
        gc.enable()


@pytest.mark.parametrize(("args", "entry", "paused"), [
    ((), "polisen_collector.run.collection:run_once", True),
    (("--compact",), "polisen_collector.run.collection:run_compaction", False),
    (("--audit",), "polisen_collector.run.audit_tick:audit_once", False),
    (("--backfill", "2026-05-01..2026-05-02"), "polisen_collector.run.collection:run_once", False),
])
def test_the_program_pauses_the_cyclic_collector_for_a_run_only(collector, monkeypatch, args, entry, paused):
    """`python collect_events.py` and `polisen-collect` run program(): no cyclic GC during a run,
    and gc.freeze() before the exit, so the interpreter's last collection skips it all
    (docs/performance.md). Jobs over many days keep the collector on."""
    import gc
    import importlib

    module, name = entry.split(":")
    seen: list[object] = []
    monkeypatch.setattr(importlib.import_module(module), name, lambda *a, **k: seen.append(gc.isenabled()) or 0)
    monkeypatch.setattr(gc, "freeze", lambda: seen.append("frozen"))
    assert program_run(collector, monkeypatch, *args) == 0
    assert seen == [not paused, "frozen"]


def test_gap_healing_in_a_run_turns_the_collector_back_on(collector, fake_api, monkeypatch):
    import gc

    from polisen_collector.recovery import backfill
    from polisen_collector.run.collection import BACKFILL_MARKER

    healing: list[bool] = []
    monkeypatch.setattr(backfill, "heal_gaps", lambda *a, **k: healing.append(gc.isenabled()))
    collector.log_dir.mkdir(parents=True, exist_ok=True)
    (collector.log_dir / BACKFILL_MARKER).touch()
    assert program_run(collector, monkeypatch) == 0
    assert healing == [True], "healing may cover up to BACKFILL_MAX_DAYS days"


def test_main_in_process_leaves_the_collector_as_the_caller_had_it(collector, fake_api):
    import gc

    assert gc.isenabled()
    assert collector.run().returncode == 0
    assert gc.isenabled()


def test_what_a_run_leaves_to_the_cyclic_collector_holds_no_open_file(collector, fake_api):
    """program() freezes what a run leaves, so nothing in a reference cycle is finalized at exit:
    a file there would never be flushed or closed."""
    import gc
    import io

    gc.collect()
    gc.disable()
    try:
        assert collector.run().returncode == 0
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        files = [thing for thing in gc.garbage
                 if isinstance(thing, io.IOBase) and not isinstance(thing, (io.StringIO, io.BytesIO))]
        cycles = len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cycles > 0, "the check saw the run's cyclic garbage"
    assert files == []
