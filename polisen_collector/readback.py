"""Values read back from the tools' own records, checked as strictly as a setting.

The state, the page queue, the rate ledger, the audit's and backfill's progress, the withdrawal
hints and the host's small files are written by the collector, but read back from folders and
buckets anyone with access may change: a value of the wrong type, `nan`, a time without its
offset or a date in another ISO form must not crash every later run, nor slip past a
comparison. Each check returns the value in the one form the collector writes, or raises
ValueError saying what is wrong (the caller names the field and the record).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from polisen_collector.messages import one_line

T = TypeVar("T")

MAX_ID = 2**53
"""The largest event id: the integers JSON carries exactly (an answer's ids are checked against it too)."""
MAX_TEXT = 1000
"""Longest text a record holds (a url, a hash, a validator): ours are far shorter."""


def shown(value: Any) -> str:
    """A value read back, in an error message: its repr, one line, cut short."""
    return one_line(repr(value), 60)


def event_id(key: Any) -> int:
    """An event id, as a JSON key (`"650297"`) or a number; ValueError otherwise."""
    if type(key) is int:
        number = key
    elif isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 16 and key[0] != "0":
        number = int(key)
    else:
        number = 0
    if not 1 <= number <= MAX_ID:
        raise ValueError(f"{shown(key)} is not an event id")
    return number


def iso_day(value: Any) -> str:
    """A date as the collector writes it, `2026-05-20` (not `20260520` nor `2026-W21-3`, which
    Python reads too but which compare wrongly as text); ValueError otherwise."""
    if isinstance(value, str) and len(value) == 10:
        try:
            if date.fromisoformat(value).isoformat() == value:
                return value
        except ValueError:
            pass
    raise ValueError(f"{shown(value)} is not a date (YYYY-MM-DD)")


def utc_time(value: Any) -> datetime:
    """An ISO time with its UTC offset, as an aware datetime in UTC; ValueError otherwise (a
    naive time cannot be compared with the clock's)."""
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) and len(value) <= 40 else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise ValueError(f"{shown(value)} is not a time with its UTC offset")
    return stamp.astimezone(UTC)


def is_finite_number(value: Any) -> bool:
    """An int or float that is not a bool, NaN or infinite: `nan` makes every comparison false."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_short_text(value: Any, limit: int = MAX_TEXT) -> bool:
    """A string of at most `limit` printable characters: no line break, no control character
    (which would, sent as a header, fail every request)."""
    return isinstance(value, str) and len(value) <= limit and value.isprintable()


def named(name: str, check: Callable[[Any], T], value: Any) -> T:
    """`check(value)`, its ValueError naming the field: `due 'garbage' is not a time ...`."""
    try:
        return check(value)
    except ValueError as error:
        raise ValueError(f"{name} {error}") from None
