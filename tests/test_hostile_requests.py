"""Hostile answers to the collector's requests, feed and pages (issue 22): a page request never
leaves the site, one deadline holds a request with its redirects and retries, a bad page url
or a 429 never stalls the page step, and a Retry-After is honoured when usable, ignored when not.

Each attack is served by the fake site (tests/fake_polisen.py, `add_faults`/`add_page_faults`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import pytest
from archive_truth import assert_archive_complete
from fake_clock import FakeClock
from fake_polisen import FakePolisenServer
from test_pages import T0, events_of, page_bytes, page_client, stored_pages

from polisen_collector.api.client import ApiError, ApiOptions, PolisenClient
from polisen_collector.archive.events import validate_event
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.pages.collect import collect_pages
from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue
from polisen_collector.storage.local import LocalStorage


def queued(storage: LocalStorage) -> dict:
    return decode_queue(storage.get(QUEUE_OBJECT).data, storage)[0]


def pages_run(storage, client, events, hours: float = 0.0, **options):
    metrics = RunMetrics("run")
    report = collect_pages(storage, client, events, {}, metrics, max_pages=10,
                           now=lambda: T0 + timedelta(hours=hours), **options)
    return report, metrics


# -- a page request never leaves the site (row 1) ---------------------------------------------------


def test_a_page_redirected_to_another_host_is_a_failed_page_and_the_other_host_gets_nothing(
        fake_api, snapshot_bodies, tmp_path, caplog):
    fake_api.serve(0)
    event = events_of(snapshot_bodies[0])[0]
    with FakePolisenServer(snapshot_bodies) as other:  # another origin (its port), serving the same page
        other.serve(0)
        fake_api.add_page_faults(f"redirect:{other.site_url}{event.raw['url']}")
        storage = LocalStorage(tmp_path)
        with caplog.at_level(logging.WARNING):
            report, _ = pages_run(storage, page_client(fake_api, interval=0.0), [event])
        assert other.requests == [], "the request never reached the other host"
    assert stored_pages(storage, [event]) == {}
    assert (report.failed, queued(storage)[event.id].tries) == (1, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"it leaves the site {fake_api.site_url}" in warnings[0], warnings
    report, _ = pages_run(storage, page_client(fake_api, interval=0.0), [event], hours=1)
    assert report.stored == 1, "tried again on a later run, from the site itself"


# -- one deadline for a request and its redirects (row 2) -------------------------------------------


def test_a_page_behind_a_chain_of_trickling_redirects_meets_one_deadline(fake_api, snapshot_bodies, tmp_path):
    """Each hop trickles in well within the 0.8 s deadline; the three together do not.
    Before issue 22 the client gave every hop a fresh deadline and stored the page."""
    fake_api.serve(0)
    event = events_of(snapshot_bodies[0])[0]
    fake_api.add_page_faults(*[f"trickle-redirect:0.004:{event.raw['url']}"] * 3)
    storage = LocalStorage(tmp_path)
    client = page_client(fake_api, interval=0.0, connect_timeout=0.2, read_timeout=0.3)
    report, _ = pages_run(storage, client, [event])
    assert "the answer took longer than 0.8 s" in report.stopped
    assert stored_pages(storage, [event]) == {}
    assert len(fake_api.page_requests()) <= 2, "the chain was cut within the one deadline"


def test_a_page_gets_no_more_than_what_is_left_of_the_page_step(fake_api, snapshot_bodies, tmp_path):
    """The page step's limit holds inside a page too: a page still trickling when the step's
    time is up is cut then, and, not being the page's fault, costs it no try."""
    fake_api.serve(0)
    event = events_of(snapshot_bodies[0])[0]
    fake_api.add_page_faults("trickle:0.01")
    storage = LocalStorage(tmp_path)
    report, _ = pages_run(storage, page_client(fake_api, interval=0.0, read_timeout=5), [event], budget_seconds=0.3)
    assert report.stopped == f"the page step's time is used up during the page of event {event.id}"
    entry = queued(storage)[event.id]
    assert (entry.tries, entry.status, report.failed) == (0, "new", 0)


def test_the_feed_behind_a_chain_of_trickling_redirects_meets_one_deadline(collector, fake_api, snapshot_bodies):
    fake_api.add_faults(*["trickle-redirect:0.004:/api/events"] * 3)
    slow = {"API_CONNECT_TIMEOUT": "0.2", "API_READ_TIMEOUT": "0.3"}
    result = collector.run(env=slow)
    assert result.returncode == 1, result.log
    assert "the answer took longer than 0.8 s (API_CONNECT_TIMEOUT + 2 x API_READ_TIMEOUT" in result.stderr
    assert collector.health()["status"] == "failed"
    fake_api.state.faults.clear()  # the next run, with the default timeouts: 0.8 s is too short on a busy machine
    assert collector.run().returncode == 0
    assert_archive_complete(collector.data_dir, snapshot_bodies[:1], copies_allowed=False)


def test_a_deadline_cut_says_how_much_of_the_body_had_arrived(fake_api, snapshot_bodies):
    fake_api.add_faults("trickle:0.01")
    client = PolisenClient(ApiOptions(url=fake_api.url, connect_timeout=0.1, read_timeout=0.1))
    with pytest.raises(ApiError) as cut:
        client.fetch_events()
    arrived = int(str(cut.value).split("; ")[1].split(" bytes")[0])
    assert 0 < arrived < len(snapshot_bodies[0]), str(cut.value)  # about 30 arrive in 0.3 s; before issue 22 it said 0


# -- a page url off the site (row 3) -----------------------------------------------------------------


