"""A collection run as cron sees it: the feed, gap healing, withdrawals, pages, then its records.

The run is a job (run/job.py) under the collectors' lock. Every run that gets past configuration
leaves a metrics file and (unless it only found the lock taken) a health file, whether it
succeeded or failed. A run that finds the lock taken leaves the health file alone on purpose:
the run holding the lock writes it when it ends, and a hung one lets it go stale, which is what
monitoring must see.

A step a run may skip imports its code only when it runs (the backfill queue, withdrawal
hints, the page step, the ping): a run answered 304 (nothing new) imports none of them
(tests/test_oci.py, test_a_run_imports_only_what_it_uses).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from polisen_collector import interrupt, readback
from polisen_collector.api.client import ApiError, PolisenClient
from polisen_collector.archive.ingest import InvalidAnswer
from polisen_collector.clock import utc_now
from polisen_collector.config import ConfigError, Settings
from polisen_collector.files import SMALL_FILE_BYTES, atomic_write, read_regular
from polisen_collector.health.file import write_health
from polisen_collector.host_files import HostFiles
from polisen_collector.interrupt import Interrupted
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.parts import host_store, open_archive, open_client, open_store, page_client
from polisen_collector.run.feed import ApiCache, RunReport, collect
from polisen_collector.run.job import Job, run_job, save_metrics, write_textfile
from polisen_collector.storage.base import Storage, StorageError

if TYPE_CHECKING:
    from polisen_collector.recovery.backfill import BackfillReport, Progress
    from polisen_collector.recovery.gaps import Gap

log = logging.getLogger("polisen.collect")

# The page step stops fetching after this long, so slow pages never hold a run (and its health) up.
PAGE_STEP_SECONDS = 120.0
# Longer than any wait of the page queue (a day at most): a page hint due later was written by a wrong clock.
PAGE_HINT_HORIZON = timedelta(days=2)


def run_once(settings: Settings, dry_run: bool = False) -> int:
    """One cron run: the exit code (0 done, 1 failed, 2 configuration, 3 locked, 130/143 stopped)."""
    return run_job(Collection(settings, dry_run))


class Collection(Job):
    """One collection run: the feed, then (not in a dry run) gap healing, withdrawals and the page step."""

    task = "run"
    expected = (ConfigError, ApiError, InvalidAnswer, StorageError)
    records_refusal = True

    def __init__(self, settings: Settings, dry_run: bool) -> None:
        self.files = HostFiles(settings.log_dir)
        super().__init__(settings, self.files.run_lock)
        self.dry_run = dry_run
        self.success = "dry_run" if dry_run else "success"
        self.report = RunReport()
        self.backfilled: BackfillReport | None = None
        self.queue_read: Future[Progress] | None = None

    def work(self) -> None:
        """The run's steps, each a method; a signal stops them only where all they stored is whole."""
        settings = self.settings
        if urlsplit(settings.api_url).scheme == "http":
            log.warning("using plain http for loopback API %s (never for a remote host)", settings.api_url)
        if not settings.contact_email:
            log.warning("API_CONTACT_EMAIL is not set: the API's usage rules ask for a contact in the User-Agent")
        storage = open_store(settings) if self.dry_run else open_archive(settings)
        client = open_client(settings)
        try:
            self.collect_feed(storage, client)
            if not self.dry_run:
                interrupt.check()  # the feed's events and state are stored: a safe point
                self.heal_gaps(storage, client)
                self.note_withdrawals()
                self.collect_pages(storage)
                interrupt.check()
        finally:
            client.close()

    def collect_feed(self, storage: Storage, client: PolisenClient) -> None:
        """The feed's collection; a host with backfill work reads the backfill queue meanwhile."""
        settings = self.settings
        with ThreadPoolExecutor(max_workers=1) as pool:
            if not self.dry_run and self.files.backfill_marker.exists():
                self.queue_read = pool.submit(_read_backfill_queue, storage)
            self.report = collect(
                storage, client, self.metrics, run_id=self.metrics.run_id, retention_days=settings.state_retention_days,
                api_cache=None if self.dry_run else ApiCache(self.files.api_cache), dry_run=self.dry_run,
                on_gap=lambda gap: _queue_gap(settings, storage, self.metrics, gap),
            )
        gap = self.report.gap
        if self.dry_run and gap:
            log.warning("possible gap from %s to %s: %s", gap.first_day, gap.last_day, gap.reason)

    def heal_gaps(self, storage: Storage, client: PolisenClient) -> None:
        """The backfill days queued on this host (or by this run), within BACKFILL_MAX_DAYS."""
        if not self.files.backfill_marker.exists():
            return
        from polisen_collector.recovery.backfill import heal_gaps

        queue = None if self.report.gap_queued or self.queue_read is None else self.queue_read.result()
        self.backfilled = heal_gaps(storage, client, self.metrics, max_days=self.settings.backfill_max_days,
                                    retention_days=self.settings.state_retention_days, progress=queue)
        if not (self.backfilled and self.backfilled.pending):
            self.files.backfill_marker.unlink(missing_ok=True)
        interrupt.check()

    def note_withdrawals(self) -> None:
        """What the answer lacked is a suspicion of a withdrawal, a hint for this host's audit
        (recovery/withdrawals.py); after the run's events and state are stored, and never fails the run."""
        report = self.report
        if report.answered_at is None:  # a 304: the same answer as before
            return
        from polisen_collector.recovery.withdrawals import note_answer

        try:
            self.metrics.count(suspected_withdrawals=note_answer(host_store(self.settings), report.answered,
                                                                 report.answered_ids, report.seen,
                                                                 report.answered_at))
        except StorageError as error:
            log.warning("could not note the answer's suspected withdrawals: %s", error)

    def collect_pages(self, storage: Storage) -> None:
        """Fetch the event pages due, after the run's events and state are stored; never fails the run.

        A page problem is logged and counted (`page_errors`, `pages_failed`), and the pages wait in
        the queue for the next runs: the run's exit code and health do not depend on it.
        """
        settings, report, metrics = self.settings, self.report, self.metrics
        hint = self.files.pages_hint
        if settings.pages_per_run == 0 or (not report.events_processed and not _pages_due(hint)):
            return
        from polisen_collector.pages.collect import collect_pages
        from polisen_collector.storage.delta_map import decoded_limit

        client = page_client(settings)
        start = time.perf_counter()
        try:
            hint.unlink(missing_ok=True)  # a step that fails or is killed leaves no hint: the next run steps in
            pages = collect_pages(storage, client, report.answered, report.seen, metrics,
                                  max_pages=settings.pages_per_run, budget_seconds=PAGE_STEP_SECONDS,
                                  max_bytes=decoded_limit(settings.state_retention_days))
            atomic_write(hint, (pages.next_due or "idle").encode("ascii"), durable=False)
        except Exception as error:  # whatever goes wrong with pages, the feed run stands
            metrics.add("page_errors", 1)
            log.warning("page fetching failed, pages wait for the next run: %s", error)
        finally:
            client.close()
            metrics.timings["pages"] = round(time.perf_counter() - start, 6)

    def stop_line(self, stop: Interrupted) -> str:
        report = self.report
        stored = (f"after storing {report.new} new and {report.updated} updated events" if report.events_processed
                  else "before storing any event")
        return f"run {stop}: stopped at a safe point {stored}; nothing is half written, the next run carries on"

    def failure_line(self, failure: Exception) -> str:
        if isinstance(failure, ConfigError):
            return f"configuration error: {failure}"
        return f"run failed: {failure}"

    def save(self, error: BaseException | None) -> None:
        """Metrics, textfile, health file and ping (a dry run only logs)."""
        settings, metrics, report = self.settings, self.metrics, self.report
        if self.dry_run:
            log.info("dry run: would store %d new and %d updated events", report.new, report.updated)
            return
        save_metrics(settings, metrics)
        write_textfile(settings, metrics)
        extra = {"gap": report.gap.as_dict() if report.gap else None,
                 "backfill": self.backfilled.as_dict() if self.backfilled else None}
        _save_health(settings, metrics, report, error, extra)
        if settings.healthcheck_ping_url and not isinstance(error, Interrupted):  # stopped on purpose: no alarm
            from polisen_collector.health.ping import ping

            ping(settings.healthcheck_ping_url, success=error is None)


