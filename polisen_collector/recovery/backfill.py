"""Filling gaps (see gaps.py) by date, within the API's rate limits, resumably.

The days of a gap are fetched with `?DateTime=` (oldest
first), stored exactly as a regular run stores events, and ticked off one by one in
`metadata/backfill.json`, so an interrupted or rate-limited backfill resumes next run.
An event's partition is its own date, so the events answered for `DateTime=D` are compared
with the archive's objects of day D: a version already archived is recognised even when the
state has long forgotten its id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from polisen_collector import interrupt, readback
from polisen_collector.api.client import ApiError, PolisenClient
from polisen_collector.api.rate_limit import RateLimited
from polisen_collector.archive.events import Event, answered_ids
from polisen_collector.archive.ingest import (
    HeldState,
    InvalidAnswer,
    commit_state,
    find_changes,
    validate_all,
    write_events,
)
from polisen_collector.archive.layout import Version, new_run_id, read_day
from polisen_collector.archive.state import Entry
from polisen_collector.clock import utc_now
from polisen_collector.messages import one_line
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.gaps import Gap
from polisen_collector.storage.base import Storage, StoredObject, update_object

log = logging.getLogger("polisen.backfill")

PROGRESS_OBJECT = "metadata/backfill.json"
PROGRESS_FORMAT = 1
DAY_CAP = 500
"""The most events the API answers; a day's answer that holds as many may be cut."""
HEADROOM = 10
"""Requests of each hourly and daily budget a backfill leaves to the regular runs."""
DAY_ATTEMPTS = 3


@dataclass
class BackfillReport:
    days_done: list[str] = field(default_factory=list)
    fetched: int = 0
    new: int = 0
    updated: int = 0
    requests: int = 0
    truncated: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    stopped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "days_done": len(self.days_done), "new": self.new, "updated": self.updated,
            "possibly_truncated": self.truncated, "pending_days": len(self.pending),
            "next_pending_day": self.pending[0] if self.pending else None, "stopped": self.stopped,
        }


@dataclass
class DayAnswer:
    """One day fetched with ?DateTime= and stored (backfill_day), with what the audit compares it with."""

    day: str
    fetched: int
    new: int
    updated: int
    events: list[Event]
    served_at: datetime | None
    archived: dict[int, Version]
    """The day's archived events before this answer: id -> its latest version on that day."""
    seen: dict[int, Entry]
    """The state's entries as the answer was stored."""
    ids: frozenset[int] = frozenset()
    """Every id the answer held, its invalid events' too."""

    @property
    def capped(self) -> bool:
        """The answer holds as many events as the API answers at most: it may be cut."""
        return self.fetched >= DAY_CAP


@dataclass
class Progress:
    """Pending days, each with the number of runs that failed on it so far."""

    pending: dict[str, int]
    exists: bool = False


def load_progress(storage: Storage) -> Progress:
    return read_progress(storage.get(PROGRESS_OBJECT))


def read_progress(stored: StoredObject | None) -> Progress:
    """The pending days, checked as strictly as a setting (readback.py); unreadable: none."""
    if stored is None:
        return Progress(pending={})
    try:
        document = json.loads(stored.data)
        if document.get("format") != PROGRESS_FORMAT:
            raise ValueError(f"not a backfill progress of format {PROGRESS_FORMAT}")
        pending = {readback.iso_day(day): _count(failures) for day, failures in document["pending"].items()}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        log.error("%s is unreadable (%s); starting it afresh", PROGRESS_OBJECT, one_line(str(error)))
        pending = {}
    return Progress(pending=pending, exists=True)


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{readback.shown(value)} is not a count of failures")
    return value


def update_progress(storage: Storage, change: Callable[[dict[str, int]], object]) -> dict[str, int]:
    """Apply `change` to the pending days with a conditional write, merging on a lost race."""
    result: dict[str, int] = {}

    def changed(stored: StoredObject | None) -> bytes | None:
        nonlocal result
        progress = read_progress(stored)
        result = dict(progress.pending)
        change(result)
        if progress.exists and result == progress.pending:
            return None
        document = {
            "format": PROGRESS_FORMAT,
            "updated_at": utc_now().isoformat(timespec="seconds"),
            "pending": dict(sorted(result.items())),
        }
        return json.dumps(document, indent=1).encode("utf-8")

    update_object(storage, PROGRESS_OBJECT, changed)
    return result


def queue_days(storage: Storage, days: list[str]) -> None:
    update_progress(storage, lambda pending: [pending.setdefault(day, 0) for day in days])


def finish_day(storage: Storage, day: str) -> dict[str, int]:
    """Tick a day off; the days still pending."""
    return update_progress(storage, lambda pending: pending.pop(day, None))


def fail_day(storage: Storage, day: str) -> dict[str, int]:
    """Count a failed run on a day; after DAY_ATTEMPTS runs it is given up, loudly. The days still pending."""
    def change(pending: dict[str, int]) -> None:
        failures = pending.get(day, 0) + 1
        if failures >= DAY_ATTEMPTS:
            log.error("giving up backfilling %s after %d failed runs; retry with --backfill %s", day, failures, day)
            pending.pop(day, None)
        else:
            pending[day] = failures

    return update_progress(storage, change)


def latest_versions(storage: Storage, day: str) -> dict[int, Version]:
    """The latest archived version of each event in one day's partition (versions come last stored last)."""
    return {version.event.id: version for version in read_day(storage, day).versions}


