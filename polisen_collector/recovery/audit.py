"""The rolling audit: re-read past days with `?DateTime=` and store what the archive lacks.

No detection is perfect: the API publishes events late under old dates and edits events
after they left the feed. The audit needs no detection at all. Each tick (`collect_events.py
--audit`, hourly from deploy/) spends a few requests on the days due now:

1. days of a detected gap still queued for backfill (metadata/backfill.json), oldest first;
2. yesterday and the day before, each again once RECENT_EVERY has passed since its last audit;
3. up to SUSPECT_DAYS_PER_TICK days whose last answer lacked archived events, once
   CONFIRM_AFTER has passed since the first that lacked them: a second answer decides (withdrawals.py);
4. up to SUSPECT_DAYS_PER_TICK days where the feed suspects a withdrawal, the longest-suspected first;
5. older days round-robin, from 3 days back to AUDIT_HORIZON_DAYS back, newest first.
   When the oldest day is done the sweep is complete and the next starts again.

A day is fetched and stored exactly as backfill does (backfill_day: compared with the
archive's own objects of that day, so nothing is stored twice), with the same headroom
left to the regular runs in the host's rate-limit ledger; then its answer confirms what
polisen.se withdrew or brought back (withdrawals.confirm_day). The tick's spending is also kept
in the progress object, so at most AUDIT_REQUESTS_PER_DAY audit requests go out in any
24 hours however often the tick is started. Progress lives in the store
(`metadata/audit.json`, changed only through update_object), shared by every host.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from polisen_collector import interrupt, readback
from polisen_collector.api.client import ApiError, PolisenClient
from polisen_collector.api.rate_limit import RateLimited
from polisen_collector.archive.ingest import HeldState
from polisen_collector.archive.layout import new_run_id
from polisen_collector.clock import utc_now
from polisen_collector.messages import one_line
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.backfill import BackfillReport, backfill_day, finish_day, load_progress
from polisen_collector.recovery.withdrawals import (
    CONFIRM_AFTER,
    DayWithdrawals,
    Hints,
    confirm_day,
    load_hints,
    settle_day,
)
from polisen_collector.storage.base import Storage, StorageError, StoredObject, update_object

log = logging.getLogger("polisen.audit")

PROGRESS_OBJECT = "metadata/audit.json"
PROGRESS_FORMAT = 1
RECENT_DAYS = 2
"""Yesterday and the day before: where late publications and edits are most frequent."""
RECENT_EVERY = timedelta(hours=4)
TICK_SLACK = timedelta(minutes=15)
"""Ticks start a little late or early (timer jitter): a recent day is due this much before RECENT_EVERY."""
SWEEP_FROM = RECENT_DAYS + 1
"""The round-robin starts the day before the recent days."""
SUSPECT_DAYS_PER_TICK = 1
"""Days a tick audits for the feed's suspicions, beside the recent days and the sweep."""
SWEEP_GRACE = 2
"""A full sweep taking longer than this many times its expected duration is overdue."""
DAY = timedelta(days=1)


@dataclass
class AuditProgress:
    """What the audit has done: shared by ticks and hosts through `metadata/audit.json`."""

    recent: dict[str, str] = field(default_factory=dict)
    """Recent day -> when it was audited last (ISO time)."""
    cursor: str | None = None
    """The next day of the round-robin sweep; None: the next sweep starts SWEEP_FROM days back."""
    sweep_started: str | None = None
    last_full_sweep: str | None = None
    reach: str | None = None
    """The oldest day of the last full sweep."""
    spent: list[float] = field(default_factory=list)
    """Times (epoch seconds) of the audit's requests of the last 24 hours."""
    absent: dict[str, dict[int, str]] = field(default_factory=dict)
    """Day -> the archived events its last answer lacked, each with when the first answer lacking it
    was served: withdrawn once a later answer lacks them too (withdrawals.confirm_day)."""

    def as_document(self, now: datetime) -> dict[str, Any]:
        return {"format": PROGRESS_FORMAT, "updated_at": now.isoformat(timespec="seconds"),
                "recent": dict(sorted(self.recent.items())), "cursor": self.cursor,
                "sweep_started": self.sweep_started, "last_full_sweep": self.last_full_sweep,
                "reach": self.reach, "spent": self.spent,
                "absent": {day: {str(k): v for k, v in sorted(ids.items())} for day, ids in sorted(self.absent.items())}}

    def confirm_days(self, now: datetime) -> list[str]:
        """Days with absences due to be confirmed now, the longest-waiting first."""
        firsts = sorted((datetime.fromisoformat(min(ids.values())), day) for day, ids in self.absent.items() if ids)
        return [day for first, day in firsts if now - first >= CONFIRM_AFTER]


