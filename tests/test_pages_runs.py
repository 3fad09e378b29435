"""The page step in real collector processes: it never decides the run, and kill -9 loses nothing."""

from __future__ import annotations

import gzip
import json
import signal
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Collector, no_bad_line
from fake_polisen import PAGES_DIR, FakePolisenServer

from polisen_collector.archive.events import validate_event
from polisen_collector.export import ExportOptions, ExportSummary, iter_rows
from polisen_collector.pages.parse import parse_page
from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue
from polisen_collector.pages.store import day_page_versions
from polisen_collector.storage.local import LocalStorage

PAGES = {"PAGES_PER_RUN": "4"}


def pages_archived(collector, *bodies: bytes) -> dict[int, list]:
    storage = LocalStorage(collector.data_dir)
    found: dict[int, list] = {}
    for day in sorted({validate_event(raw).day for body in bodies for raw in json.loads(body)}):
        found.update(day_page_versions(storage, day))
    return found


def page_bytes(event_id: int) -> bytes:
    return gzip.decompress((PAGES_DIR / f"{event_id}.html.gz").read_bytes())


def queue(collector) -> dict:
    storage = LocalStorage(collector.data_dir)
    stored = storage.get(QUEUE_OBJECT)
    return decode_queue(stored.data if stored else None, storage)[0]


def test_an_unreachable_site_neither_fails_nor_delays_the_feed(fake_api, collector, snapshot_bodies):
    fake_api.serve(0)
    result = collector.run(env={**PAGES, "POLISEN_SITE_URL": "http://127.0.0.1:9"})
    assert result.returncode == 0, result.stderr + result.log[-2000:]
    assert collector.health()["status"] == "success"
    counts = collector.last_metrics()["counts"]
    events = len(json.loads(snapshot_bodies[0]))
    assert (counts["new_events"], counts["page_requests"], counts["pages_failed"], counts["pages_stored"]) == (
        events, 1, 1, 0)
    assert counts["pages_backlog"] == events - 1  # the page that failed is tried again in an hour
    assert "page fetching stopped for this run" in result.log

    fake_api.serve(1)
    result = collector.run(env=PAGES)
    assert result.returncode == 0
    counts = collector.last_metrics()["counts"]
    assert (counts["page_requests"], counts["pages_stored"]) == (4, 4)
    assert len(pages_archived(collector, snapshot_bodies[0])) == 4
    assert len(fake_api.page_requests()) == 4


def test_a_run_without_pages_fetches_none(fake_api, collector):
    fake_api.serve(0)
    assert collector.run().returncode == 0
    assert fake_api.page_requests() == []
    assert "pages_backlog" not in collector.last_metrics()["counts"]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "nth"), [
    ("before-put", 1), ("after-put", 1), ("mid-put", 2), ("after-put", 8), ("mid-put", 10),
])
def test_kill_around_page_writes_loses_nothing(fake_api, collector, snapshot_bodies, point, nth):
    """Writes 1-8 are the run's four page versions, each followed by its parse; 9 the page queue's base, 10 the queue.

    Pages are queued from the feed's answer, so a kill before the queue write leaves them to
    the next run whose answer is not a 304: the next snapshot here, as the real feed moves on.
    """
    fake_api.serve(0)
    crashed = collector.run(script="tests/crash_run.py",
                            env={**PAGES, "CRASH_POINT": point, "CRASH_AT": str(nth), "CRASH_MATCH": "pages"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    fake_api.serve(1)
    assert collector.run(env=PAGES).returncode == 0

    archived = pages_archived(collector, snapshot_bodies[0], snapshot_bodies[1])
    remembered = {event_id for event_id, entry in queue(collector).items() if entry.fingerprint}
    assert remembered <= set(archived), "the queue remembers a page that is not stored"
    assert len(remembered) >= 4
    assert all(len(versions) == 1 for versions in archived.values()), "a version archived twice"
    served = {event["id"] for body in snapshot_bodies[:2] for event in json.loads(body)}
    assert set(queue(collector)) >= served, "a page is neither queued nor fetched"
    waiting = {event_id for event_id, entry in queue(collector).items() if entry.pending and not entry.fingerprint}
    assert waiting | remembered >= served

    storage = LocalStorage(collector.data_dir)
    summary = ExportSummary()
    rows = [row for row in iter_rows(storage, ExportOptions(), summary, on_bad=no_bad_line) if row["page_fetched"]]
    assert {row["id"] for row in rows} == set(archived)
    for row in rows:
        page = parse_page(page_bytes(row["id"]))
        assert (row["page_title"], row["page_body"], row["page_published"].isoformat()) == (
            page.title, page.body, page.published)
    # The page killed before its parse is fetched again by the next run, whose copy has one (or, in
    # the same second, the same name: the parse is then its own).
    assert summary.pages_parsed == 0
    names = set(storage.list("pages/"))
    unparsed = {name for name in names if name.endswith(".html.gz")
                and name.replace(".html.gz", ".parsed-v1.json") not in names}
    assert len(unparsed) <= ((point, nth) in {("after-put", 1), ("mid-put", 2)})


def test_a_run_that_stores_nothing_skips_the_page_step_until_a_page_is_due(tmp_path, snapshot_bodies):
    three = json.dumps(json.loads(snapshot_bodies[0])[:3]).encode()
    with FakePolisenServer([three]) as server:
        collector = Collector(tmp_path, server.url)
        assert collector.run(env=PAGES).returncode == 0
        assert collector.last_metrics()["counts"]["pages_stored"] == 3
        hint = (collector.log_dir / "pages-next-due").read_text()
        assert datetime.fromisoformat(hint) > datetime.now(UTC) + timedelta(hours=23)  # the re-checks

        assert collector.run(env=PAGES).returncode == 0
        assert [r.status for r in server.requests[-1:]] == [304]
        assert "page_requests" not in collector.last_metrics()["counts"], "nothing stored, nothing due: no page step"

        (collector.log_dir / "pages-next-due").write_text("2020-01-01T00:00:00+00:00")
        assert collector.run(env=PAGES).returncode == 0
        assert collector.last_metrics()["counts"]["page_requests"] == 0  # due by the hint; the queue says tomorrow
        assert datetime.fromisoformat((collector.log_dir / "pages-next-due").read_text()) > datetime.now(UTC)
