"""Judge the health file: healthy or not, and one line saying why, whatever the file holds.

States follow the monitoring-plugin convention (OK, WARNING, CRITICAL, UNKNOWN); the plain
health check maps OK to healthy and everything else to unhealthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from polisen_collector.clock import utc_now
from polisen_collector.exit_codes import NAGIOS_CRITICAL, NAGIOS_OK, NAGIOS_UNKNOWN, NAGIOS_WARNING
from polisen_collector.health.file import (
    STATUSES,
    HealthFileError,
    audit_health_path,
    read_health,
    read_health_document,
)
from polisen_collector.health.ranges import PluginRange
from polisen_collector.messages import one_line

OK, WARNING, CRITICAL, UNKNOWN = "OK", "WARNING", "CRITICAL", "UNKNOWN"
NAGIOS_EXIT = {OK: NAGIOS_OK, WARNING: NAGIOS_WARNING, CRITICAL: NAGIOS_CRITICAL, UNKNOWN: NAGIOS_UNKNOWN}
_SEVERITY = {OK: 0, WARNING: 1, CRITICAL: 2}
# One failed run is a WARNING (the next run usually catches up); this many in a row are
# CRITICAL, as PolisenCollectorFailingRepeatedly in deploy/prometheus-alerts.yml.
CRITICAL_FAILURES = 3
# A last_run this little in the future is clock skew between hosts, read as "just now".
CLOCK_SKEW_TOLERANCE = timedelta(minutes=5)
LOG_HINT = "see polisen-collector.log in LOG_DIR"


@dataclass
class Verdict:
    state: str
    message: str
    path: Path
    details: list[str] = field(default_factory=list)
    age_seconds: float | None = None
    health: dict[str, Any] | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    audit: dict[str, Any] | None = None
    """The audit tick's health file (health-audit.json), when there is one."""

    @property
    def healthy(self) -> bool:
        return self.state == OK

    def perfdata(self, warning: PluginRange | None = None, critical: PluginRange | None = None,
                 critical_failures: int | None = None) -> str:
        """Monitoring-plugin performance data: `age=720s;2700;5400;0 events=5;;;0 duration=1.2s;;;0`.

        The age's thresholds are the -w/-c ranges (minutes) in seconds. With critical_failures
        also `failures=N;0;C-1;0` (plugin ranges: alert above the value).

        None when the file is unusable: figures from a file that is wrong elsewhere are not trusted.
        """
        if self.state == UNKNOWN:
            return ""
        parts = []
        if self.age_seconds is not None:
            thresholds = ";".join("" if limit is None else limit.perfdata(60) for limit in (warning, critical))
            parts.append(f"age={self.age_seconds:.0f}s;{thresholds};0")
        events = _count(self.health, "events_processed")
        if events is not None:
            parts.append(f"events={events};;;0")
        duration = _seconds(self.health, "execution_time")
        if duration is not None:
            parts.append(f"duration={duration:.3f}s;;;0")
        failures = _count(self.health, "consecutive_failures")
        if failures is not None and critical_failures is not None:
            parts.append(f"failures={failures};0;{critical_failures - 1};0")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "healthy": self.healthy,
            "message": self.message,
            "details": self.details,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 3),
            "health_file": str(self.path),
            "health": self.health,
            **({"audit": self.audit} if self.audit is not None else {}),
        }


class _Unusable(Exception):
    """A field of the health file is unusable; the message says which and why."""


def assess(path: Path, *, warning: PluginRange, critical: PluginRange, critical_failures: int = CRITICAL_FAILURES,
           now: datetime | None = None) -> Verdict:
    """Read the health file at `path` and judge it; never raises for any content.

    Age (in minutes): where `critical` alerts CRITICAL, else where `warning` alerts WARNING
    (a plain range N alerts above N minutes). A failed last run is
    WARNING, and CRITICAL from `critical_failures` failures in a row (or when the file does not
    say how many); the worse of the two counts.
    """
    now = now or utc_now()
    try:
        health = read_health(path)
    except HealthFileError as error:
        return Verdict(UNKNOWN, str(error), Path(path))
    try:
        verdict = _judge(health, Path(path), warning=warning, critical=critical, critical_failures=critical_failures, now=now)
    except _Unusable as error:
        return Verdict(UNKNOWN, f"health file {path}: {error}", Path(path), health=health)
    return _with_audit(verdict, health, audit_health_path(Path(path)), now)


