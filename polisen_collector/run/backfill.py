"""An on-demand backfill as cron (or an operator) sees it: `collect_events.py --backfill FIRST..LAST`.

A job (run/job.py) under the collectors' lock, so no run writes meanwhile. It leaves a metrics
file (and the collection's textfile) but no health file: health.json speaks for the runs.
"""

from __future__ import annotations

import logging

from polisen_collector import interrupt
from polisen_collector.api.client import ApiError
from polisen_collector.config import ConfigError, Settings
from polisen_collector.host_files import HostFiles
from polisen_collector.parts import open_archive, open_client
from polisen_collector.recovery.backfill import backfill_on_demand
from polisen_collector.run.job import Job, run_job, save_metrics, write_textfile
from polisen_collector.storage.base import StorageError

log = logging.getLogger("polisen.collect")


def backfill_once(settings: Settings, days: list[str]) -> int:
    """Fetch `days` with ?DateTime= (queued first, so a stopped backfill is carried on); the exit code."""
    return run_job(Backfill(settings, days))


class Backfill(Job):
    task = "backfill"
    stopped = "the days done are stored and ticked off, the others stay queued for the next run or --backfill"
    expected = (ConfigError, ApiError, StorageError)
    records_refusal = True

    def __init__(self, settings: Settings, days: list[str]) -> None:
        super().__init__(settings, HostFiles(settings.log_dir).run_lock)
        self.days = days
        self.marker = HostFiles(settings.log_dir).backfill_marker

    def work(self) -> BaseException | None:
        storage = open_archive(self.settings)
        client = open_client(self.settings)
        self.marker.touch()
        try:
            report = backfill_on_demand(storage, client, self.metrics, self.days,
                                        retention_days=self.settings.state_retention_days)
        finally:
            client.close()
        interrupt.check()  # the days done are ticked off, the rest stay queued
        if not report.pending:
            self.marker.unlink(missing_ok=True)
        return ApiError(f"backfill stopped: {report.stopped}") if report.stopped else None

    def save(self, error: BaseException | None) -> None:
        save_metrics(self.settings, self.metrics)
        write_textfile(self.settings, self.metrics)
