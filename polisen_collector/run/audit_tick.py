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
from polisen_collector.clock import utc_now
from polisen_collector.config import ConfigError, Settings
from polisen_collector.health.file import (
    HealthFileError,
    audit_health_path,
    read_health_document,
    write_audit_health,
)
from polisen_collector.host_files import HostFiles
from polisen_collector.metrics.prometheus import AUDIT
from polisen_collector.parts import host_store, open_archive, open_client
from polisen_collector.recovery.audit import AuditReport, Budget, health_section, run_audit
from polisen_collector.run.job import Job, run_job, save_metrics, write_textfile
from polisen_collector.storage.base import StorageError

log = logging.getLogger("polisen.audit")

CARRIED = ("oldest_day_audited", "sweep_position", "last_full_sweep", "sweep_due_by", "unhealed_gap")
"""What the audit health file carries over from the last tick when this one failed before reading its progress."""


def budget_of(settings: Settings) -> Budget:
    return Budget(horizon_days=settings.audit_horizon_days, per_tick=settings.audit_requests_per_tick,
                  per_day=settings.audit_requests_per_day)


def audit_once(settings: Settings) -> int:
    """One audit tick: the audit requests due now, then exit (0 done, 1 failed, 2 config, 3 locked)."""
    return run_job(AuditTick(settings))


class AuditTick(Job):
    task = "audit tick"
    stopped = "stopped between two days, each day audited is stored and recorded; the next tick goes on"
    expected = (ConfigError, ApiError, StorageError)
    log = log

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, HostFiles(settings.log_dir).audit_lock, metrics_kind="audit")
        self.report = AuditReport()
        self.budget = budget_of(settings)

    def work(self) -> BaseException | None:
        settings = self.settings
        storage = open_archive(settings)  # the state and its base from this host's copies when unchanged
        client = open_client(settings)
        try:
            self.report = run_audit(storage, client, self.metrics, budget=self.budget,
                                    retention_days=settings.state_retention_days, now=utc_now(),
                                    host=host_store(settings))
        finally:
            client.close()
        interrupt.check()  # each day audited is stored and recorded
        return ApiError(f"audit stopped: {self.report.stopped}") if self.report.failed else None

    def save(self, error: BaseException | None) -> None:
        """The audit's metrics file, health-audit.json (what the last tick knew kept when this one
        failed before reading its progress) and its textfile."""
        settings, metrics = self.settings, self.metrics
        section = health_section(self.report, self.budget, metrics.finished_at or utc_now())
        metrics.info["audit"] = section
        save_metrics(settings, metrics, kind="audit")
        path = audit_health_path(settings.health_path)
        if self.report.progress is None:  # failed before reading the progress: keep what was known
            section = {**{key: value for key, value in _previous(path).items() if key in CARRIED}, **{
                key: value for key, value in section.items() if key not in CARRIED}}
        try:
            write_audit_health(path, finished_at=metrics.finished_at or utc_now(), error=error,
                               run_id=metrics.run_id, audit=section)
        except OSError as failure:
            log.warning("could not write the audit health file %s: %s", path, failure)
        due = section.get("sweep_due_by")
        write_textfile(settings, metrics, AUDIT,
                       figures={"sweep_due_by": datetime.fromisoformat(due).timestamp()} if isinstance(due, str) else None)


def _previous(path: Path) -> dict[str, Any]:
    try:
        return read_health_document(path)
    except HealthFileError:
        return {}
