"""The one clock of the collector: every "now" and "today" is read here (UTC).

Tests that need another time pass their own callable where a function takes `now`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_today() -> date:
    return utc_now().date()


def sweden_today() -> date:
    """Today's date in Sweden, whose local dates the API's `?DateTime=` days are."""
    return swedish_date(utc_now())


def swedish_date(moment: datetime) -> date:
    """The date in Sweden at `moment` (a time with its offset): the calendar the events' own dates use."""
    from zoneinfo import ZoneInfo  # the `tzdata` dependency provides it where the system has none

    return moment.astimezone(ZoneInfo("Europe/Stockholm")).date()


def epoch_seconds() -> float:
    """Now as Unix time, for ledgers that compare times as numbers."""
    return utc_now().timestamp()
