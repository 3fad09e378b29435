"""An audit tick as cron sees it (`collect_events.py --audit`): its own lock, metrics and health file.

The tick runs beside the 30-minute collection, never inside it: it takes `audit.lock`,
not the collection's lock, so a collection is never turned away by it; both write the
store with conditional writes and share the host's rate-limit ledger. Its metrics file is
`audit-<run id>.json` and its health file `health-audit.json` beside health.json, so it
never overwrites the collection's verdict; health_check.py reads both.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from polisen_collector import interrupt
from polisen_collector.api.client import ApiError
from polisen_collector.archive.layout import new_run_id
from polisen_collector.clock import utc_now
from polisen_collector.config import ConfigError, Settings
from polisen_collector.health.file import (
    HealthFileError,
    audit_health_path,
    read_health_document,
    write_audit_health,
)
from polisen_collector.host_files import HostFiles
from polisen_collector.interrupt import Interrupted
from polisen_collector.metrics.run_metrics import RunMetrics, prune_metrics
from polisen_collector.parts import host_store, open_archive, open_client
from polisen_collector.recovery.audit import AuditReport, Budget, health_section, run_audit
from polisen_collector.run.collection import exit_code_for, lock_refused, outcome_of, write_textfile
from polisen_collector.run.lock import RunLock
from polisen_collector.storage.base import StorageError

log = logging.getLogger("polisen.audit")


def budget_of(settings: Settings) -> Budget:
    return Budget(horizon_days=settings.audit_horizon_days, per_tick=settings.audit_requests_per_tick,
                  per_day=settings.audit_requests_per_day)


def audit_once(settings: Settings) -> int:
    """One audit tick: the audit requests due now, then exit (0 done, 1 failed, 2 config, 3 locked)."""
    run_id = new_run_id()
    metrics = RunMetrics(run_id)
    lock = RunLock(HostFiles(settings.log_dir).audit_lock)
    if (refused := lock_refused(lock, "audit")) is not None:
        return refused
    error: BaseException | None = None
    report = AuditReport()
    budget = budget_of(settings)
    try:
        storage = open_archive(settings)  # the state and its base from this host's copies when unchanged
        client = open_client(settings)
        try:
            report = run_audit(storage, client, metrics, budget=budget, retention_days=settings.state_retention_days,
                               now=utc_now(), host=host_store(settings))
        finally:
            client.close()
        interrupt.check()  # each day audited is stored and recorded
        if report.failed:
            error = ApiError(f"audit stopped: {report.stopped}")
    except Interrupted as stop:
        error = stop
        log.error("audit tick %s: stopped between two days, each day audited is stored and recorded; "
                  "the next tick goes on", stop)
    except (ConfigError, ApiError, StorageError) as failure:
        error = failure
        log.error("audit tick failed: %s", failure)
    finally:
        lock.release()
    if error is not None:
        metrics.record_error(error)
    metrics.finish(outcome_of(error) if error else "success")
    metrics.info["audit"] = health_section(report, budget, metrics.finished_at or utc_now())
    _save(settings, metrics, report, error)
    return exit_code_for(error)


CARRIED = ("oldest_day_audited", "sweep_position", "last_full_sweep", "sweep_due_by", "unhealed_gap")


def _previous(path: Path) -> dict[str, Any]:
    try:
        return read_health_document(path)
    except HealthFileError:
        return {}


def _save(settings: Settings, metrics: RunMetrics, report: AuditReport, error: BaseException | None) -> None:
    try:
        metrics.save(settings.metrics_dir, kind="audit")
        prune_metrics(settings.metrics_dir, settings.metrics_retention_days)
    except OSError as failure:
        log.warning("could not write the audit metrics file in %s: %s", settings.metrics_dir, failure)
    path = audit_health_path(settings.health_path)
    section = metrics.info["audit"]
    if report.progress is None:  # failed before reading the progress: keep what was known
        section = {**{key: value for key, value in _previous(path).items() if key in CARRIED}, **{
            key: value for key, value in section.items() if key not in CARRIED}}
    try:
        write_audit_health(path, finished_at=metrics.finished_at or utc_now(), error=error,
                           run_id=metrics.run_id, audit=section)
    except OSError as failure:
        log.warning("could not write the audit health file %s: %s", path, failure)
    from polisen_collector.metrics.prometheus import AUDIT

    due = section.get("sweep_due_by")
    write_textfile(settings, metrics, AUDIT,
                   figures={"sweep_due_by": datetime.fromisoformat(due).timestamp()} if isinstance(due, str) else None)