def _with_audit(verdict: Verdict, health: dict[str, Any], audit_path: Path, now: datetime) -> Verdict:
    """Recovery's part of the verdict: an unhealed gap or an overdue audit sweep is a WARNING.

    The audit tick writes its own file (health-audit.json, see health/file.py); a missing
    one means the audit is not installed, which the collection's verdict alone reports on.
    """
    problems: list[str] = []
    try:
        audit: dict[str, Any] | None = read_health_document(audit_path)
    except HealthFileError as error:
        audit = None
        if audit_path.exists():
            problems.append(str(error))
    verdict.audit = audit
    figures = audit_figures(audit) if audit is not None else None
    if (audit is not None and figures is not None and figures.last_tick is not None
            and (verdict.last_run is None or figures.last_tick >= verdict.last_run)):
        gap = audit.get("unhealed_gap")  # the newer of the two files says whether a gap is still open
        gap_days = figures.unhealed_gap_days
        gap_from = gap.get("from") if isinstance(gap, dict) else None
    else:
        backfill = health.get("backfill")
        gap_days = _count(backfill, "pending_days") if isinstance(backfill, dict) else None
        gap_from = backfill.get("next_pending_day") if isinstance(backfill, dict) else None
    if gap_days:
        problems.append(f"unhealed gap: {gap_days} day{'s' if gap_days != 1 else ''} from {one_line(gap_from, 80)} "
                        "still to backfill (they continue each run; see the backfill lines in the log)")
    if audit is not None and figures is not None:
        due = figures.sweep_due_by
        last_sweep = one_line(audit.get("last_full_sweep") or "never", 80)
        verdict.details.append(f"audit: last tick {one_line(audit.get('last_tick'), 80)}, {one_line(audit.get('status'), 80)}; "
                               f"oldest day audited {one_line(audit.get('oldest_day_audited'), 80)}, "
                               f"last full sweep {last_sweep}")
        if due is not None and now > due:
            problems.append(f"audit sweep overdue: last full sweep {last_sweep}, due by {due.isoformat()}; "
                            "is polisen-audit.timer (or the --audit cron line) running?")
    if not problems:
        return verdict
    if verdict.state == OK:
        verdict.state = WARNING
        verdict.message = "; ".join(problems)
        if verdict.last_run is not None:
            verdict.message += f" (last run {_ago(now - verdict.last_run)} ago succeeded)"
    else:
        verdict.details.extend(problems)
    return verdict


@dataclass(frozen=True)
class AuditFigures:
    """What the audit tick's health file says, each figure None when absent or unusable."""

    last_tick: datetime | None
    success: bool | None
    new: int | None
    updated: int | None
    sweep_due_by: datetime | None
    unhealed_gap_days: int | None
    withdrawn: int | None = None
    republished: int | None = None


def audit_figures(audit: dict[str, Any]) -> AuditFigures:
    status = audit.get("status")
    gap = audit.get("unhealed_gap")
    return AuditFigures(
        last_tick=_optional_time(audit, "last_tick"),
        success=status == "success" if status in STATUSES else None,
        new=_count(audit, "audit_new"),
        updated=_count(audit, "audit_updated"),
        sweep_due_by=_optional_time(audit, "sweep_due_by"),
        unhealed_gap_days=_count(gap, "days") if isinstance(gap, dict) else 0 if gap is None else None,
        withdrawn=_count(audit, "audit_withdrawn"),
        republished=_count(audit, "audit_republished"),
    )


def _optional_time(document: dict[str, Any] | None, name: str) -> datetime | None:
    try:
        return _timestamp(document or {}, name)
    except (_Unusable, KeyError):
        return None


