"""What an event from the Polisen API is: validation, its date, and a hash of its content.

The archive stores events exactly as received; everything here only reads them.

Sane values only (docs/operations.md, "Hostile input"): an id is an integer from 1 to 2**53
(exact in JSON readers that use doubles, DuckDB, pandas, JavaScript), and a datetime lies between
2000-01-01 and two days after now. Anything else is an invalid event, in an answer and when the
archive is read back (export, state rebuild), so year-9999 dates never turn into a "gap".
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from polisen_collector.clock import utc_now
from polisen_collector.readback import MAX_ID

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
SHOWN_CHARS = 100

# The API writes "2026-05-20 9:38:09 +02:00": the hour may have one digit, which
# datetime.fromisoformat rejects, so the pieces are read explicitly.
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?\s*([+-])(\d{2}):?(\d{2})$"
)


class InvalidEvent(ValueError):
    """An event that cannot be archived; the message says why."""


def parse_event_datetime(text: object) -> datetime:
    """Parse the API's `datetime` field into an aware datetime."""
    match = _DATETIME.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InvalidEvent(f"unparseable datetime {shown(text)}")
    year, month, day, hour, minute, second, sign, off_h, off_m = match.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )
    except ValueError as error:
        raise InvalidEvent(f"impossible datetime {shown(text)}: {error}") from None


def content_hash(event: dict[str, Any]) -> str:
    """A short fingerprint of an event's whole content, independent of key order."""
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Event:
    """A validated event: the API object as received plus what the collector derives from it."""

    id: int
    when: datetime
    raw: dict[str, Any]
    hash: str

    @property
    def day(self) -> str:
        """The event's own local date, which names its partition."""
        return self.when.date().isoformat()


def shown(value: Any) -> str:
    """A value in an error message, cut to SHOWN_CHARS: a hostile answer must not flood the log."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"


def validate_event(raw: Any, now: datetime | None = None) -> Event:
    """Check one API object; raise InvalidEvent saying what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidEvent(f"not an object but {type(raw).__name__}")
    event_id = raw_id(raw)
    if event_id is None:
        raise InvalidEvent(f"id {shown(raw.get('id'))} is not a positive integer up to 2**53")
    try:
        when = parse_event_datetime(raw.get("datetime"))
    except InvalidEvent as error:
        raise InvalidEvent(f"id {event_id}: {error}") from None
    if not EARLIEST <= when <= (now or utc_now()) + FUTURE_SLACK:
        raise InvalidEvent(f"id {event_id}: datetime {shown(raw['datetime'])} is not between 2000-01-01 "
                           "and two days from now")
    return Event(id=event_id, when=when, raw=raw, hash=content_hash(raw))


def raw_id(raw: Any) -> int | None:
    """The id of an API object, whatever else is wrong with it; None when it has no usable id."""
    event_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(event_id, bool) or not isinstance(event_id, int) or not 1 <= event_id <= MAX_ID:
        return None
    return event_id


def answered_ids(raws: list[Any]) -> frozenset[int]:
    """Every id an answer holds, its invalid events' too: an event present but invalid is not gone."""
    return frozenset(event_id for event_id in map(raw_id, raws) if event_id is not None)


def partition_prefix(day: str) -> str:
    """`2026-05-20` -> `events/2026/05/20/`, the folder of that day's objects."""
    year, month, dom = day.split("-")
    return f"events/{year}/{month}/{dom}/"


def encode_jsonl(raws: list[dict[str, Any]]) -> bytes:
    """One event per line, UTF-8, exactly the fields the API sent."""
    return "".join(json.dumps(raw, ensure_ascii=False) + "\n" for raw in raws).encode("utf-8")