def backfill_day(
    storage: Storage, client: PolisenClient, metrics: RunMetrics, day: str, *, retention_days: int,
    report: BackfillReport, held: HeldState,
) -> DayAnswer:
    """Fetch one day with ?DateTime= and store its new and edited events.

    `held` keeps the state decoded from one day to the next while no one writes it.
    """
    result = client.fetch_events(params={"DateTime": day}, headroom=HEADROOM)
    report.requests += result.requests
    raws = result.events or []
    events = validate_all(raws, metrics)
    if len(raws) >= DAY_CAP:
        report.truncated.append(day)
        log.warning("backfill %s: the API answered %d events, its cap: the day is possibly truncated", day, len(raws))
    sub_run_id = new_run_id()
    state = held.load(storage, sub_run_id, retention_days)
    seen = dict(state.seen)
    archived: dict[int, Version] = {}
    for other_day in sorted({day} | {event.day for event in events}):
        latest = latest_versions(storage, other_day)
        for event_id, version in latest.items():
            seen[event_id] = (version.event.hash, other_day, "")
        if other_day == day:
            archived = latest
    changes = find_changes(events, seen)
    if changes.stored:
        write_events(storage, changes.stored, sub_run_id)
        commit_state(storage, state, changes.stored, [], run_id=sub_run_id, retention_days=retention_days, metrics=metrics)
    return DayAnswer(day, len(raws), len(changes.new), len(changes.updated), events, result.served_at, archived,
                     state.seen, answered_ids(raws))


def run_backfill(
    storage: Storage, client: PolisenClient, metrics: RunMetrics, days: list[str], *, retention_days: int,
) -> BackfillReport:
    """Backfill days oldest first, ticking each off; stops cleanly on the rate limit or an API error."""
    report = BackfillReport()
    days = sorted(set(days))
    pending: dict[str, int] | None = None  # as the last tick-off left the queue
    held = HeldState()
    with metrics.step("backfill"):
        for number, day in enumerate(days, start=1):
            if (stop := interrupt.requested()) is not None:  # between two days: a safe point
                report.stopped = str(stop)
                break
            try:
                answer = backfill_day(storage, client, metrics, day, retention_days=retention_days, report=report,
                                      held=held)
            except RateLimited as error:
                report.stopped = str(error)
                log.warning("backfill paused at %s: %s; it continues next run", day, error)
                break
            except (ApiError, InvalidAnswer) as error:
                report.stopped = str(error)
                log.error("backfill stopped at %s: %s; it continues next run", day, error)
                pending = fail_day(storage, day)
                break
            pending = finish_day(storage, day)
            report.days_done.append(day)
            report.fetched += answer.fetched
            report.new += answer.new
            report.updated += answer.updated
            log.info("backfill %s (%d/%d): %d events, %d new, %d updated, %d already archived",
                     day, number, len(days), answer.fetched, answer.new, answer.updated,
                     answer.fetched - answer.new - answer.updated)
    report.pending = sorted(load_progress(storage).pending if pending is None else pending)
    metrics.count(backfill_days=len(report.days_done), backfill_events=report.fetched, backfill_new=report.new,
                  backfill_updated=report.updated, backfill_requests=report.requests,
                  backfill_truncated_days=len(report.truncated), backfill_pending_days=len(report.pending))
    metrics.info["backfill"] = report.as_dict()
    log.info("backfill summary: %d of %d days done, %d events, %d new, %d updated, %d possibly truncated%s; "
             "%d days still pending%s",
             len(report.days_done), len(days), report.fetched, report.new, report.updated, len(report.truncated),
             f" ({', '.join(report.truncated)})" if report.truncated else "", len(report.pending),
             f" from {report.pending[0]}" if report.pending else "")
    return report


def queue_gap(storage: Storage, metrics: RunMetrics, gap: Gap, *, max_days: int) -> bool:
    """Report a gap and queue its newest max_days days; True when days were queued.

    Called before the run stores the answer: once the state knows the answer's events the
    next run sees no gap, so a crash between the state write and the queue write would
    lose the gap's days for good.
    """
    log.warning("possible gap in the archive from %s to %s: %s", gap.first_day, gap.last_day, gap.reason)
    metrics.info["gap"] = gap.as_dict()
    metrics.count(gap_days=len(gap.days()))
    days = gap.days()
    queued, skipped = (days[-max_days:], days[:-max_days]) if max_days else ([], days)
    if skipped:
        log.warning("not backfilling %s..%s automatically (BACKFILL_MAX_DAYS=%d); run "
                    "collect_events.py --backfill %s..%s", skipped[0], skipped[-1], max_days,
                    skipped[0], skipped[-1])
    if queued:
        queue_days(storage, queued)
    return bool(queued)


def heal_gaps(
    storage: Storage, client: PolisenClient, metrics: RunMetrics, *,
    max_days: int, retention_days: int, progress: Progress | None = None,
) -> BackfillReport | None:
    """After a regular run: work off the queue of days to backfill (see queue_gap).

    `progress` is the queue as read during the run (in parallel with it, so a run with
    nothing pending pays no extra round trip); pass None to read it again (a gap was queued).
    """
    if not max_days:
        return None
    pending = sorted((progress or load_progress(storage)).pending)
    return run_backfill(storage, client, metrics, pending, retention_days=retention_days) if pending else None


def backfill_on_demand(
    storage: Storage, client: PolisenClient, metrics: RunMetrics, days: list[str], *, retention_days: int,
) -> BackfillReport:
    """`--backfill A..B`: queue the days (so an interrupted backfill is continued) and fetch them."""
    queue_days(storage, days)
    return run_backfill(storage, client, metrics, days, retention_days=retention_days)