def _judge(health: dict[str, Any], path: Path, *, warning: PluginRange, critical: PluginRange, critical_failures: int,
           now: datetime) -> Verdict:
    last_run = _timestamp(health, "last_run")
    status = health["status"]
    if status not in STATUSES:
        raise _Unusable(f"status {_quote(status)} is none of {', '.join(map(repr, STATUSES))}")
    events = _count(health, "events_processed")
    duration = _seconds(health, "execution_time")
    if events is None:
        raise _Unusable(f"events_processed {_quote(health['events_processed'])} is not a count")
    if duration is None:
        raise _Unusable(f"execution_time {_quote(health['execution_time'])} is not a number of seconds")
    last_success = _timestamp(health, "last_success") if health.get("last_success") is not None else None
    failures = _count(health, "consecutive_failures")
    if failures is None and health.get("consecutive_failures") is not None:
        raise _Unusable(f"consecutive_failures {_quote(health['consecutive_failures'])} is not a count")

    age = now - last_run
    details = []
    if age < -CLOCK_SKEW_TOLERANCE:
        return Verdict(
            UNKNOWN,
            f"last run is stamped {_ago(-age)} in the future ({last_run.isoformat()}): the clocks of the "
            f"collector's host and this one disagree, so its age is unknown; check NTP",
            path, health=health,
        )
    if age < timedelta(0):
        details.append(f"clock skew: last run stamped {-age.total_seconds():.0f} s in the future, read as now")
        age = timedelta(0)
    since_success = "no successful run on record" if last_success is None else (
        f"last successful run {_ago(now - last_success)} ago"
    )
    details += [
        f"last run: {last_run.isoformat()} ({_ago(age)} ago), {status}",
        f"last success: {'never' if last_success is None else last_success.isoformat()}",
        f"events processed: {events}, execution time: {duration:.2f} s",
        f"consecutive failures: {'unknown' if failures is None else failures}",
        f"version {one_line(health.get('version'), 80)} on host {one_line(health.get('host'), 80)}",
        f"run id {one_line(health.get('run_id'), 80)}, health file {path}",
    ]
    verdict = Verdict(OK, "", path, details, age.total_seconds(), health, last_run, last_success)
    minutes = age.total_seconds() / 60
    age_state = CRITICAL if critical.alerts(minutes) else WARNING if warning.alerts(minutes) else OK
    if status != "success":  # failed, or interrupted by a signal: either way nothing new was known to be stored
        streak = "" if failures is None else f"; {failures} consecutive failure{'s' if failures != 1 else ''}"
        failure_state = CRITICAL if failures is None or failures >= critical_failures else WARNING
        verdict.state = max(failure_state, age_state, key=_SEVERITY.__getitem__)
        how = (f"failed: {_error_text(health.get('error'))}" if status == "failed"
               else f"was {_interruption(health.get('error'))}")
        verdict.message = f"last run {_ago(age)} ago {how}; {since_success}{streak}; {LOG_HINT}"
    elif age_state != OK:
        verdict.state = age_state
        verdict.message = _age_problem(age, critical if age_state == CRITICAL else warning, age_state)
    else:
        verdict.message = f"last run {_ago(age)} ago succeeded: {events} events processed in {duration:.2f} s"
    return verdict


def _age_problem(age: timedelta, limit: PluginRange, state: str) -> str:
    minutes = age.total_seconds() / 60
    if not limit.inside and minutes > limit.end:
        return (f"no run for {_ago(age)} (limit {_ago(timedelta(minutes=limit.end))}): the collector stopped or hangs; "
                "check its cron entry or systemd timer, and for a run stuck holding collect_events.lock")
    return (f"last run {_ago(age)} ago: its age, {minutes:.0f} min, is {'inside' if limit.inside else 'outside'} "
            f"the {state.lower()} range {limit.text} (minutes)")


def _timestamp(health: dict[str, Any], name: str) -> datetime:
    value = health[name]
    if not isinstance(value, str):
        raise _Unusable(f"{name} {_quote(value)} is not a timestamp")
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Unusable(f"{name} {_quote(value)} is not an ISO 8601 timestamp") from None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise _Unusable(f"{name} {_quote(value)} has no UTC offset, so its age is unknown")
    return stamp


def _count(health: dict[str, Any] | None, name: str) -> int | None:
    value = (health or {}).get(name)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    return None


def _seconds(health: dict[str, Any] | None, name: str) -> float | None:
    value = (health or {}).get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        text = f"{one_line(error.get('type'), 60)}: {one_line(error.get('message'), 300)}"
    elif error is None:
        text = "no error recorded"
    else:
        text = one_line(error, 300)
    return text


def _interruption(error: Any) -> str:
    """`interrupted by SIGTERM`, as the run recorded it."""
    message = error.get("message") if isinstance(error, dict) else None
    return one_line(message, 80) if isinstance(message, str) and message.startswith("interrupted") else "interrupted"


def _quote(value: Any) -> str:
    return one_line(repr(value), 80)


def _ago(delta: timedelta) -> str:
    """A duration as people say it: 45 s, 12 min, 3 h, 5 d."""
    seconds = abs(delta.total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"
