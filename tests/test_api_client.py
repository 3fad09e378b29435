"""The API client against the fake API over real HTTP: compression, retries, limits."""

from __future__ import annotations

import json

import pytest
from fake_polisen import FakePolisenServer

from polisen_collector.api.client import ApiError, ApiOptions, PolisenClient, user_agent


def client_for(url: str, **options) -> PolisenClient:
    defaults = {"contact_email": "ops@example.invalid", "backoff_factor": 0.01, "read_timeout": 5}
    return PolisenClient(ApiOptions(url=url, **{**defaults, **options}))


def test_fetch_asks_for_gzip_and_identifies_itself(fake_api, snapshot_bodies):
    result = client_for(fake_api.url).fetch_events()
    assert result.events == json.loads(snapshot_bodies[0])
    assert (result.status, result.retries, result.requests) == (200, 0, 1)
    assert result.bytes_decoded == len(snapshot_bodies[0])
    assert result.bytes_wire < result.bytes_decoded / 4
    headers = fake_api.requests[0].headers
    assert "gzip" in headers["Accept-Encoding"]
    assert headers["User-Agent"] == user_agent("ops@example.invalid")
    assert "polisen-events-collector/" in headers["User-Agent"] and "ops@example.invalid" in headers["User-Agent"]


def test_unchanged_feed_is_a_304_with_the_etag(fake_api):
    client = client_for(fake_api.url)
    first = client.fetch_events()
    second = client.fetch_events(etag=first.etag)
    assert (second.status, second.events, second.bytes_decoded) == (304, None, 0)
    assert fake_api.requests[1].headers["If-None-Match"] == first.etag


@pytest.mark.parametrize("fault", ["status:500", "status:502", "status:503", "status:504", "429:0",
                                   "empty", "truncated", "reset", "cut", "object"])
def test_each_transient_fault_is_retried(fake_api, snapshot_bodies, fault):
    fake_api.add_faults(fault, fault)
    result = client_for(fake_api.url).fetch_events()
    assert result.events == json.loads(snapshot_bodies[0])
    assert (result.retries, result.requests) == (2, 3)
    assert len(fake_api.requests) == 3


def test_retries_are_bounded_and_the_error_says_why(fake_api):
    fake_api.add_faults(*["status:503"] * 10)
    with pytest.raises(ApiError, match="HTTP 503 Service Unavailable after 3 retries") as failure:
        client_for(fake_api.url, max_retries=3).fetch_events()
    assert len(fake_api.requests) == 4
    assert (failure.value.retries, failure.value.requests) == (3, 4)


def test_empty_bodies_exhaust_the_same_retry_budget(fake_api):
    fake_api.add_faults(*["empty"] * 10)
    with pytest.raises(ApiError, match="empty body.*after 3 retries") as failure:
        client_for(fake_api.url, max_retries=3).fetch_events()
    assert len(fake_api.requests) == 4
    assert (failure.value.retries, failure.value.requests) == (3, 4)


@pytest.mark.slow  # 2 s of real Retry-After waits
def test_retry_after_is_honoured_and_capped(fake_api):
    fake_api.add_faults("429:1", "429:3600")
    result = client_for(fake_api.url, retry_after_max=1).fetch_events()
    assert result.retries == 2
    times = [request.time for request in fake_api.requests]
    assert times[1] - times[0] >= 1.0
    assert 1.0 <= times[2] - times[1] < 30


def test_not_found_is_not_retried(fake_api):
    with pytest.raises(ApiError, match="HTTP 404"):
        client_for(fake_api.url.replace("/api/events", "/api/nothing")).fetch_events()
    assert len(fake_api.requests) == 1


def test_a_gzip_bomb_is_refused_without_filling_memory(fake_api):
    fake_api.add_faults("bomb:100000000")
    with pytest.raises(ApiError, match="API_MAX_BODY_BYTES=20000000"):  # a generous read timeout: the fake
        client_for(fake_api.url, read_timeout=60).fetch_events()  # compresses the bomb as it sends, slow on a busy box
    assert len(fake_api.requests) == 1


def test_unreachable_api_fails_with_a_clear_message():
    with FakePolisenServer([b"[]"]) as server:
        url = server.url
    with pytest.raises(ApiError, match="cannot reach") as failed:
        client_for(url, max_retries=1).fetch_events()
    port = url.split(":")[2].split("/")[0]
    assert str(failed.value) == (f"cannot reach {url}: HTTPConnection(host='127.0.0.1', port={port}): Failed to "
                                 "establish a new connection: [Errno 111] Connection refused"), "no internal class name"


def test_a_slow_answer_times_out_and_is_retried(fake_api, snapshot_bodies):
    fake_api.add_faults("slow:2")
    result = client_for(fake_api.url, read_timeout=0.5).fetch_events()
    assert result.events == json.loads(snapshot_bodies[0])
    assert result.retries == 1
