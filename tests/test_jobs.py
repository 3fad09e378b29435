"""run_job, the frame of every job (a run, a backfill, compaction, an audit tick): its lock, the one
line and the outcome of whatever stopped it, its records saved under the lock, its exit code."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from polisen_collector.config import ConfigError, Settings, load_settings
from polisen_collector.host_files import HostFiles
from polisen_collector.interrupt import Interrupted
from polisen_collector.run.backfill import backfill_once
from polisen_collector.run.job import Job, run_job
from polisen_collector.run.lock import LockHeld, LockUnusable, RunLock
from polisen_collector.storage.base import StorageError


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    folders = {name: tmp_path / name.lower() for name in ("LOG_DIR", "METRICS_DIR", "DATA_DIR")}
    for folder in folders.values():
        folder.mkdir()
    return load_settings(environ={name: str(folder) for name, folder in folders.items()}, env_file=None)


def held(lock: Path) -> bool:
    """Whether someone holds `lock` (flock: a second open file of this process is turned away too)."""
    try:
        with RunLock(lock):
            return False
    except LockHeld:
        return True
    except LockUnusable:
        return False


class Probe(Job):
    task = "probe"
    stopped = "nothing half done"

    def __init__(self, settings: Settings, steps: Callable[[], BaseException | None], *, records_refusal=False):
        super().__init__(settings, HostFiles(settings.log_dir).run_lock)
        self.steps, self.records_refusal = steps, records_refusal
        self.saved: list[tuple[str | None, BaseException | None, bool]] = []

    def work(self) -> BaseException | None:
        return self.steps()

    def save(self, error: BaseException | None) -> None:
        self.saved.append((self.metrics.outcome, error, held(self.lock)))


def test_a_job_done_saves_its_records_under_its_lock_and_exits_0(settings):
    probe = Probe(settings, lambda: None)
    assert run_job(probe) == 0
    assert probe.saved == [("success", None, True)]
    assert not held(probe.lock)
    assert probe.metrics.errors == []


def fail(error: BaseException) -> Callable[[], None]:
    def steps() -> None:
        raise error
    return steps


@pytest.mark.parametrize(("error", "code", "outcome", "line"), [
    (ConfigError("OCI_REGION is not a region"), 2, "failed", "probe failed: OCI_REGION is not a region"),
    (StorageError("bucket unreachable"), 1, "failed", "probe failed: bucket unreachable"),
    (Interrupted(signal.SIGTERM), 143, "interrupted", "probe interrupted by SIGTERM: nothing half done"),
    (Interrupted(signal.SIGINT), 130, "interrupted", "probe interrupted by SIGINT: nothing half done"),
])
def test_what_stops_a_job_is_one_line_its_outcome_and_its_exit_code(settings, caplog, error, code, outcome, line):
    probe = Probe(settings, fail(error))
    with caplog.at_level(logging.INFO, logger="polisen"):
        assert run_job(probe) == code
    assert probe.saved == [(outcome, error, True)]
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [(record.getMessage(), record.exc_info) for record in errors] == [(line, None)]
    assert probe.metrics.errors == [{"type": type(error).__name__, "message": str(error),
                                     "time": probe.metrics.errors[0]["time"]}]
    assert not held(probe.lock)


def test_an_unexpected_error_is_recorded_as_a_failure_with_its_traceback_in_the_log(settings, caplog):
    probe = Probe(settings, fail(KeyError("day")))
    assert run_job(probe) == 1
    assert [(outcome, type(error)) for outcome, error, _ in probe.saved] == [("failed", KeyError)]
    (record,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert record.getMessage() == "probe failed with an unexpected error: KeyError: 'day'"
    assert record.exc_info is not None


def test_a_failure_the_job_logged_itself_is_its_outcome_without_another_line(settings, caplog):
    stopped = StorageError("backfill stopped: the API answered 503 three times")
    probe = Probe(settings, lambda: stopped)
    assert run_job(probe) == 1
    assert probe.saved == [("failed", stopped, True)]
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("records_refusal", [False, True])
def test_a_job_that_finds_the_lock_held_exits_3_and_leaves_the_holder_s_records_alone(settings, caplog,
                                                                                      records_refusal):
    probe = Probe(settings, fail(AssertionError("the work ran without the lock")), records_refusal=records_refusal)
    with RunLock(probe.lock):
        assert run_job(probe) == 3
    assert probe.saved == []
    assert "holds" in caplog.records[-1].getMessage()
    files = sorted(settings.metrics_dir.iterdir())
    if records_refusal:  # only a metrics file that says so
        (path,) = files
        assert json.loads(path.read_text())["outcome"] == "locked"
    else:
        assert files == []


@pytest.mark.parametrize("records_refusal", [False, True])
def test_a_job_whose_lock_is_unusable_fails_without_working(settings, caplog, records_refusal):
    probe = Probe(settings, fail(AssertionError("the work ran without the lock")), records_refusal=records_refusal)
    os.mkfifo(probe.lock)
    assert run_job(probe) == 1
    assert [(outcome, type(error)) for outcome, error, _ in probe.saved] == (
        [("failed", LockUnusable)] if records_refusal else [])
    assert caplog.records[-1].getMessage().startswith("probe failed: ")


def test_a_backfill_refused_by_an_unusable_lock_writes_its_metrics_but_no_health_file(settings):
    """health.json speaks for the collection runs alone."""
    os.symlink(settings.log_dir / "elsewhere", HostFiles(settings.log_dir).run_lock)
    assert backfill_once(settings, ["2026-05-01"]) == 1
    assert not settings.health_path.exists()
    (path,) = settings.metrics_dir.iterdir()
    document = json.loads(path.read_text())
    assert (document["outcome"], [error["type"] for error in document["errors"]]) == ("failed", ["LockUnusable"])
