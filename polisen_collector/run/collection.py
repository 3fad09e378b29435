"""A run as cron sees it: take the lock, build the parts, collect, record the outcome.

Every run that gets past configuration leaves a metrics file and (unless it only found
the lock taken) a health file, whether it succeeded or failed. A run that finds the lock
taken leaves the health file alone on purpose: the run holding the lock writes it when it
ends, and a hung one lets it go stale, which is what monitoring must see.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from polisen_collector import interrupt, readback
from polisen_collector.api.client import ApiError, PolisenClient
from polisen_collector.archive.ingest import InvalidAnswer
from polisen_collector.archive.layout import new_run_id
from polisen_collector.clock import utc_now, utc_today
from polisen_collector.config import ConfigError, Settings
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from polisen_collector.files import SMALL_FILE_BYTES, atomic_write, read_regular
from polisen_collector.health.file import write_health
from polisen_collector.host_files import HostFiles
from polisen_collector.interrupt import Interrupted
from polisen_collector.metrics.run_metrics import RunMetrics, prune_metrics
from polisen_collector.parts import host_store, open_archive, open_client, open_store, page_client
from polisen_collector.run.feed import ApiCache, RunReport, collect
from polisen_collector.run.lock import LockHeld, LockUnusable, RunLock
from polisen_collector.storage.base import Storage, StorageError

if TYPE_CHECKING:
    from polisen_collector.metrics.prometheus import Job
    from polisen_collector.recovery.backfill import BackfillReport, Progress
    from polisen_collector.recovery.gaps import Gap

log = logging.getLogger("polisen.collect")

# The compaction job parses the stored pages that lack a parse for at most this long
# (pages/reparse.py): a whole archive from before parses were stored takes a few days of it.
REPARSE_SECONDS = 60
# The page step stops fetching after this long, so slow pages never hold a run (and its health) up.
PAGE_STEP_SECONDS = 120.0
# Longer than any wait of the page queue (a day at most): a page hint due later was written by a wrong clock.
PAGE_HINT_HORIZON = timedelta(days=2)


def run_once(settings: Settings, dry_run: bool = False, backfill_days: list[str] | None = None) -> int:
    """One cron run, or with backfill_days an on-demand backfill of those days (no health file)."""
    run_id = new_run_id()
    metrics = RunMetrics(run_id)
    lock = RunLock(HostFiles(settings.log_dir).run_lock)
    try:
        lock.acquire()
    except LockHeld as error:
        log.error("%s", error)
        metrics.record_error(error)
        metrics.finish("locked")
        _save_metrics(settings, metrics)
        return EXIT_LOCKED
    except LockUnusable as error:
        log.error("run failed: %s", error)
        metrics.record_error(error)
        metrics.finish("failed")
        _save_metrics(settings, metrics)
        _save_health(settings, metrics, RunReport(), error)
        return EXIT_FAILED
    try:
        if backfill_days is not None:
            return _backfill_locked(settings, metrics, backfill_days)
        return _run_locked(_Run(settings, metrics, run_id, dry_run))
    finally:
        lock.release()


def run_compaction(settings: Settings) -> int:
    """Compact old days under the collectors' lock, so no run on this host writes meanwhile."""
    lock = RunLock(HostFiles(settings.log_dir).run_lock)
    if (refused := lock_refused(lock, "compaction")) is not None:
        return refused
    from polisen_collector.archive.compaction import CompactionReport, compact
    from polisen_collector.metrics.prometheus import COMPACTION

    metrics = RunMetrics(new_run_id())
    report = CompactionReport()
    error: BaseException | None = None
    try:
        from polisen_collector.pages.reparse import store_missing_parses

        storage = open_store(settings)
        report = compact(storage, utc_today(), settings.compact_after_days)
        log.info("%s", report)
        interrupt.check()
        log.info("%s", store_missing_parses(storage, budget_seconds=REPARSE_SECONDS))
        interrupt.check()
    except Interrupted as stop:
        error = stop
        log.error("compaction %s: stopped between two days (or two page parses), each one done is complete; "
                  "the next compaction goes on", stop)
    except (ConfigError, StorageError) as failure:
        error = failure
        log.error("compaction failed: %s", failure)
    finally:
        lock.release()
    if error is not None:
        metrics.record_error(error)
    metrics.finish(outcome_of(error) if error else "success")
    write_textfile(settings, metrics, COMPACTION, figures={
        "compacted_days": report.days_compacted, "skipped_days": report.days_skipped,
        "objects_removed": report.objects_removed, "versions_kept": report.versions_kept,
        "copies_dropped": report.copies_dropped})
    return exit_code_for(error)