@pytest.mark.parametrize("url", ["//collector-test.invalid/x", "https://collector-test.invalid/x", "/a b", "x/y"])
def test_an_event_whose_url_is_not_a_path_on_the_site_is_failed_at_once(fake_api, snapshot_bodies, tmp_path, url):
    fake_api.serve(0)
    good = events_of(snapshot_bodies[0])[0]
    odd = validate_event({**json.loads(snapshot_bodies[0])[1], "url": url})
    storage = LocalStorage(tmp_path)
    report, _ = pages_run(storage, page_client(fake_api, interval=0.0), [odd, good])
    assert (queued(storage)[odd.id].status, queued(storage)[odd.id].tries) == ("failed", 0)
    assert (report.stopped, report.stored) == (None, 1), "the step goes on with the others"
    pages_run(storage, page_client(fake_api, interval=0.0), [odd, good], hours=100)
    assert {r.path for r in fake_api.page_requests()} == {good.raw["url"]}, "never asked for"


# -- 429 and Retry-After on pages (row 4, and 404/410 in "also seen") -------------------------------


def test_a_page_answering_429_counts_a_try_waits_its_retry_after_and_the_others_go_on(
        fake_api, snapshot_bodies, tmp_path):
    fake_api.serve(0)
    events = sorted(events_of(snapshot_bodies[0])[:3], key=lambda event: event.id)
    fake_api.add_page_faults("429:7200")  # the first page due: the lowest id
    storage = LocalStorage(tmp_path)
    client = page_client(fake_api, interval=0.0)
    report, _ = pages_run(storage, client, events)
    assert (report.requests, report.stored, report.failed, report.stopped) == (3, 2, 1, None)
    limited = queued(storage)[events[0].id]
    assert (limited.tries, limited.due) == (1, (T0 + timedelta(hours=2)).isoformat())
    assert pages_run(storage, client, events, hours=1)[0].requests == 0, "Retry-After outlasts the 1 h retry"
    assert pages_run(storage, client, events, hours=2)[0].stored == 1
    assert set(stored_pages(storage, events)) == {event.id for event in events}


@pytest.mark.parametrize(("fault", "retry_in"), [
    ("status:404:36000", timedelta(hours=10)),
    ("status:410:36000", timedelta(hours=10)),
    ("status:404:600", timedelta(hours=1)),  # shorter than the 1 h retry: the retry's hour
    ("status:503:999999999", timedelta(hours=24)),  # at most a day
    ("429:garbage", timedelta(hours=1)),  # unusable: the normal retry
])
def test_a_missing_or_failing_page_honours_the_site_s_retry_after(fake_api, snapshot_bodies, tmp_path, fault,
                                                                  retry_in):
    fake_api.serve(0)
    event = events_of(snapshot_bodies[0])[0]
    fake_api.add_page_faults(fault)
    storage = LocalStorage(tmp_path)
    pages_run(storage, page_client(fake_api, interval=0.0), [event])
    entry = queued(storage)[event.id]
    assert (entry.tries, entry.due) == (1, (T0 + retry_in).isoformat())


# -- Retry-After on the feed (row 12) ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["-5", "garbage", "", "1e10", "nan", "1.5", "Sun, 32 Foo 2026 99:00:00 GMT"])
def test_an_unusable_retry_after_is_ignored_and_the_normal_backoff_applies(fake_api, snapshot_bodies, value,
                                                                         caplog):
    fake_api.add_faults(f"429:{value}")
    slept: list[float] = []
    client = PolisenClient(ApiOptions(url=fake_api.url, backoff_factor=1.0), sleep=slept.append)
    result = client.fetch_events()
    assert (result.events, result.retries, slept) == (json.loads(snapshot_bodies[0]), 1, [1.0])
    assert f"API request failed (HTTP 429; its Retry-After {value!r} is unusable); retry 1 of 3 in 1.0 s" in caplog.text


def test_a_retry_after_date_counts_from_the_server_s_date_not_our_clock(fake_api, snapshot_bodies):
    server_now = 1_780_000_000.0  # the fake's Date; far from the test machine's clock
    fake_api.state.clock = FakeClock(server_now)
    fake_api.add_faults(f"429:{formatdate(server_now + 30, usegmt=True)}")
    slept: list[float] = []
    PolisenClient(ApiOptions(url=fake_api.url), sleep=slept.append).fetch_events()
    assert slept == [30.0]


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("000000000000042", 42.0), ("9" * 5000, 999_999_999.0),
    ("-5", None), ("1e10", None), ("nan", None), ("", None), (None, None), ("٣", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
])
def test_retry_after_values(value, seconds):
    from polisen_collector.api.client import retry_after_seconds

    served = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(value, served) == seconds
    assert retry_after_seconds(formatdate(served.timestamp() + 90, usegmt=True), served) == 90.0


def test_the_page_client_still_serves_pages_whole(fake_api, snapshot_bodies):
    """The guards cost nothing to a normal page: whole bytes, in one request."""
    fake_api.serve(0)
    event = events_of(snapshot_bodies[0])[0]
    answer = page_client(fake_api).fetch(event.raw["url"])
    assert (answer.status, answer.body, answer.retry_after) == (200, page_bytes(event.id), None)


def test_a_feed_body_nested_without_end_is_a_bad_body_retried_not_a_crash(fake_api, snapshot_bodies):
    """Before issue 22, run died on the RecursionError of json.loads (an unexpected error, with a traceback)."""
    fake_api.add_faults("nested")
    slept: list[float] = []
    result = PolisenClient(ApiOptions(url=fake_api.url), sleep=slept.append).fetch_events()
    assert (result.events, result.retries) == (json.loads(snapshot_bodies[0]), 1)
