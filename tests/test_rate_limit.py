"""The API's usage rules hold across runs, backfill and retries; a fake clock, never real sleeps."""

from __future__ import annotations

import itertools

import pytest
from fake_clock import FakeClock

from polisen_collector.api.client import ApiError, ApiOptions, PolisenClient
from polisen_collector.api.rate_limit import RateLimited, RateLimiter
from polisen_collector.config import ConfigError, load_settings
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.backfill import backfill_on_demand, heal_gaps
from polisen_collector.recovery.gaps import parse_day_range
from polisen_collector.storage.local import LocalStorage

START = 1_780_000_000.0


def new_client(url: str, storage: LocalStorage, clock: FakeClock, max_retries: int = 3) -> PolisenClient:
    """A fresh client and limiter, as a new run builds them: only the store carries the ledger."""
    limiter = RateLimiter(storage, clock=clock, sleep=clock.sleep)
    return PolisenClient(ApiOptions(url=url, max_retries=max_retries, backoff_factor=0.5), sleep=clock.sleep,
                         limiter=limiter)


def assert_polite(times: list[float]) -> None:
    times = sorted(times)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 10, min(gaps)
    assert max(sum(1 for t in times if start <= t < start + 3600) for start in times) <= 60
    assert max(sum(1 for t in times if start <= t < start + 86400) for start in times) <= 1440


@pytest.mark.slow
def test_long_backfill_with_retries_keeps_to_the_rules_across_runs(fake_api, tmp_path):
    clock = FakeClock(START)
    fake_api.state.clock = clock
    fake_api.serve(113)
    storage = LocalStorage(tmp_path / "data")
    days = parse_day_range("2026-04-01..2026-06-05")
    fake_api.add_faults("none", "429:25", "none", "status:503", "empty", "reset")

    client = new_client(fake_api.url, storage, clock)
    report = backfill_on_demand(storage, client, RunMetrics("first"), days, retention_days=30)
    client.close()
    assert report.stopped and "at most 50 requests an hour" in report.stopped
    assert 40 <= len(report.days_done) < len(days) and report.pending[0] == days[len(report.days_done)]
    runs = 1
    while report.pending:
        clock.now += 1800
        client = new_client(fake_api.url, storage, clock)
        report = heal_gaps(storage, client, RunMetrics(f"run{runs}"), max_days=31, retention_days=30)
        client.close()
        runs += 1
    assert runs >= 2

    sent = [request.time for request in fake_api.requests]
    assert len(sent) == len(days) + 4, "one request per day and one per retry"
    assert_polite(sent)
    asked = [r.query["DateTime"][0] for r in fake_api.requests]
    assert list(dict.fromkeys(asked)) == days, "oldest day first, each until it succeeded"
    assert any(seconds >= 25 for seconds in clock.slept), "Retry-After 25 was honoured"


def test_retry_after_is_honoured_by_the_next_run_too(fake_api, tmp_path):
    clock = FakeClock(START)
    fake_api.state.clock = clock
    storage = LocalStorage(tmp_path / "data")
    fake_api.add_faults("429:30", "429:40")
    client = new_client(fake_api.url, storage, clock, max_retries=1)
    with pytest.raises(ApiError, match="HTTP 429"):
        client.fetch_events()
    first, second = (request.time for request in fake_api.requests)
    assert second - first == 30

    client = new_client(fake_api.url, storage, clock)
    assert client.fetch_events().status == 200
    assert fake_api.requests[2].time - second == 40


def test_a_long_wait_stops_instead_of_sleeping(tmp_path):
    clock = FakeClock(START)
    storage = LocalStorage(tmp_path / "data")
    limiter = RateLimiter(storage, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        limiter.acquire()
    assert clock.now - START == 590
    with pytest.raises(RateLimited, match="at most 60 requests an hour; the next request is allowed in 3010 s"):
        RateLimiter(storage, clock=clock, sleep=clock.sleep).acquire()
    assert clock.now - START == 590


def test_rate_limit_off_is_refused_for_polisen_se():
    with pytest.raises(ConfigError, match="API_RATE_LIMIT=off is refused"):
        load_settings(environ={"API_RATE_LIMIT": "off"}, env_file=None)
    assert not load_settings(environ={"API_RATE_LIMIT": "off", "POLISEN_API_URL": "http://127.0.0.1:9/api/events"},
                             env_file=None).rate_limit
