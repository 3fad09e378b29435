"""Compaction as cron sees it (`collect_events.py --compact`): old days merged, missing page parses stored.

A job (run/job.py) under the collectors' lock, so no run on this host writes meanwhile. It
leaves its figures in its textfile (PROMETHEUS_TEXTFILE_DIR), no metrics or health file.
"""

from __future__ import annotations

import logging

from polisen_collector import interrupt
from polisen_collector.archive.compaction import CompactionReport, compact
from polisen_collector.clock import utc_today
from polisen_collector.config import Settings
from polisen_collector.host_files import HostFiles
from polisen_collector.metrics.prometheus import COMPACTION
from polisen_collector.pages.reparse import store_missing_parses
from polisen_collector.parts import open_store
from polisen_collector.run.job import Job, run_job, write_textfile

log = logging.getLogger("polisen.collect")

# The compaction job parses the stored pages that lack a parse for at most this long
# (pages/reparse.py): a whole archive from before parses were stored takes a few days of it.
REPARSE_SECONDS = 60


def run_compaction(settings: Settings) -> int:
    """Compact the days older than COMPACT_AFTER_DAYS, then parse stored pages for at most REPARSE_SECONDS."""
    return run_job(Compaction(settings))


class Compaction(Job):
    task = "compaction"
    stopped = ("stopped between two days (or two page parses), each one done is complete; "
               "the next compaction goes on")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, HostFiles(settings.log_dir).run_lock)
        self.report = CompactionReport()

    def work(self) -> None:
        storage = open_store(self.settings)
        self.report = compact(storage, utc_today(), self.settings.compact_after_days)
        log.info("%s", self.report)
        interrupt.check()
        log.info("%s", store_missing_parses(storage, budget_seconds=REPARSE_SECONDS))
        interrupt.check()

    def save(self, error: BaseException | None) -> None:
        report = self.report
        write_textfile(self.settings, self.metrics, COMPACTION, figures={
            "compacted_days": report.days_compacted, "skipped_days": report.days_skipped,
            "objects_removed": report.objects_removed, "versions_kept": report.versions_kept,
            "copies_dropped": report.copies_dropped})
