"""The one clock of the collector: every "now" and "today" is read here (UTC).

Tests that need another time pass their own callable where a function takes `now`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_today() -> date:
    return utc_now().date()
