"""What every job of a host shares, as cron sees it: a collection run, an on-demand backfill,
compaction and an audit tick.

run_job takes the job's lock, runs its work, turns whatever stopped it into one log line and
an outcome in its metrics, has the job save its records (metrics file, textfile, health
file) while it still holds the lock, and gives the exit code. A job says only what is its
own: its name in the log, its lock, its steps, what it records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from polisen_collector.archive.layout import new_run_id
from polisen_collector.config import ConfigError, Settings
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from polisen_collector.interrupt import Interrupted
from polisen_collector.metrics.run_metrics import RunMetrics, prune_metrics
from polisen_collector.run.lock import LockHeld, LockUnusable, RunLock
from polisen_collector.storage.base import StorageError

if TYPE_CHECKING:
    from polisen_collector.metrics.prometheus import Job as TextfileJob

log = logging.getLogger("polisen.collect")

class Job:
    """A job for run_job. Subclasses set `task` and `stopped`, and write `work` and `save`."""

    task = "job"
    """The job's name in its log lines ("compaction failed: ...")."""
    stopped = "stopped at a safe point; the next one goes on"
    """What a signal that stopped the job at a safe point leaves, after the signal's line."""
    expected: tuple[type[Exception], ...] = (ConfigError, StorageError)
    """Failures that are one line in the log; anything else is logged with its traceback."""
    records_refusal = False
    """A job that speaks for health.json records a refused lock too (metrics; health when unusable)."""
    success = "success"
    log = logging.getLogger("polisen.collect")

    def __init__(self, settings: Settings, lock: Path, metrics_kind: str = "run") -> None:
        self.settings, self.lock, self.metrics_kind = settings, lock, metrics_kind
        self.metrics = RunMetrics(new_run_id())

    def work(self) -> BaseException | None:
        """The job's steps; raises what stops them, or returns a failure it has logged itself."""
        raise NotImplementedError

    def save(self, error: BaseException | None) -> None:
        """The job's records of its finished metrics: its metrics file, its textfile, a health file."""
        raise NotImplementedError

    def stop_line(self, stop: Interrupted) -> str:
        return f"{self.task} {stop}: {self.stopped}"

    def failure_line(self, failure: Exception) -> str:
        return f"{self.task} failed: {failure}"


def run_job(job: Job) -> int:
    """The job under its lock, its outcome recorded whatever stopped it; the exit code
    (0 done, 1 failed, 2 configuration, 3 locked, 130/143 stopped by a signal)."""
    lock = RunLock(job.lock)
    try:
        lock.acquire()
    except LockHeld as held:
        job.log.error("%s", held)
        if job.records_refusal:  # a metrics file that says so; health stays with the run holding the lock
            job.metrics.record_error(held)
            job.metrics.finish("locked")
            save_metrics(job.settings, job.metrics, job.metrics_kind)
        return EXIT_LOCKED
    except LockUnusable as unusable:
        job.log.error("%s failed: %s", job.task, unusable)
        return _finish(job, unusable) if job.records_refusal else EXIT_FAILED
    try:
        return _finish(job, _attempt(job))
    finally:
        lock.release()


def _attempt(job: Job) -> BaseException | None:
    try:
        return job.work()
    except Interrupted as stop:
        job.log.error("%s", job.stop_line(stop))
        return stop
    except job.expected as failure:
        job.log.error("%s", job.failure_line(failure))
        return failure
    except Exception as failure:
        job.log.exception("%s failed with an unexpected error: %s: %s", job.task, type(failure).__name__, failure)
        return failure


def _finish(job: Job, error: BaseException | None) -> int:
    if error is not None:
        job.metrics.record_error(error)
    job.metrics.finish(outcome_of(error) if error else job.success)
    job.log.info("%s", job.metrics.summary())
    job.save(error)
    return exit_code_for(error)


def exit_code_for(error: BaseException | None) -> int:
    """0 without an error, 2 for a configuration error (or refused credentials), 130/143 when a
    signal stopped the job, else 1."""
    if error is None:
        return EXIT_OK
    if isinstance(error, Interrupted):
        return error.exit_code
    return EXIT_CONFIG if isinstance(error, ConfigError) else EXIT_FAILED


def outcome_of(error: BaseException) -> str:
    """The outcome of a job that ended with `error`, in its metrics and health files."""
    return "interrupted" if isinstance(error, Interrupted) else "failed"


def save_metrics(settings: Settings, metrics: RunMetrics, kind: str = "run") -> None:
    """The job's metrics file (`<kind>-<run id>.json`), the oldest ones pruned."""
    try:
        metrics.save(settings.metrics_dir, kind=kind)
        prune_metrics(settings.metrics_dir, settings.metrics_retention_days)
    except OSError as error:
        log.warning("could not write the %s metrics file in %s: %s", kind, settings.metrics_dir, error)


def write_textfile(settings: Settings, metrics: RunMetrics, job: TextfileJob | None = None,
                   figures: Mapping[str, float] | None = None) -> None:
    """The job's node_exporter textfile (the collection's by default), when PROMETHEUS_TEXTFILE_DIR is set."""
    if not settings.prometheus_textfile_dir:
        return
    from polisen_collector.metrics.prometheus import COLLECTION, write_prometheus_textfile

    try:
        write_prometheus_textfile(Path(settings.prometheus_textfile_dir), metrics, job or COLLECTION, figures)
    except OSError as error:
        log.warning("could not write the Prometheus textfile in %s: %s", settings.prometheus_textfile_dir, error)
