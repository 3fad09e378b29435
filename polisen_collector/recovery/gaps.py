"""Noticing a gap: the time since the last stored answer is longer than the feed can cover.

The feed shows only the latest ~500 publications (about a week). The state records when
the answer stored last was served (`last_answer_at`); a new answer covers the publications
back to roughly its own oldest events. If that start lies after our last answer, whatever
was published in between may have scrolled out, and those days are a gap: backfill.py
fetches them with `?DateTime=`. A known id in the answer proves nothing (real answers carry
stragglers dated days earlier at their end, and old-dated events are published late), so
no id is trusted: only times. What a date-based backfill cannot find (late publications
filed under old dates) the rolling audit (audit.py) finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from polisen_collector.archive.events import Event
from polisen_collector.archive.state import Entry
from polisen_collector.clock import sweden_today

STRAGGLER_SHARE = 0.02
"""Share of an answer's oldest events taken for stragglers (10 of 500): real answers carry a handful."""
PUBLICATION_MARGIN = timedelta(hours=12)
"""Slack for events published hours after their own time (99% within 5 h in recorded data)."""


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


def parse_day_range(text: str, today: date | None = None) -> list[str]:
    """`2026-05-01..2026-05-20` (or one day) -> its days; ValueError saying what is wrong.

    A range reaching past `today` (Sweden's date by default) is refused: the API has no events
    of days to come, and a request for one is wasted on its rate limits."""
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
    today = today or sweden_today()
    if last > today:
        raise ValueError(f"{text!r} reaches past today ({today} in Sweden): the API has no events of days to come")
    return day_range(first, last)


def coverage_start(events: list[Event]) -> datetime:
    """Where the answer's dense range of events begins: its oldest times, a few stragglers left out.

    Real answers end with a handful of events dated days (or months) earlier; the oldest
    STRAGGLER_SHARE of the answer's times is ignored, so one straggler cannot stretch the
    window the feed seems to cover.
    """
    times = sorted(event.when for event in events)
    return times[min(len(times) - 1, int(len(times) * STRAGGLER_SHARE))]


def detect_gap(events: list[Event], last_answer_at: datetime | None, seen: dict[int, Entry]) -> Gap | None:
    """A gap, when this answer may not reach back to the last one we stored.

    The answer holds every publication since about its coverage start plus the time
    events take to be published (PUBLICATION_MARGIN); when our last answer is older than
    that, the days from it (less the margin: events are dated before they are published)
    to the coverage start's day are a gap.

    A state written before `last_answer_at` existed falls back to the newest day an answer
    showed one of its ids (its start, to err on the side of a backfill). A fresh archive
    (empty state) has nothing to be missing from: use --backfill.
    """
    if not events:
        return None
    if last_answer_at is None:
        if not seen:
            return None
        last_seen = max(entry[2] for entry in seen.values())
        last_answer_at = datetime.combine(date.fromisoformat(last_seen), datetime.min.time(), UTC)
    start = coverage_start(events)
    if start + PUBLICATION_MARGIN <= last_answer_at:
        return None
    first = min((last_answer_at - PUBLICATION_MARGIN).astimezone(UTC).date(), start.date())
    reason = (f"the feed's answer reaches back to {start.isoformat(timespec='minutes')}, "
              f"after the last answer we stored ({last_answer_at.isoformat(timespec='minutes')}): "
              "events published in between may have scrolled out")
    return Gap(first.isoformat(), start.date().isoformat(), reason)
