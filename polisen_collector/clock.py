"""The one clock of the collector: every "now" and "today" is read here (UTC).

Tests that need another time pass their own callable where a function takes `now`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_today() -> date:
    return utc_now().date()


def epoch_seconds() -> float:
    """Now as Unix time, for ledgers that compare times as numbers."""
    return utc_now().timestamp()
