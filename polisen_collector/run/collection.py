"""A run as cron sees it: take the lock, build the pieces, collect, record the outcome.

Every run that gets past configuration leaves a metrics file and (unless it only found
the lock taken) a health file, whether it succeeded or failed. A run that finds the lock
taken leaves the health file alone on purpose: the run holding the lock writes it when it
ends, and a hung one lets it go stale, which is what monitoring must see.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from polisen_collector import interrupt
from polisen_collector.api.client import ApiError, ApiOptions, PolisenClient
from polisen_collector.api.rate_limit import RateLimiter
from polisen_collector.archive.ingest import InvalidAnswer
from polisen_collector.archive.layout import new_run_id
from polisen_collector.archive.state import STATE_OBJECT
from polisen_collector.clock import utc_now, utc_today
from polisen_collector.config import ConfigError, Settings
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from polisen_collector.files import SMALL_FILE_BYTES, atomic_write, read_regular
from polisen_collector.health.file import write_health
from polisen_collector.interrupt import Interrupted
from polisen_collector.metrics.run_metrics import RunMetrics, prune_metrics
from polisen_collector.run.feed import ApiCache, RunReport, collect
from polisen_collector.run.lock import LockHeld, LockUnusable, RunLock
from polisen_collector.storage import open_storage
from polisen_collector.storage.base import Storage, StorageError
from polisen_collector.storage.local import LocalStorage

if TYPE_CHECKING:
    from polisen_collector.recovery.backfill import BackfillReport, Progress
    from polisen_collector.recovery.gaps import Gap

log = logging.getLogger("polisen.collect")

# Present while this host has backfill days queued in the store: only then does a run read
# the queue (or import the backfill), so a run that finds nothing new costs one API request
# and one conditional state read.
BACKFILL_MARKER = "backfill-pending"
# This host's copies of the state and the page queue as it last read or wrote them, and of
# their write-once bases, so that reading them from a remote store costs no body when they have
# not changed since (see storage/local_copy.py and storage/delta_map.py).
STATE_COPY = "state-cache"
QUEUE_COPY = "pages-cache"
BASES_COPY = "bases"


# When the page queue next has a page due, as this host last saw it ("idle": none pending).
# A run that stored no event skips the page step (and its queue read) until then.
PAGES_DUE_HINT = "pages-next-due"
# The compaction job parses the stored pages that lack a parse for at most this long
# (pages/reparse.py): a whole archive from before parses were stored takes a few days of it.
REPARSE_SECONDS = 60
# The page step stops fetching after this long, so slow pages never hold a run (and its health) up.
PAGE_STEP_SECONDS = 120.0
# What a run waits for, said once on a terminal (interrupt.pause).
API_WAIT = "the next request to the API (retries back off; the API's usage rules ask for 10 s between requests)"
PAGE_WAIT = "the next event page (PAGE_INTERVAL_SECONDS between pages)"


def api_options(settings: Settings) -> ApiOptions:
    return ApiOptions(
        url=settings.api_url,
        contact_email=settings.contact_email,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_retries=settings.max_retries,
        backoff_factor=settings.backoff_factor,
        retry_after_max=settings.retry_after_max,
        max_body_bytes=settings.max_body_bytes,
    )


def open_archive(settings: Settings) -> Storage:
    """The store of the settings; a remote one reads the state and the page queue against local copies."""
    storage = open_storage(settings)
    if settings.storage == "local":
        return storage
    from polisen_collector.pages.queue import QUEUE_OBJECT
    from polisen_collector.storage.delta_map import BASES
    from polisen_collector.storage.local_copy import LocalCopy

    return LocalCopy(storage, {STATE_OBJECT: settings.log_dir / STATE_COPY, QUEUE_OBJECT: settings.log_dir / QUEUE_COPY},
                     write_once={BASES: settings.log_dir / BASES_COPY})


def run_once(settings: Settings, dry_run: bool = False, backfill_days: list[str] | None = None) -> int:
    """One cron run, or with backfill_days an on-demand backfill of those days (no health file)."""
    run_id = new_run_id()
    metrics = RunMetrics(run_id)
    lock = RunLock(settings.lock_path)
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
        return _run_locked(settings, run_id, metrics, dry_run)
    finally:
        lock.release()


def run_compaction(settings: Settings) -> int:
    """Compact old days under the collectors' lock, so no run on this host writes meanwhile."""
    lock = RunLock(settings.lock_path)
    if (refused := lock_refused(lock, "compaction")) is not None:
        return refused
    try:
        from polisen_collector.archive.compaction import compact
        from polisen_collector.pages.reparse import store_missing_parses

        storage = open_storage(settings)
        report = compact(storage, utc_today(), settings.compact_after_days)
        log.info("%s", report)
        parses = None if interrupt.requested() else store_missing_parses(storage, budget_seconds=REPARSE_SECONDS)
    except (ConfigError, StorageError) as failure:
        log.error("compaction failed: %s", failure)
        return exit_code_for(failure)
    finally:
        lock.release()
    if parses is not None:
        log.info("%s", parses)
    if (stop := interrupt.requested()) is not None:
        log.error("compaction %s: stopped between two days (or two page parses), each one done is complete; "
                  "the next compaction goes on", stop)
        return stop.exit_code
    return EXIT_OK


