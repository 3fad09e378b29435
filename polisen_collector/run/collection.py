"""A run as cron sees it: take the lock, build the pieces, collect, record the outcome.

Every run that gets past configuration leaves a metrics file and (unless it only found
the lock taken) a health file, whether it succeeded or failed. A run that finds the lock
taken leaves the health file alone on purpose: the run holding the lock writes it when it
ends, and a hung one lets it go stale, which is what monitoring must see.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from polisen_collector.api.client import ApiError, ApiOptions, PolisenClient
from polisen_collector.api.rate_limit import RateLimiter
from polisen_collector.archive.ingest import InvalidAnswer
from polisen_collector.archive.layout import new_run_id
from polisen_collector.clock import utc_today
from polisen_collector.config import ConfigError, Settings
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from polisen_collector.health.file import write_health
from polisen_collector.metrics.prometheus import write_prometheus_textfile
from polisen_collector.metrics.run_metrics import RunMetrics, prune_metrics
from polisen_collector.recovery.backfill import BackfillReport, Progress, backfill_on_demand, heal_gaps, load_progress, queue_gap
from polisen_collector.run.feed import ApiCache, RunReport, collect
from polisen_collector.run.lock import LockHeld, LockUnusable, RunLock
from polisen_collector.storage import open_storage
from polisen_collector.storage.base import StorageError
from polisen_collector.storage.local import LocalStorage

log = logging.getLogger("polisen.collect")

# Present while this host has backfill days queued in the store: only then does a run read
# the queue, so a run that finds nothing new costs one API request and one state read.
BACKFILL_MARKER = "backfill-pending"


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
    try:
        lock.acquire()
    except LockHeld as error:
        log.error("%s", error)
        return EXIT_LOCKED
    except LockUnusable as error:
        log.error("compaction failed: %s", error)
        return EXIT_FAILED
    try:
        from polisen_collector.archive.compaction import compact

        report = compact(open_storage(settings), utc_today(), settings.compact_after_days)
    except (ConfigError, StorageError) as failure:
        log.error("compaction failed: %s", failure)
        return EXIT_CONFIG if isinstance(failure, ConfigError) else EXIT_FAILED
    finally:
        lock.release()
    log.info("%s", report)
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
    exit_code = EXIT_OK
    try:
        storage = open_storage(settings)
        client = PolisenClient(api_options(settings), limiter=_limiter(settings))
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending_backfill = pool.submit(load_progress, storage) if marker.exists() else None
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
                queue = pending_backfill.result() if pending_backfill else Progress({})
                backfilled = heal_gaps(storage, client, metrics, max_days=settings.backfill_max_days,
                                       retention_days=settings.state_retention_days,
                                       progress=None if report.gap_queued else queue)
                if not (backfilled and backfilled.pending):
                    marker.unlink(missing_ok=True)
        finally:
            client.close()
    except ConfigError as failure:
        error, exit_code = failure, EXIT_CONFIG
        log.error("configuration error: %s", failure)
    except (ApiError, InvalidAnswer, StorageError) as failure:
        error, exit_code = failure, EXIT_FAILED
        log.error("run failed: %s", failure)
    except Exception as failure:
        error, exit_code = failure, EXIT_FAILED
        log.exception("run failed with an unexpected error")
    if error is not None:
        metrics.record_error(error)
    metrics.finish("failed" if error else ("dry_run" if dry_run else "success"))
    log.info("%s", metrics.summary())
    if dry_run:
        log.info("dry run: would store %d new and %d updated events", report.new, report.updated)
        return exit_code
    _save_metrics(settings, metrics)
    extra = {"gap": report.gap.as_dict() if report.gap else None,
             "backfill": backfilled.as_dict() if backfilled else None}
    _save_health(settings, metrics, report, error, extra)
    if settings.healthcheck_ping_url:
        from polisen_collector.health.ping import ping

        ping(settings.healthcheck_ping_url, success=error is None)
    return exit_code


def _backfill_locked(settings: Settings, metrics: RunMetrics, days: list[str]) -> int:
    error: BaseException | None = None
    marker = settings.log_dir / BACKFILL_MARKER
    try:
        storage = open_storage(settings)
        client = PolisenClient(api_options(settings), limiter=_limiter(settings))
        marker.touch()
        try:
            report = backfill_on_demand(storage, client, metrics, days, retention_days=settings.state_retention_days)
        finally:
            client.close()
        if not report.pending:
            marker.unlink(missing_ok=True)
        if report.stopped:
            error = ApiError(f"backfill stopped: {report.stopped}")
    except (ConfigError, ApiError, StorageError) as failure:
        error = failure
        log.error("backfill failed: %s", failure)
    if error is not None:
        metrics.record_error(error)
    metrics.finish("failed" if error else "success")
    log.info("%s", metrics.summary())
    _save_metrics(settings, metrics)
    if isinstance(error, ConfigError):
        return EXIT_CONFIG
    return EXIT_FAILED if error else EXIT_OK


def _queue_gap(settings: Settings, storage, metrics: RunMetrics, gap) -> bool:
    """Mark this host as having backfill work before the days are queued in the store."""
    (settings.log_dir / BACKFILL_MARKER).touch()
    return queue_gap(storage, metrics, gap, max_days=settings.backfill_max_days)


def _limiter(settings: Settings) -> RateLimiter | None:
    return RateLimiter(LocalStorage(settings.log_dir)) if settings.rate_limit else None


def _save_metrics(settings: Settings, metrics: RunMetrics) -> None:
    try:
        metrics.save(settings.metrics_dir)
        prune_metrics(settings.metrics_dir, settings.metrics_retention_days)
    except OSError as error:
        log.warning("could not write the metrics file in %s: %s", settings.metrics_dir, error)
    if settings.prometheus_textfile_dir and metrics.outcome != "locked":
        try:
            write_prometheus_textfile(Path(settings.prometheus_textfile_dir), metrics)
        except OSError as error:
            log.warning("could not write the Prometheus textfile in %s: %s", settings.prometheus_textfile_dir, error)


def _save_health(settings: Settings, metrics: RunMetrics, report: RunReport, error: BaseException | None,
                 extra: dict | None = None) -> None:
    try:
        write_health(
            settings.health_path,
            finished_at=metrics.finished_at,
            success=error is None,
            events_processed=report.events_processed,
            execution_time=metrics.timings.get("total", 0.0),
            error=error,
            run_id=metrics.run_id,
            extra=extra,
        )
    except OSError as error_writing:
        log.warning("could not write the health file %s: %s", settings.health_path, error_writing)
