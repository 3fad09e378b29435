"""Noticing a gap: the feed's window no longer overlaps what the archive holds.

The feed shows only the latest ~500 events (about a week). After a longer outage the
oldest event of a full answer is one we never saw: everything published between our last
run and that event may have scrolled out. backfill.py fills such gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from polisen_collector.archive.events import Event
from polisen_collector.archive.state import Entry

FULL_WINDOW = 500


@dataclass(frozen=True)
class Gap:
    """Days whose events the feed may no longer show us: first and last are partly covered."""

    first_day: str
    last_day: str
    reason: str

    def days(self) -> list[str]:
        return day_range(date.fromisoformat(self.first_day), date.fromisoformat(self.last_day))

    def as_dict(self) -> dict[str, str]:
        return {"from": self.first_day, "to": self.last_day, "reason": self.reason}


def day_range(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def parse_day_range(text: str) -> list[str]:
    """`2026-05-01..2026-05-20` (or one day) -> its days; ValueError saying what is wrong."""
    start, sep, end = text.partition("..")
    try:
        first = date.fromisoformat(start.strip())
        last = date.fromisoformat(end.strip()) if sep else first
    except ValueError:
        raise ValueError(f"{text!r} is not a day range like 2026-05-01..2026-05-20") from None
    if last < first:
        raise ValueError(f"{text!r} ends before it starts")
    if (last - first).days > 366:
        raise ValueError(f"{text!r} spans more than a year; backfill it in pieces")
    return day_range(first, last)


def detect_gap(answer_size: int, events: list[Event], seen: dict[int, Entry]) -> Gap | None:
    """A gap, when the answer does not overlap what we know and more may have scrolled out.

    The feed is a contiguous window of the newest publications: if any event of it is
    known, the answer that taught us that event reached back to where we were, so nothing
    in between is lost. When none is known and the answer is full (or our last run is
    older than its oldest event's date), events published in between may be lost: the
    missing period runs from the newest day we know to the oldest event's day. Looking at
    the whole answer, not only its oldest event, keeps a state rebuilt after a crash in
    the middle of a first run (some days stored, others not) from looking like a gap.
    A fresh archive (empty state) has nothing to be missing from: use --backfill.
    """
    if not seen or not events:
        return None
    oldest = events[-1]
    if any(event.id in seen for event in events):
        return None
    last_run_day = max(entry[2] for entry in seen.values())
    if answer_size >= FULL_WINDOW:
        reason = f"the answer was full ({answer_size} events) and none of its events were known"
    elif last_run_day < oldest.day:
        reason = f"the last answer we stored ({last_run_day}) is older than the feed's window"
    else:
        return None
    newest_known = max(entry[1] for entry in seen.values())
    return Gap(min(newest_known, oldest.day), oldest.day, reason)