def _run_locked(settings: Settings, run_id: str, metrics: RunMetrics, dry_run: bool) -> int:
    if urlsplit(settings.api_url).scheme == "http":
        log.warning("using plain http for loopback API %s (never for a remote host)", settings.api_url)
    if not settings.contact_email:
        log.warning("API_CONTACT_EMAIL is not set: the API's usage rules ask for a contact in the User-Agent")
    report = RunReport()
    marker = settings.log_dir / BACKFILL_MARKER
    backfilled: BackfillReport | None = None
    error: BaseException | None = None
    try:
        storage = open_storage(settings) if dry_run else open_archive(settings)
        client = open_client(settings)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending_backfill = pool.submit(_read_backfill_queue, storage) if marker.exists() else None
                report = collect(
                    storage, client, metrics, run_id=run_id,
                    retention_days=settings.state_retention_days,
                    api_cache=None if dry_run else ApiCache(settings.log_dir / "api-cache.json"),
                    dry_run=dry_run,
                    on_gap=lambda gap: _queue_gap(settings, storage, metrics, gap),
                )
            if dry_run and report.gap:
                log.warning("possible gap from %s to %s: %s", report.gap.first_day, report.gap.last_day, report.gap.reason)
            elif not dry_run:
                interrupt.check()  # the feed's events and state are stored: a safe point
                if marker.exists():
                    from polisen_collector.recovery.backfill import heal_gaps

                    queue = None if report.gap_queued or pending_backfill is None else pending_backfill.result()
                    backfilled = heal_gaps(storage, client, metrics, max_days=settings.backfill_max_days,
                                           retention_days=settings.state_retention_days, progress=queue)
                    if not (backfilled and backfilled.pending):
                        marker.unlink(missing_ok=True)
                    interrupt.check()
                _collect_pages(settings, storage, report, metrics)
                interrupt.check()
        finally:
            client.close()
    except Interrupted as stop:
        error = stop
        log.error("run %s", stopped_after(stop, report))
    except ConfigError as failure:
        error = failure
        log.error("configuration error: %s", failure)
    except (ApiError, InvalidAnswer, StorageError) as failure:
        error = failure
        log.error("run failed: %s", failure)
    except Exception as failure:
        error = failure
        log.exception("run failed with an unexpected error: %s: %s", type(failure).__name__, failure)
    if error is not None:
        metrics.record_error(error)
    metrics.finish(outcome_of(error) if error else ("dry_run" if dry_run else "success"))
    log.info("%s", metrics.summary())
    if dry_run:
        log.info("dry run: would store %d new and %d updated events", report.new, report.updated)
        return exit_code_for(error)
    _save_metrics(settings, metrics)
    extra = {"gap": report.gap.as_dict() if report.gap else None,
             "backfill": backfilled.as_dict() if backfilled else None}
    _save_health(settings, metrics, report, error, extra)
    if settings.healthcheck_ping_url and not isinstance(error, Interrupted):  # stopped on purpose: no alarm
        from polisen_collector.health.ping import ping

        ping(settings.healthcheck_ping_url, success=error is None)
    return exit_code_for(error)