def read_progress(stored: StoredObject | None, now: datetime | None = None) -> AuditProgress:
    """The audit's progress, every value checked as strictly as a setting (readback.py): a
    request time that is not a finite number, or later than `now` (the clock was stepped back),
    counts as spent now, the strict side; anything else malformed makes it unreadable."""
    if stored is None:
        return AuditProgress()
    moment = (now or utc_now()).timestamp()
    try:
        document = json.loads(stored.data)
        if document.get("format") != PROGRESS_FORMAT:
            raise ValueError(f"not an audit progress of format {PROGRESS_FORMAT}")
        progress = AuditProgress(
            recent={readback.iso_day(day): _time(when) for day, when in document["recent"].items()},
            cursor=_day_or_none(document.get("cursor")),
            sweep_started=_time_or_none(document.get("sweep_started")),
            last_full_sweep=_time_or_none(document.get("last_full_sweep")),
            reach=_day_or_none(document.get("reach")),
            spent=sorted(min(t, moment) if readback.is_finite_number(t) else moment for t in document["spent"]),
            absent={readback.iso_day(day): {readback.event_id(k): _time(when) for k, when in ids.items()}
                    for day, ids in document.get("absent", {}).items()},
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        log.error("%s is unreadable (%s); the audit starts afresh", PROGRESS_OBJECT, one_line(str(error)))
        return AuditProgress()
    return progress


def _time(value: Any) -> str:
    return readback.utc_time(value).isoformat()


def _day_or_none(value: Any) -> str | None:
    return None if value is None else readback.iso_day(value)


def _time_or_none(value: Any) -> str | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class Budget:
    horizon_days: int
    per_tick: int
    per_day: int

    def sweep_days(self) -> float:
        """Expected days a full sweep takes when the tick runs at least hourly."""
        recent_per_day = RECENT_DAYS * math.ceil(DAY / RECENT_EVERY)
        old_days = max(1, self.horizon_days - SWEEP_FROM + 1)
        return old_days / max(1, self.per_day - recent_per_day)


def spent_today(progress: AuditProgress, now: datetime) -> int:
    cutoff = now.timestamp() - DAY.total_seconds()
    return sum(1 for t in progress.spent if t > cutoff)


def plan_tick(progress: AuditProgress, gap_days: list[str], now: datetime, budget: Budget,
              suspect_days: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The (day, why) audits due now, within this tick's and the last 24 hours' budget."""
    allowed = min(budget.per_tick, budget.per_day - spent_today(progress, now))
    today = now.date()
    plan: list[tuple[str, str]] = [(day, "gap") for day in sorted(gap_days)]
    for back in range(1, RECENT_DAYS + 1):
        day = (today - back * DAY).isoformat()
        last = progress.recent.get(day)
        if last is None or now - datetime.fromisoformat(last) >= RECENT_EVERY - TICK_SLACK:
            plan.append((day, "recent"))
    oldest = (today - budget.horizon_days * DAY).isoformat()
    plan += [(day, "confirm") for day in progress.confirm_days(now) if oldest <= day][:SUSPECT_DAYS_PER_TICK]
    plan += [(day, "suspect") for day in suspect_days if oldest <= day <= today.isoformat()][:SUSPECT_DAYS_PER_TICK]
    for day in sweep_days(progress.cursor, today, budget.horizon_days, allowed):
        plan.append((day, "sweep"))
    unique: list[tuple[str, str]] = []
    for day, why in plan:
        if day not in {planned for planned, _ in unique}:
            unique.append((day, why))
    return unique[:max(0, allowed)]


def sweep_days(cursor: str | None, today: date, horizon_days: int, count: int) -> list[str]:
    """The next `count` days of the round-robin, newest first, wrapping to a new sweep."""
    newest, oldest = today - SWEEP_FROM * DAY, today - horizon_days * DAY
    if newest < oldest:
        return []
    day = date.fromisoformat(cursor) if cursor else newest
    days = []
    for _ in range(count):
        if day > newest or day < oldest:
            day = newest
        days.append(day.isoformat())
        day -= DAY
    return days


def record_day(storage: Storage, day: str | None, why: str, *, now: datetime, requests: int,
               horizon_days: int, absent: dict[int, str] | None = None) -> AuditProgress:
    """Record requests spent and tick a day off (None: it failed) with a conditional write, merging on a lost race.

    `absent`: what the day's answer left to confirm (withdrawals.DayWithdrawals.absent), in place of what it had.
    """
    result = AuditProgress()

    def change(stored: StoredObject | None) -> bytes:
        nonlocal result
        progress = read_progress(stored, now)
        cutoff = now.timestamp() - DAY.total_seconds()
        progress.spent = [t for t in progress.spent if t > cutoff] + [now.timestamp()] * requests
        result = progress
        if day is None:
            return json.dumps(progress.as_document(now), indent=1).encode("utf-8")
        if why == "recent" or (now.date() - date.fromisoformat(day)).days <= RECENT_DAYS:
            progress.recent[day] = now.isoformat(timespec="seconds")
        oldest_recent = (now.date() - RECENT_DAYS * DAY).isoformat()
        progress.recent = {d: when for d, when in progress.recent.items() if d >= oldest_recent}
        if absent is not None:
            progress.absent.pop(day, None)
            if absent:
                progress.absent[day] = dict(absent)
        oldest = (now.date() - horizon_days * DAY).isoformat()
        progress.absent = {d: ids for d, ids in progress.absent.items() if d >= oldest}
        if why == "sweep":
            progress.sweep_started = progress.sweep_started or now.isoformat(timespec="seconds")
            if date.fromisoformat(day) <= now.date() - horizon_days * DAY:
                progress.last_full_sweep, progress.reach = now.isoformat(timespec="seconds"), day
                progress.cursor, progress.sweep_started = None, None
            else:
                progress.cursor = (date.fromisoformat(day) - DAY).isoformat()
        return json.dumps(progress.as_document(now), indent=1).encode("utf-8")

    update_object(storage, PROGRESS_OBJECT, change)
    return result


@dataclass
class DayAudit:
    day: str
    why: str
    fetched: int
    new: int
    updated: int
    withdrawals: DayWithdrawals | None = None


@dataclass
class AuditReport:
    audited: list[DayAudit] = field(default_factory=list)
    requests: int = 0
    stopped: str | None = None
    failed: bool = False
    progress: AuditProgress | None = None
    """As the tick read and left it; None: the tick failed before reading it."""
    gap_days: list[str] = field(default_factory=list)

    @property
    def new(self) -> int:
        return sum(day.new for day in self.audited)

    @property
    def updated(self) -> int:
        return sum(day.updated for day in self.audited)

    def found(self) -> dict[str, dict[str, int]]:
        """Days where the audit stored something the feed path missed."""
        return {day.day: {"new": day.new, "updated": day.updated} for day in self.audited if day.new or day.updated}

    def _confirmed(self) -> list[DayWithdrawals]:
        return [day.withdrawals for day in self.audited if day.withdrawals]

    @property
    def withdrawn(self) -> int:
        return sum(len(found.withdrawn) for found in self._confirmed())

    @property
    def republished(self) -> int:
        return sum(len(found.republished) for found in self._confirmed())

    def withdrawals(self) -> dict[str, dict[str, list[int]]]:
        """Days where the audit confirmed a withdrawal or a return: the ids of each."""
        return {found.day: {"withdrawn": found.withdrawn, "republished": found.republished}
                for found in self._confirmed() if found.withdrawn or found.republished}

    def doubted(self) -> dict[str, str]:
        """Days whose answer lacked events but could not confirm their withdrawal, and why."""
        return {found.day: found.doubt for found in self._confirmed() if found.doubt}


def run_audit(
    storage: Storage, client: PolisenClient, metrics: RunMetrics, *, budget: Budget, retention_days: int,
    now: datetime, host: Storage | None = None,
) -> AuditReport:
    """One audit tick: the days due at `now`, each stored, its withdrawals confirmed, and ticked off;
    stops on the rate limit or an API error.

    Days are recorded as audited (and requests as spent) at `now`, the tick's start, so
    the schedule does not drift by the seconds the requests take. `host` is this host's
    folder of hints (LOG_DIR), where the feed runs leave their suspicions of withdrawals.
    """
    report = AuditReport()
    started = now
    report.progress = progress = read_progress(storage.get(PROGRESS_OBJECT), now)
    gap_days = sorted(load_progress(storage).pending)
    hints = _hints(host)
    plan = plan_tick(progress, gap_days, started, budget, hints.suspect_days())
    counted = BackfillReport()
    held = HeldState()
    remaining: dict[str, int] | None = None  # the gap days as the last tick-off left them
    with metrics.step("audit"):
        for day, why in plan:
            if (stop := interrupt.requested()) is not None:  # between two days: a safe point
                report.stopped = str(stop)
                break
            before = counted.requests
            try:
                answer = backfill_day(storage, client, metrics, day, retention_days=retention_days, report=counted,
                                      held=held)
            except ApiError as error:  # RateLimited too: then no request went out
                report.stopped, report.failed = str(error), not isinstance(error, RateLimited)
                report.requests += error.requests
                if error.requests:
                    report.progress = record_day(storage, None, why, now=started, requests=error.requests,
                                                 horizon_days=budget.horizon_days)
                log.log(logging.ERROR if report.failed else logging.WARNING,
                        "audit stopped at %s: %s; it continues next tick", day, error)
                break
            report.requests += counted.requests - before
            confirmed = confirm_day(storage, answer, hints, new_run_id(), started,  # before what remembers it
                                    absent=report.progress.absent.get(day, {}))
            _settle(host, confirmed, answer.served_at or started)
            report.progress = record_day(storage, day, why, now=started, requests=counted.requests - before,
                                         horizon_days=budget.horizon_days, absent=confirmed.absent)
            if why == "gap":
                remaining = finish_day(storage, day)
            report.audited.append(DayAudit(day, why, answer.fetched, answer.new, answer.updated, confirmed))
            log.info("audit %s (%s): %d events, %d new, %d updated", day, why, answer.fetched, answer.new,
                     answer.updated)
    report.gap_days = gap_days if remaining is None else sorted(remaining)
    metrics.count(audit_requests=report.requests, audit_days=len(report.audited),
                  audit_events=sum(day.fetched for day in report.audited), audit_new=report.new,
                  audit_updated=report.updated, audit_gap_days=len(report.gap_days),
                  audit_withdrawn=report.withdrawn, audit_republished=report.republished,
                  audit_doubted_days=len(report.doubted()))
    found = report.found()
    if found:
        log.warning("the audit found %d new and %d edited events the feed path missed, on %s",
                    report.new, report.updated,
                    ", ".join(f"{day} ({n['new']} new, {n['updated']} updated)" for day, n in found.items()))
    log.info("audit tick: %d days, %d requests, %d new, %d updated, %d withdrawn, %d republished; %s",
             len(report.audited), report.requests, report.new, report.updated, report.withdrawn,
             report.republished, describe(report.progress))
    return report


def _hints(host: Storage | None) -> Hints:
    """This host's withdrawal hints; none when unreadable (they only bring audits forward)."""
    try:
        return load_hints(host) if host is not None else Hints()
    except StorageError as error:
        log.warning("cannot read the withdrawal hints: %s", error)
        return Hints()


def _settle(host: Storage | None, confirmed: DayWithdrawals, answered_at: datetime) -> None:
    if host is None:
        return
    try:
        settle_day(host, confirmed, answered_at)
    except StorageError as error:
        log.warning("cannot update the withdrawal hints: %s", error)


def describe(progress: AuditProgress) -> str:
    sweep = f"sweep at {progress.cursor}" if progress.cursor else "a new sweep starts next"
    last = progress.last_full_sweep or "never"
    return f"{sweep}, last full sweep {last}"


def oldest_audited(progress: AuditProgress) -> str | None:
    """How far back the audit has looked: the last full sweep's reach, or the current sweep's."""
    current = (date.fromisoformat(progress.cursor) + DAY).isoformat() if progress.cursor else None
    candidates = [day for day in (progress.reach, current) if day]
    return min(candidates) if candidates else None


def health_section(report: AuditReport, budget: Budget, now: datetime) -> dict[str, Any]:
    """The audit's part of the health picture (see health/file.py: audit_health_path)."""
    progress = report.progress or AuditProgress()
    base = progress.last_full_sweep or progress.sweep_started
    due = datetime.fromisoformat(base) + SWEEP_GRACE * budget.sweep_days() * DAY if base else None
    return {
        "oldest_day_audited": oldest_audited(progress),
        "sweep_position": progress.cursor,
        "last_full_sweep": progress.last_full_sweep,
        "sweep_due_by": due.isoformat(timespec="seconds") if due else None,
        "horizon_days": budget.horizon_days,
        "requests_per_day": budget.per_day,
        "requests_last_24h": spent_today(progress, now),
        "days_audited": [day.day for day in report.audited],
        "audit_new": report.new,
        "audit_updated": report.updated,
        "found": report.found(),
        "audit_withdrawn": report.withdrawn,
        "audit_republished": report.republished,
        "withdrawals": report.withdrawals(),
        "withdrawals_doubted": report.doubted(),
        "unhealed_gap": {"days": len(report.gap_days), "from": report.gap_days[0], "to": report.gap_days[-1]}
        if report.gap_days else None,
        "stopped": report.stopped,
    }