def _run_locked(run: _Run) -> int:
    """The run's steps, each a method of _Run; whatever stops them, the outcome is recorded."""
    error: BaseException | None = None
    try:
        storage = open_store(run.settings) if run.dry_run else open_archive(run.settings)
        client = open_client(run.settings)
        try:
            run.collect_feed(storage, client)
            if not run.dry_run:
                interrupt.check()  # the feed's events and state are stored: a safe point
                run.heal_gaps(storage, client)
                run.note_withdrawals()
                run.collect_pages(storage)
                interrupt.check()
        finally:
            client.close()
    except (Interrupted, ConfigError, ApiError, InvalidAnswer, StorageError) as failure:
        error = failure
        log.error("%s", run.failure_line(failure))
    except Exception as failure:
        error = failure
        log.exception("run failed with an unexpected error: %s: %s", type(failure).__name__, failure)
    return run.finish(error)


class _Run:
    """One collection run: the feed, then (not in a dry run) gap healing and the page step, then its records."""

    def __init__(self, settings: Settings, metrics: RunMetrics, run_id: str, dry_run: bool) -> None:
        self.settings, self.metrics, self.run_id, self.dry_run = settings, metrics, run_id, dry_run
        self.files = HostFiles(settings.log_dir)
        self.report = RunReport()
        self.backfilled: BackfillReport | None = None
        self.queue_read: Future[Progress] | None = None
        if urlsplit(settings.api_url).scheme == "http":
            log.warning("using plain http for loopback API %s (never for a remote host)", settings.api_url)
        if not settings.contact_email:
            log.warning("API_CONTACT_EMAIL is not set: the API's usage rules ask for a contact in the User-Agent")

    def collect_feed(self, storage: Storage, client: PolisenClient) -> None:
        """The feed's collection; a host with backfill work reads the backfill queue meanwhile."""
        settings = self.settings
        with ThreadPoolExecutor(max_workers=1) as pool:
            if not self.dry_run and self.files.backfill_marker.exists():
                self.queue_read = pool.submit(_read_backfill_queue, storage)
            self.report = collect(
                storage, client, self.metrics, run_id=self.run_id, retention_days=settings.state_retention_days,
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
        _collect_pages(self.settings, storage, self.report, self.metrics)

    def failure_line(self, failure: BaseException) -> str:
        if isinstance(failure, Interrupted):
            return f"run {stopped_after(failure, self.report)}"
        if isinstance(failure, ConfigError):
            return f"configuration error: {failure}"
        return f"run failed: {failure}"

    def finish(self, error: BaseException | None) -> int:
        """Metrics, health file and ping (a dry run only logs); the exit code."""
        settings, metrics, report = self.settings, self.metrics, self.report
        if error is not None:
            metrics.record_error(error)
        metrics.finish(outcome_of(error) if error else ("dry_run" if self.dry_run else "success"))
        log.info("%s", metrics.summary())
        if self.dry_run:
            log.info("dry run: would store %d new and %d updated events", report.new, report.updated)
            return exit_code_for(error)
        _save_metrics(settings, metrics)
        extra = {"gap": report.gap.as_dict() if report.gap else None,
                 "backfill": self.backfilled.as_dict() if self.backfilled else None}
        _save_health(settings, metrics, report, error, extra)
        if settings.healthcheck_ping_url and not isinstance(error, Interrupted):  # stopped on purpose: no alarm
            from polisen_collector.health.ping import ping

            ping(settings.healthcheck_ping_url, success=error is None)
        return exit_code_for(error)


def _backfill_locked(settings: Settings, metrics: RunMetrics, days: list[str]) -> int:
    from polisen_collector.recovery.backfill import backfill_on_demand

    error: BaseException | None = None
    marker = HostFiles(settings.log_dir).backfill_marker
    try:
        storage = open_archive(settings)
        client = open_client(settings)
        marker.touch()
        try:
            report = backfill_on_demand(storage, client, metrics, days, retention_days=settings.state_retention_days)
        finally:
            client.close()
        interrupt.check()  # the days done are ticked off, the rest stay queued
        if not report.pending:
            marker.unlink(missing_ok=True)
        if report.stopped:
            error = ApiError(f"backfill stopped: {report.stopped}")
    except Interrupted as stop:
        error = stop
        log.error("backfill %s: the days done are stored and ticked off, the others stay queued for the next "
                  "run or --backfill", stop)
    except (ConfigError, ApiError, StorageError) as failure:
        error = failure
        log.error("backfill failed: %s", failure)
    if error is not None:
        metrics.record_error(error)
    metrics.finish(outcome_of(error) if error else "success")
    log.info("%s", metrics.summary())
    _save_metrics(settings, metrics)
    return exit_code_for(error)


def exit_code_for(error: BaseException | None) -> int:
    """0 without an error, 2 for a configuration error (or refused credentials), 130/143 when a
    signal stopped the run, else 1."""
    if error is None:
        return EXIT_OK
    if isinstance(error, Interrupted):
        return error.exit_code
    return EXIT_CONFIG if isinstance(error, ConfigError) else EXIT_FAILED


def outcome_of(error: BaseException) -> str:
    """The outcome of a run that ended with `error`, in its metrics and health files."""
    return "interrupted" if isinstance(error, Interrupted) else "failed"


def stopped_after(stop: Interrupted, report: RunReport) -> str:
    """The log line of a collection a signal stopped at a safe point."""
    stored = (f"after storing {report.new} new and {report.updated} updated events" if report.events_processed
              else "before storing any event")
    return f"{stop}: stopped at a safe point {stored}; nothing is half written, the next run carries on"


def lock_refused(lock: RunLock, task: str) -> int | None:
    """Take `lock` for a task that leaves no health file; when it cannot, log why and give the exit code."""
    try:
        lock.acquire()
    except LockHeld as error:
        log.error("%s", error)
        return EXIT_LOCKED
    except LockUnusable as error:
        log.error("%s failed: %s", task, error)
        return EXIT_FAILED
    return None


def _read_backfill_queue(storage: Storage) -> Progress:
    from polisen_collector.recovery.backfill import load_progress

    return load_progress(storage)


def _queue_gap(settings: Settings, storage: Storage, metrics: RunMetrics, gap: Gap) -> bool:
    """Mark this host as having backfill work before the days are queued in the store."""
    from polisen_collector.recovery.backfill import queue_gap

    HostFiles(settings.log_dir).backfill_marker.touch()
    return queue_gap(storage, metrics, gap, max_days=settings.backfill_max_days)


def _collect_pages(settings: Settings, storage: Storage, report: RunReport, metrics: RunMetrics) -> None:
    """Fetch the event pages due, after the run's events and state are stored; never fails the run.

    A page problem is logged and counted (`page_errors`, `pages_failed`), and the pages wait in
    the queue for the next runs: the run's exit code and health do not depend on it.
    """
    hint = HostFiles(settings.log_dir).pages_hint
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


def _save_metrics(settings: Settings, metrics: RunMetrics) -> None:
    try:
        metrics.save(settings.metrics_dir)
        prune_metrics(settings.metrics_dir, settings.metrics_retention_days)
    except OSError as error:
        log.warning("could not write the metrics file in %s: %s", settings.metrics_dir, error)
    if metrics.outcome != "locked":
        write_textfile(settings, metrics)


def write_textfile(settings: Settings, metrics: RunMetrics, job: Job | None = None,
                   figures: Mapping[str, float] | None = None) -> None:
    """The job's node_exporter textfile (the collection's by default), when PROMETHEUS_TEXTFILE_DIR is set."""
    if not settings.prometheus_textfile_dir:
        return
    from polisen_collector.metrics.prometheus import COLLECTION, write_prometheus_textfile

    try:
        write_prometheus_textfile(Path(settings.prometheus_textfile_dir), metrics, job or COLLECTION, figures)
    except OSError as error:
        log.warning("could not write the Prometheus textfile in %s: %s", settings.prometheus_textfile_dir, error)


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
