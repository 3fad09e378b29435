"""The API's usage rules, kept across runs and hosts: a ledger of recent request times.

polisen.se asks for at least 10 s between calls, at most 60 an hour and 1440 a day.
Every request (first attempts, urllib3 retries, backfill days) asks `acquire()` first,
and is written to the ledger *before* it is sent, with a conditional write, so two
processes cannot take the same slot. The ledger lives in LOG_DIR (`api-requests.json`),
the host's own folder: checking it costs no network round trip on the run's critical
path, which a ledger in a remote bucket would (a read and a write before every request).
The rules bind each client; every host keeps its own ledger.

A server's Retry-After is kept in the ledger (`not_before`) so later runs honour it too, up
to MAX_RETRY_AFTER: a longer one (100000 s) is cut to that, so a bogus header cannot stop
collection for days. Times in the ledger later than now (the clock was stepped back, a VM
restored from a snapshot) are read as now, with a WARNING, instead of blocking every run; so is
any value that is not a finite number (`nan` would make every comparison false and let every
request through).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from polisen_collector.api.client import ApiError
from polisen_collector.clock import epoch_seconds
from polisen_collector.messages import one_line
from polisen_collector.readback import is_finite_number
from polisen_collector.storage.base import Storage, StoredObject, update_object

log = logging.getLogger("polisen.rate_limit")

LEDGER_OBJECT = "api-requests.json"
LEDGER_FORMAT = 1
MIN_INTERVAL = 10.0
PER_HOUR = 60
PER_DAY = 1440
HOUR, DAY = 3600.0, 86400.0
MAX_WAIT = 60.0
MAX_RETRY_AFTER = 3600.0


class RateLimited(ApiError):
    """The next request would break the API's usage rules unless we waited too long."""

    def __init__(self, wait: float, reason: str) -> None:
        super().__init__(f"API rate limit: {reason}; the next request is allowed in {wait:.0f} s")
        self.wait = wait


def decode_ledger(data: bytes, now: float) -> tuple[list[float], float]:
    """Request times and the Retry-After deadline, checked as strictly as a setting.

    What cannot be read is read on the strict side: a value that is not a finite number (`nan`,
    a string) as a request made `now`, an unreadable ledger as one request made now, each with
    one WARNING. The caller writes the ledger back, so it is clean again after one request.
    """
    try:
        document = json.loads(data)
        if document.get("format") != LEDGER_FORMAT:
            raise ValueError(f"not a ledger of format {LEDGER_FORMAT}")
        entries = document["requests"]
        not_before = document.get("not_before", 0.0)
        if not isinstance(entries, list):
            raise TypeError(f"'requests' is a {type(entries).__name__}, not a list")
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        log.warning("%s is unreadable (%s); reading it as one request made now", LEDGER_OBJECT, one_line(str(error)))
        return [now], 0.0
    times = [value if is_finite_number(value) else now for value in entries]
    bad = [value for value in entries if not is_finite_number(value)]
    if not is_finite_number(not_before):
        bad.append(not_before)
        not_before = now
    if bad:
        log.warning("%s holds %d values that are not times (first: %s); reading them as now",
                    LEDGER_OBJECT, len(bad), one_line(repr(bad[0]), 60))
    return sorted(times), float(not_before)


def encode_ledger(times: list[float], not_before: float) -> bytes:
    document = {"format": LEDGER_FORMAT, "not_before": not_before, "requests": times}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def next_allowed(times: list[float], not_before: float, now: float, headroom: int = 0) -> tuple[float, str]:
    """The earliest moment the next request may go out, and which rule sets it.

    `headroom` requests of each hourly and daily budget are left for others (the regular
    runs), so a long backfill never starves the collection itself.
    """
    candidates = [(not_before, "the API asked us to wait (Retry-After)")]
    if times:
        candidates.append((times[-1] + MIN_INTERVAL, f"at least {MIN_INTERVAL:.0f} s between requests"))
    for window, limit, label in ((HOUR, PER_HOUR, "an hour"), (DAY, PER_DAY, "a day")):
        allowed = limit - headroom
        recent = [t for t in times if t > now - window]
        if len(recent) >= allowed:
            candidates.append((recent[len(recent) - allowed] + window, f"at most {allowed} requests {label}"))
    return max(candidates)


class RateLimiter:
    """Waits for a free slot (up to max_wait) and records each request in the ledger."""

    def __init__(
        self, storage: Storage, *, clock: Callable[[], float] = epoch_seconds,
        sleep: Callable[[float], None] = time.sleep, max_wait: float = MAX_WAIT,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait

    def _update(self, change: Callable[[list[float], float], tuple[list[float], float]]) -> None:
        """Change the ledger (request times, Retry-After deadline) with a conditional write."""

        def changed(stored: StoredObject | None) -> bytes:
            times, not_before = decode_ledger(stored.data, self.clock()) if stored else ([], 0.0)
            times, not_before = change(*_no_future(times, not_before, self.clock()))
            return encode_ledger([t for t in times if t > self.clock() - DAY], not_before)

        update_object(self.storage, LEDGER_OBJECT, changed)

    def acquire(self, min_wait: float = 0.0, headroom: int = 0) -> float:
        """Block until a request may be sent, record it, and return the time it was taken.

        Waits at least `min_wait` (a retry's backoff or Retry-After) and whatever the rules
        add; raises RateLimited instead when that wait would exceed max_wait.
        """
        earliest = self.clock() + min_wait
        taken = 0.0

        def take_slot(times: list[float], not_before: float) -> tuple[list[float], float]:
            nonlocal taken
            now = self.clock()
            allowed, reason = next_allowed(times, not_before, now, headroom)
            start = max(allowed, earliest, now)
            if start - now > self.max_wait:
                raise RateLimited(start - now, reason if allowed >= earliest else "a retry must wait (backoff or Retry-After)")
            if start > now:
                if allowed > earliest:
                    log.info("waiting %.1f s: %s", start - now, reason)
                self.sleep(start - now)
            taken = max(self.clock(), start)
            return [*times, taken], not_before

        self._update(take_slot)
        return taken

    def defer(self, seconds: float) -> None:
        """Remember a server's Retry-After (at most MAX_RETRY_AFTER) so the next runs honour it too."""
        if seconds > MAX_RETRY_AFTER:
            log.warning("the API asked us to wait %.0f s (Retry-After); waiting the maximum, %.0f s", seconds, MAX_RETRY_AFTER)
        wait = min(seconds, MAX_RETRY_AFTER)
        self._update(lambda times, not_before: (times, max(not_before, self.clock() + wait)))


def _no_future(times: list[float], not_before: float, now: float) -> tuple[list[float], float]:
    """Request times later than now read as now, and so does a Retry-After deadline that no
    Retry-After could have set (more than MAX_RETRY_AFTER ahead)."""
    impossible = not_before > now + MAX_RETRY_AFTER
    ahead = max([t - now for t in times] + [not_before - now if impossible else 0.0, 0.0])
    if ahead > 0:
        log.warning("%s holds times up to %.0f s in the future (was the clock stepped back?); "
                    "reading them as now", LEDGER_OBJECT, ahead)
        times = [min(t, now) for t in times]
        not_before = now if impossible else not_before
    return times, not_before