def _backfill_locked(settings: Settings, metrics: RunMetrics, days: list[str]) -> int:
    from polisen_collector.recovery.backfill import backfill_on_demand

    error: BaseException | None = None
    marker = settings.log_dir / BACKFILL_MARKER
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

    (settings.log_dir / BACKFILL_MARKER).touch()
    return queue_gap(storage, metrics, gap, max_days=settings.backfill_max_days)


def open_client(settings: Settings) -> PolisenClient:
    """The API client every job of a host uses: its requests all count in the host's rate-limit ledger;
    its waits end at once when a signal stops the run."""
    return PolisenClient(api_options(settings), limiter=rate_limiter(settings), sleep=interrupt.pauser(API_WAIT))


def rate_limiter(settings: Settings) -> RateLimiter | None:
    """The host's ledger of API requests (LOG_DIR), or None when API_RATE_LIMIT is off."""
    if not settings.rate_limit:
        return None
    return RateLimiter(LocalStorage(settings.log_dir), sleep=interrupt.pauser(API_WAIT))


def _collect_pages(settings: Settings, storage: Storage, report: RunReport, metrics: RunMetrics) -> None:
    """Fetch the event pages due, after the run's events and state are stored; never fails the run.

    A page problem is logged and counted (`page_errors`, `pages_failed`), and the pages wait in
    the queue for the next runs: the run's exit code and health do not depend on it.
    """
    hint = settings.log_dir / PAGES_DUE_HINT
    if settings.pages_per_run == 0 or (not report.events_processed and not _pages_due(hint)):
        return
    from polisen_collector.pages.collect import collect_pages
    from polisen_collector.pages.fetch import PageClient, PageOptions

    client = PageClient(PageOptions(
        origin=settings.page_origin, contact_email=settings.contact_email,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        interval=settings.page_interval if settings.rate_limit else 0.0, max_bytes=settings.page_max_bytes,
    ), sleep=interrupt.pauser(PAGE_WAIT))
    start = time.perf_counter()
    try:
        hint.unlink(missing_ok=True)  # a step that fails or is killed leaves no hint: the next run steps in
        pages = collect_pages(storage, client, report.answered, report.seen, metrics,
                              max_pages=settings.pages_per_run, budget_seconds=PAGE_STEP_SECONDS)
        atomic_write(hint, (pages.next_due or "idle").encode("ascii"), durable=False)
    except Exception as error:  # whatever goes wrong with pages, the feed run stands
        metrics.add("page_errors", 1)
        log.warning("page fetching failed, pages wait for the next run: %s", error)
    finally:
        client.close()
        metrics.timings["pages"] = round(time.perf_counter() - start, 6)


def _pages_due(hint: Path) -> bool:
    """Whether a page may be due; True when the hint is missing or unreadable."""
    try:
        text = read_regular(hint, SMALL_FILE_BYTES).decode("ascii").strip()
        return text != "idle" and datetime.fromisoformat(text) <= utc_now()
    except (OSError, ValueError):
        return True


def _save_metrics(settings: Settings, metrics: RunMetrics) -> None:
    try:
        metrics.save(settings.metrics_dir)
        prune_metrics(settings.metrics_dir, settings.metrics_retention_days)
    except OSError as error:
        log.warning("could not write the metrics file in %s: %s", settings.metrics_dir, error)
    if settings.prometheus_textfile_dir and metrics.outcome != "locked":
        from polisen_collector.metrics.prometheus import write_prometheus_textfile

        try:
            write_prometheus_textfile(Path(settings.prometheus_textfile_dir), metrics)
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