def _read_backfill_queue(storage: Storage) -> Progress:
    from polisen_collector.recovery.backfill import load_progress

    return load_progress(storage)


def _queue_gap(settings: Settings, storage: Storage, metrics: RunMetrics, gap: Gap) -> bool:
    """Mark this host as having backfill work before the days are queued in the store."""
    from polisen_collector.recovery.backfill import queue_gap

    HostFiles(settings.log_dir).backfill_marker.touch()
    return queue_gap(storage, metrics, gap, max_days=settings.backfill_max_days)


def _pages_due(hint: Path) -> bool:
    """Whether a page may be due; True when the hint is missing or unreadable, a time without
    its offset included (readback.py), or further ahead than any wait of the page queue (written
    while the clock was ahead)."""
    try:
        text = read_regular(hint, SMALL_FILE_BYTES).decode("ascii").strip()
        if text == "idle":
            return False
        due, now = readback.utc_time(text), utc_now()
        return due <= now or due > now + PAGE_HINT_HORIZON
    except (OSError, ValueError):
        return True


def _save_health(settings: Settings, metrics: RunMetrics, report: RunReport, error: BaseException | None,
                 extra: dict[str, Any] | None = None) -> None:
    try:
        write_health(
            settings.health_path,
            finished_at=metrics.finished_at or utc_now(),
            success=error is None,
            interrupted=isinstance(error, Interrupted),
            events_processed=report.events_processed,
            execution_time=metrics.timings.get("total", 0.0),
            error=error,
            run_id=metrics.run_id,
            extra=extra,
        )
    except OSError as error_writing:
        log.warning("could not write the health file %s: %s", settings.health_path, error_writing)
