"""Fetching and archiving event pages, in process, against the fake site serving the real pages."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import no_bad_line, words
from fake_clock import FakeClock
from fake_polisen import PAGES_DIR, FakePolisenServer, snapshot_paths, snapshot_time

from polisen_collector.api.client import ApiError, ApiOptions, PolisenClient
from polisen_collector.archive.events import validate_event
from polisen_collector.archive.ingest import write_events
from polisen_collector.archive.layout import new_run_id
from polisen_collector.config import ConfigError, load_settings
from polisen_collector.export import ExportOptions, ExportSummary, iter_rows
from polisen_collector.geography import place_event
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.pages.collect import collect_pages
from polisen_collector.pages.columns import PAGE_COLUMNS
from polisen_collector.pages.fetch import PageClient, PageError, PageOptions
from polisen_collector.pages.parse import PARSER_VERSION, content_fingerprint, parse_page
from polisen_collector.pages.queue import QUEUE_OBJECT, PageEntry, decode_queue, encode_queue
from polisen_collector.pages.store import day_page_versions, page_object_name, page_version_of, read_page_html
from polisen_collector.run.feed import collect
from polisen_collector.storage.delta_map import Base
from polisen_collector.storage.local import LocalStorage

T0 = datetime(2026, 5, 20, 6, 0, tzinfo=UTC)


def page_bytes(event_id: int) -> bytes:
    return gzip.decompress((PAGES_DIR / f"{event_id}.html.gz").read_bytes())


def events_of(body: bytes) -> list:
    return [validate_event(raw) for raw in json.loads(body)]


def page_client(server: FakePolisenServer, clock: FakeClock | None = None, **options) -> PageClient:
    clock = clock or FakeClock()
    options = {"origin": server.site_url, "contact_email": "tests@example.invalid", "interval": 1.0, **options}
    return PageClient(PageOptions(**options), clock=clock, sleep=clock.sleep)


def stored_pages(storage: LocalStorage, events) -> dict[int, list]:
    found: dict[int, list] = {}
    for day in sorted({event.day for event in events}):
        found.update(day_page_versions(storage, day))
    return found


def test_client_is_paced_identified_compressed_and_conditional(fake_api, snapshot_bodies):
    fake_api.serve(0)
    events = events_of(snapshot_bodies[0])[:3]
    clock = FakeClock()
    client = page_client(fake_api, clock)
    answers = [client.fetch(event.raw["url"]) for event in events]
    assert [a.status for a in answers] == [200, 200, 200]
    assert [a.body for a in answers] == [page_bytes(event.id) for event in events]
    assert clock.slept == [1.0, 1.0]
    assert all(a.bytes_wire < len(a.body) / 2 for a in answers)
    sent = fake_api.page_requests()
    assert [r.path for r in sent] == [event.raw["url"] for event in events]
    assert all("tests@example.invalid" in r.headers["User-Agent"] and "gzip" in r.headers["Accept-Encoding"]
               for r in sent)

    again = client.fetch(events[0].raw["url"], etag=answers[0].etag)
    assert (again.status, again.body) == (304, b"")
    assert fake_api.page_requests()[-1].headers["If-None-Match"] == answers[0].etag


def test_a_page_is_served_only_once_its_event_is_published(fake_api, snapshot_bodies):
    first_ids = {event["id"] for event in json.loads(snapshot_bodies[0])}
    later = next(event for event in json.loads(snapshot_bodies[5]) if event["id"] not in first_ids)
    client = page_client(fake_api, interval=0.0)
    fake_api.serve(0)
    assert client.fetch(later["url"]).status == 404
    fake_api.serve(5)
    assert client.fetch(later["url"]).status == 200


def test_client_refuses_big_pages_and_other_hosts(fake_api, snapshot_bodies):
    fake_api.serve(0)
    url = json.loads(snapshot_bodies[0])[0]["url"]
    with pytest.raises(PageError, match="PAGE_MAX_BYTES=1000"):
        page_client(fake_api, max_bytes=1000).fetch(url)
    for path in ("//evil.example/x", "https://evil.example/x", "aktuellt/x"):
        with pytest.raises(PageError, match="not a path on the site"):
            page_client(fake_api).fetch(path)
    assert [r.path for r in fake_api.page_requests()] == [url]


def test_client_keeps_the_api_clients_guards_on_redirects_and_slow_pages(fake_api, snapshot_bodies):
    """A redirect to plain http off loopback is refused; a page that trickles in runs into the deadline."""
    fake_api.serve(0)
    url = json.loads(snapshot_bodies[0])[0]["url"]
    fake_api.add_page_faults("redirect:http://collector-test.invalid/x", "trickle-headers:0.05", "trickle:0.05")
    with pytest.raises(PageError, match="refused to follow a redirect to http://collector-test.invalid/x"):
        page_client(fake_api).fetch(url)
    fast = page_client(fake_api, connect_timeout=0.1, read_timeout=0.2)  # a deadline of 0.5 s
    for _ in range(2):  # the headers, then the body, a byte every 0.05 s: each read well within read_timeout
        with pytest.raises(PageError, match=r"took longer than 0.5 s \(API_CONNECT_TIMEOUT"):
            fast.fetch(url)
    assert page_client(fake_api).fetch(url).status == 200, "the next page is served as usual"


def test_pacing_and_backlog_over_runs(fake_api, snapshot_bodies, tmp_path):
    """At most max_pages a run, a second apart; the rest waits, the oldest first, and is counted."""
    fake_api.serve(0)
    events = events_of(snapshot_bodies[0])
    storage = LocalStorage(tmp_path)
    clock = FakeClock()
    client = page_client(fake_api, clock)
    fetched: list[str] = []
    for run in range(3):
        metrics = RunMetrics("run")
        report = collect_pages(storage, client, events, {}, metrics, max_pages=4,
                               now=lambda run=run: T0 + timedelta(minutes=30 * run))
        fetched += [r.path for r in fake_api.page_requests()[len(fetched):]]
        assert (report.requests, report.stored) == (4, 4)
        assert metrics.counts["pages_backlog"] == len(events) - 4 * (run + 1)
        assert metrics.counts["pages_queued"] == (len(events) if run == 0 else 0)
    assert clock.slept == [1.0] * 11
    by_id = sorted(events, key=lambda e: e.id)
    assert fetched == [event.raw["url"] for event in by_id[:12]]
    assert set(stored_pages(storage, events)) == {event.id for event in by_id[:12]}


def test_missing_page_is_tried_on_three_runs_then_gone(fake_api, snapshot_bodies, tmp_path):
    fake_api.serve(0)
    event = events_of(snapshot_bodies[0])[0]
    fake_api.state.page_status[event.id] = 404
    storage = LocalStorage(tmp_path)
    client = page_client(fake_api, interval=0.0)
    outcomes = []
    for hours in (0, 0.5, 1, 2, 8, 48, 200):
        metrics = RunMetrics("run")
        collect_pages(storage, client, [event], {}, metrics, max_pages=10,
                      now=lambda hours=hours: T0 + timedelta(hours=hours))
        entry = decode_queue(storage.get(QUEUE_OBJECT).data, storage)[0][event.id]
        outcomes.append((metrics.counts["page_requests"], entry.status, entry.tries))
    assert outcomes == [(1, "new", 1), (0, "new", 1), (1, "new", 2), (0, "new", 2), (1, "gone", 3),
                        (0, "gone", 3), (0, "gone", 3)]
    assert len(fake_api.page_requests()) == 3
    assert stored_pages(storage, [event]) == {}


def test_recheck_a_day_later_keeps_an_edited_page_and_a_feed_edit_fetches_again(fake_api, snapshot_bodies, tmp_path):
    fake_api.serve(0)
    edited, same = events_of(snapshot_bodies[0])[:2]
    storage = LocalStorage(tmp_path)
    client = page_client(fake_api, interval=0.0)

    def run(hours: float, events) -> dict[str, int]:
        metrics = RunMetrics("run")
        collect_pages(storage, client, events, {}, metrics, max_pages=10,
                      now=lambda: T0 + timedelta(hours=hours))
        return {key: metrics.counts[key] for key in ("page_requests", "pages_stored", "pages_unchanged")}

    assert run(0, [edited, same]) == {"page_requests": 2, "pages_stored": 2, "pages_unchanged": 0}
    original = page_bytes(edited.id)
    fake_api.state.pages[edited.id] = original.replace(b"</h1>", b" (uppdaterad)</h1>", 1)
    assert run(12, [edited, same]) == {"page_requests": 0, "pages_stored": 0, "pages_unchanged": 0}
    assert run(25, [edited, same]) == {"page_requests": 2, "pages_stored": 1, "pages_unchanged": 1}
    assert sorted(r.status for r in fake_api.page_requests()[-2:]) == [200, 304]
    assert run(60, [edited, same]) == {"page_requests": 0, "pages_stored": 0, "pages_unchanged": 0}

    versions = stored_pages(storage, [edited])[edited.id]
    assert [read_page_html(storage, v.name) for v in versions] == [original, fake_api.state.pages[edited.id]]
    assert versions[1].fingerprint == content_fingerprint(parse_page(fake_api.state.pages[edited.id]))[:16]

    changed = validate_event({**edited.raw, "summary": "Ny text."})
    assert run(61, [changed, same])["page_requests"] == 1
    assert run(100, [changed, same])["page_requests"] == 0


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, snapshot_bodies):
    """20 snapshots (about three days) through the feed run and the page step, at the recorded times."""
    count = 20
    times = [datetime.fromtimestamp(snapshot_time(path), UTC) for path in snapshot_paths()[:count]]
    storage = LocalStorage(tmp_path_factory.mktemp("replay"))
    answered: dict[int, list] = {}
    with FakePolisenServer(snapshot_bodies) as server:
        api = PolisenClient(ApiOptions(url=server.url, backoff_factor=0.0, max_retries=0))
        client = page_client(server, interval=0.0)
        for index in range(count):
            server.serve(index)
            metrics = RunMetrics("run")
            try:
                report = collect(storage, api, metrics, run_id=new_run_id(times[index]), retention_days=30)
            except ApiError:  # the recorded empty answer fails its run, as it should
                assert not snapshot_bodies[index].strip()
                continue
            for event in report.answered:
                answered.setdefault(event.id, [])
                if event.hash not in answered[event.id]:
                    answered[event.id].append(event.hash)
            collect_pages(storage, client, report.answered, report.seen, metrics, max_pages=1000,
                          now=lambda index=index: times[index])
        requests = server.page_requests()
        published = dict(server.state.published)
    return storage, answered, requests, published, times


@pytest.mark.slow
def test_replay_fetches_each_page_about_once(replayed, snapshot_bodies):
    storage, answered, requests, published, times = replayed
    by_id: dict[int, int] = {}
    for request in requests:
        by_id[published[request.path]] = by_id.get(published[request.path], 0) + 1
    assert set(by_id) == set(answered)
    for event_id, count in by_id.items():
        assert 1 <= count <= 1 + 1 + len(answered[event_id]) - 1, event_id
    rechecked = [event_id for event_id, count in by_id.items() if count == 2 and len(answered[event_id]) == 1]
    assert len(rechecked) > 300
    assert sum(r.status == 304 for r in requests) == len(requests) - len(by_id)  # the site's pages never change here
    assert all(r.status in (200, 304) for r in requests)

    events = [validate_event(raw) for body in snapshot_bodies[:20] if body.strip() for raw in json.loads(body)]
    stored = stored_pages(storage, events)
    assert set(stored) == set(answered)
    assert all(len(versions) == 1 for versions in stored.values())
    sample = sorted(stored)[::97]
    assert [read_page_html(storage, stored[i][0].name) for i in sample] == [page_bytes(i) for i in sample]


@pytest.mark.slow
def test_export_has_page_text_and_the_place_of_every_event(replayed):
    storage = replayed[0]
    rows = list(iter_rows(storage, ExportOptions(), ExportSummary(), on_bad=no_bad_line))
    assert len(rows) == len(replayed[1])
    for row in rows:
        place = place_event(row["location_name"], row["name"])
        assert (row["location_level"], row["municipality_code"], row["municipality_name"], row["county_code"],
                row["county_name"]) == (place.location_level, place.municipality_code, place.municipality_name,
                                        place.county_code, place.county_name)
        assert row["county_name"] == row["location_name"]
        assert row["location_level"] in ("municipality", "county")
        assert row["page_url"] == "https://polisen.se" + row["url"]
        assert row["page_title"] and row["page_body"] is not None and row["page_fetched"]
    for row in rows[::10]:
        page = parse_page(page_bytes(row["id"]))
        assert (row["page_title"], row["page_preamble"], row["page_body"], row["page_author"]) == (
            page.title, page.preamble, page.body, page.author)
        assert row["page_published"].isoformat() == page.published
    assert sum(row["location_level"] == "municipality" for row in rows) > len(rows) / 2


@pytest.mark.slow
def test_the_docs_duckdb_examples_group_by_county_and_search_the_text(replayed, tmp_path, monkeypatch):
    import duckdb

    from polisen_collector.export import write_parquet

    storage = replayed[0]
    write_parquet(iter_rows(storage, ExportOptions(), ExportSummary(), on_bad=no_bad_line),
                  str(tmp_path / "events.parquet"))
    docs = (Path(__file__).resolve().parent.parent / "docs" / "pages-and-geography.md").read_text(encoding="utf-8")
    sql = docs.split("## Export columns")[1].split("```sql")[1].split("```")[0]
    by_county, mentions = (statement for statement in sql.split(";") if statement.strip())
    monkeypatch.chdir(tmp_path)
    counties = duckdb.sql(by_county).fetchall()
    assert sum(count for _, _, count in counties) == len(replayed[1])
    assert all(len(code) == 2 and name.endswith("län") for code, name, _ in counties)
    found = duckdb.sql(mentions).fetchall()
    assert found and all(title for _, _, title in found)
    texts = duckdb.sql("SELECT concat_ws(' ', page_body, page_preamble) FROM 'events.parquet'").fetchall()
    assert len(found) == sum("kniv" in text.lower() for (text,) in texts if text)


@pytest.mark.slow
def test_sqlite_full_text_search_covers_the_page_text(replayed, tmp_path):
    import sqlite3

    from polisen_collector.export_update import write_new

    storage = replayed[0]
    path = tmp_path / "events.db"
    write_new(storage, ExportOptions(), str(path), ExportSummary(), on_bad=no_bad_line)
    with sqlite3.connect(path) as db:
        bodies = db.execute("SELECT id, name, summary, page_preamble, page_body FROM events").fetchall()
        found = {row[0] for row in db.execute(
            "SELECT rowid FROM events_fts WHERE events_fts MATCH 'kniv*'")}
    # Whole words starting with "kniv" (kniv, knivar, knivskuren ...) in any indexed column, as FTS5 tokenises them.
    expected = {event_id for event_id, *texts in bodies
                if any(word.startswith("kniv") for text in texts if text for word in words(text))}
    assert found == expected
    assert any(not any("kniv" in (text or "").lower() for text in texts[:2])
               for event_id, *texts in bodies if event_id in found), "some are found by their page text alone"


@pytest.mark.parametrize(("environ", "message"), [
    ({"PAGE_INTERVAL_SECONDS": "0.5"}, "PAGE_INTERVAL_SECONDS=0.5 is refused"),
    ({"POLISEN_SITE_URL": "http://polisen.se"}, "POLISEN_SITE_URL='http://polisen.se' is invalid: must use https"),
    ({"PAGES_PER_RUN": "-1"}, "PAGES_PER_RUN='-1' is invalid"),
    ({"API_RATE_LIMIT": "off", "POLISEN_API_URL": "http://127.0.0.1:9/api/events",
      "POLISEN_SITE_URL": "https://polisen.se"}, "POLISEN_SITE_URL is not a loopback host"),
])
def test_page_settings_are_checked(environ, message):
    with pytest.raises(ConfigError) as refused:
        load_settings(environ=environ, env_file=None)
    assert message in str(refused.value)


def test_pages_come_from_the_api_origin_unless_the_site_is_set():
    assert load_settings(environ={}, env_file=None).page_origin == "https://polisen.se"
    loopback = {"POLISEN_API_URL": "http://127.0.0.1:8080/api/events", "API_RATE_LIMIT": "off",
                "PAGE_INTERVAL_SECONDS": "0"}
    assert load_settings(environ=loopback, env_file=None).page_origin == "http://127.0.0.1:8080"
    site = {"POLISEN_SITE_URL": "https://www.polisen.se/"}
    assert load_settings(environ=site, env_file=None).page_origin == "https://www.polisen.se"


def test_an_archive_without_pages_gets_them_queued_from_the_state(fake_api, snapshot_bodies, tmp_path):
    """Events stored before pages were collected (or by a run killed before its queue write)."""
    storage = LocalStorage(tmp_path)
    api = PolisenClient(ApiOptions(url=fake_api.url, backoff_factor=0.0, max_retries=0))
    fake_api.serve(0)
    collect(storage, api, RunMetrics("run"), run_id=new_run_id(), retention_days=30)
    fake_api.serve(1)
    report = collect(storage, api, RunMetrics("run"), run_id=new_run_id(), retention_days=30)
    seen = {**report.seen, 999: ("0123456789abcdef", "2026-05-20", "2026-05-20")}  # not in the archive
    client = page_client(fake_api, interval=0.0)

    metrics = RunMetrics("run")
    collect_pages(storage, client, [], seen, metrics, max_pages=0, now=lambda: T0)
    entries, _ = decode_queue(storage.get(QUEUE_OBJECT).data, storage)
    assert set(entries) == set(seen)
    assert entries[999].status == "failed"
    archived = {event.id: event for event in events_of(snapshot_bodies[0])}
    assert all(entries[i].url == archived[i].raw["url"] and entries[i].status == "new" for i in archived)
    assert metrics.counts["pages_queued"] == len(seen) - 1 and metrics.counts["pages_backlog"] == len(seen) - 1

    metrics = RunMetrics("run")
    collect_pages(storage, client, [], seen, metrics, max_pages=0, now=lambda: T0)
    assert metrics.counts["pages_queued"] == 0
    assert fake_api.page_requests() == []


@pytest.mark.slow
def test_the_sqlite_export_reads_each_page_once(replayed):
    """Every version row of an event carries its latest page: read and parsed once, not per row."""
    from collections import Counter

    from polisen_collector.export import iter_events_with_versions

    class CountingReads(LocalStorage):
        reads: Counter = Counter()

        def get(self, name: str):
            self.reads[name] += 1
            return super().get(name)

    storage = CountingReads(replayed[0].root)
    exported = list(iter_events_with_versions(storage, ExportOptions(), ExportSummary(), on_bad=no_bad_line))
    page_reads = {name: count for name, count in storage.reads.items() if name.startswith("pages/")}
    assert len(page_reads) == len(exported) and set(page_reads.values()) == {1}


@pytest.mark.slow
def test_the_export_lists_the_pages_once_not_once_a_day(replayed):
    """One listing of pages/ read on as the export's days advance (it was one listing per day)."""
    from polisen_collector.export import iter_rows

    class CountingLists(LocalStorage):
        lists: list[str] = []

        def list(self, prefix: str):
            self.lists.append(prefix)
            return super().list(prefix)

    storage = CountingLists(replayed[0].root)
    rows = list(iter_rows(storage, ExportOptions(), ExportSummary(), on_bad=no_bad_line))
    assert len({row["datetime"].date() for row in rows}) > 10
    assert sum(row["page_title"] is not None for row in rows) > 100
    assert [prefix for prefix in storage.lists if prefix.startswith("pages/")] == ["pages/"]


def test_export_pairs_page_versions_with_feed_versions(snapshot_bodies, tmp_path):
    first, second, third = json.loads(snapshot_bodies[0])[:3]
    edited = {**first, "summary": first["summary"] + " Uppdaterad."}
    bodies = [json.dumps([first, second, third]).encode(), json.dumps([edited, second, third]).encode()]
    storage = LocalStorage(tmp_path)
    with FakePolisenServer(bodies) as server:
        api = PolisenClient(ApiOptions(url=server.url, backoff_factor=0.0, max_retries=0))
        client = page_client(server, interval=0.0)
        new_page = page_bytes(first["id"]).replace(b"</h1>", b" (uppdaterad)</h1>", 1)
        for index, hours in ((0, 0), (1, 5)):
            server.serve(index)
            if index == 1:
                server.state.pages[first["id"]] = new_page
            report = collect(storage, api, RunMetrics("run"), run_id=new_run_id(T0 + timedelta(hours=hours)),
                             retention_days=30)
            collect_pages(storage, client, report.answered, report.seen, RunMetrics("run"), max_pages=10,
                          now=lambda hours=hours: T0 + timedelta(hours=hours, minutes=1))

    def export(all_versions: bool) -> list[dict]:
        rows = iter_rows(storage, ExportOptions(all_versions=all_versions), ExportSummary(), on_bad=no_bad_line)
        return [row for row in rows if row["id"] == first["id"]]

    old_title, new_title = parse_page(page_bytes(first["id"])).title, parse_page(new_page).title
    (latest,) = export(all_versions=False)
    assert (latest["summary"], latest["page_title"]) == (edited["summary"], new_title)
    assert [(row["summary"], row["page_title"], row["page_fetched"]) for row in export(all_versions=True)] == [
        (first["summary"], old_title, T0 + timedelta(minutes=1)),
        (edited["summary"], new_title, T0 + timedelta(hours=5, minutes=1)),
    ]


def test_export_counts_the_events_placed_nowhere(snapshot_bodies, tmp_path):
    from polisen_collector.archive.ingest import write_events

    known = json.loads(snapshot_bodies[0])[0]
    nowhere = {**known, "id": 1, "name": "20 maj 07.46, Övrigt, Sverige", "location": {"name": "Sverige", "gps": ""}}
    storage = LocalStorage(tmp_path)
    write_events(storage, [validate_event(known), validate_event(nowhere)], new_run_id(T0))
    summary = ExportSummary()
    rows = {row["id"]: row for row in iter_rows(storage, ExportOptions(), summary, on_bad=no_bad_line)}
    assert summary.unplaced == 1 and "1 rows placed in no municipality or county" in str(summary)
    assert [rows[1][key] for key in ("location_level", "municipality_code", "county_code", "county_name")] == [
        "unknown", None, None, None]
    assert rows[known["id"]]["county_name"] == known["location"]["name"]
    assert rows[known["id"]]["page_title"] is None  # no page archived yet


def test_the_page_step_stops_when_its_time_is_used_up(fake_api, snapshot_bodies, tmp_path):
    fake_api.serve(0)
    events = events_of(snapshot_bodies[0])
    fake_api.state.latency = 0.05
    metrics = RunMetrics("run")
    report = collect_pages(LocalStorage(tmp_path), page_client(fake_api, interval=0.0), events, {}, metrics,
                           max_pages=30, budget_seconds=0.1)
    assert 1 <= report.requests < 30 and "used up" in report.stopped
    assert metrics.counts["pages_backlog"] == len(events) - report.stored


def queue_entries(count: int) -> dict[int, PageEntry]:
    return {600000 + n: PageEntry(url="", day="2026-05-20", hash=f"{n:016x}", status="done",
                                  fingerprint=f"{n * 7:016x}", first_fetched="2026-05-21T10:00:00+00:00")
            for n in range(count)}


def test_a_large_page_queue_is_a_small_head_over_a_base_and_older_queues_are_read(tmp_path):
    storage = LocalStorage(tmp_path)
    entries = queue_entries(2000)
    first = encode_queue(entries, storage=storage)
    (base_name,) = storage.list("metadata/bases/pages-")
    assert json.loads(gzip.decompress(first)) == {"format": 2, "base": base_name, "pages": {}, "removed": [],
                                                  "carried": 0}
    read, base = decode_queue(first, storage)
    assert read == entries and base.name == base_name

    fetched = {**entries, 700000: PageEntry(url="/aktuellt/x", day="2026-05-28", hash="ab", due="2026-05-28T10:00:00+00:00")}
    del fetched[600000]
    head = encode_queue(fetched, storage=storage, base=base)
    assert len(head) < 300 and list(storage.list("metadata/bases/")) == [base_name]
    assert json.loads(gzip.decompress(head))["removed"] == [600000] and decode_queue(head, storage)[1].carried == 2
    assert decode_queue(head, storage)[0] == fetched

    format_1 = {"format": 1, "pages": {"7": {"url": "/a", "day": "2026-05-20", "hash": "h", "status": "new"}}}
    for data in (json.dumps(format_1).encode(), gzip.compress(json.dumps(format_1).encode())):
        assert decode_queue(data, storage) == ({7: PageEntry(url="/a", day="2026-05-20", hash="h")}, Base())


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_a_page_queue_whose_base_is_unusable_starts_anew(tmp_path, caplog, damage):
    storage = LocalStorage(tmp_path)
    data = encode_queue(queue_entries(300), storage=storage)
    (base_name,) = storage.list("metadata/bases/")
    storage.delete(base_name) if damage == "missing" else storage.put(base_name, b"\x1f\x8b garbage")
    assert decode_queue(data, storage) == ({}, Base())
    assert f"its base {base_name} is {damage}" in caplog.text


@pytest.fixture
def five_pages(fake_api, snapshot_bodies, tmp_path) -> tuple[LocalStorage, list]:
    """An archive of five events and their pages, stored by the page step."""
    fake_api.serve(0)
    events = events_of(snapshot_bodies[0])[:5]
    storage = LocalStorage(tmp_path)
    write_events(storage, events, new_run_id(T0))
    collect_pages(storage, page_client(fake_api, interval=0.0), events, {}, RunMetrics("run"), max_pages=5,
                  now=lambda: T0)
    return storage, events


def exported_pages(storage: LocalStorage, **options) -> tuple[list[tuple], ExportSummary]:
    summary = ExportSummary()
    rows = iter_rows(storage, ExportOptions(**options), summary, on_bad=no_bad_line)
    return [(row["id"], *(row[column] for column in PAGE_COLUMNS)) for row in rows], summary


def test_a_stored_page_has_its_parse_beside_it_and_the_export_never_parses(five_pages, monkeypatch):
    storage, events = five_pages
    names = sorted(storage.list("pages/"))
    assert len(names) == 10
    for name in names[::2]:
        parsed = name.removesuffix(".html.gz") + ".parsed-v1.json"
        assert parsed in names
        page = parse_page(read_page_html(storage, name))
        version = page_version_of(name)
        assert json.loads(storage.get(parsed).data) == {
            "event_id": version.event_id, "fetched": "2026-05-20T06:00:00Z", "parser": PARSER_VERSION,
            "fingerprint": content_fingerprint(page), "title": page.title, "preamble": page.preamble,
            "body": page.body, "author": page.author, "published": page.published, "reason": None}

    monkeypatch.setattr("polisen_collector.pages.columns.parse_page", lambda html: pytest.fail("parsed HTML"))
    rows, summary = exported_pages(storage)
    assert summary.pages_parsed == 0 and "parse" not in str(summary)
    pages = {event.id: parse_page(page_bytes(event.id)) for event in events}
    assert rows == [(event_id, page.title, page.preamble, page.body, page.author,
                     datetime.fromisoformat(page.published), T0) for event_id, page in sorted(pages.items())]


def test_pages_without_a_current_parse_are_parsed_then_stored_once(five_pages, caplog):
    """An archive from before parses were stored, a parse of an older parser, a parse killed halfway
    (a copy of the version has it): the export parses what it must, and stores it when asked; the
    compaction job's step stores the rest within its time, oldest day first."""
    from polisen_collector.pages.reparse import store_missing_parses

    storage, events = five_pages
    expected, _ = exported_pages(storage)
    parses = sorted(name for name in storage.list("pages/") if name.endswith(".parsed-v1.json"))
    originals = {name: storage.get(name).data for name in parses}
    storage.delete(parses[0])
    storage.put(parses[1].replace("-v1.json", "-v0.json"), b'{"parser":0,"title":"old"}')
    storage.delete(parses[1])
    storage.put(parses[2].replace("-v1.json", "-v7.json"), b'{"parser":7}')  # a newer collector's: kept
    copy = page_version_of(parses[3].replace(".parsed-v1.json", ".html.gz"))
    storage.put(page_object_name("2026-05-20", copy.event_id, T0 + timedelta(hours=1), copy.fingerprint),
                gzip.compress(b"a copy: same fingerprint"))
    storage.put(parses[3].replace("T060000Z", "T070000Z"), originals[parses[3]])
    storage.delete(parses[3])

    rows, summary = exported_pages(storage)
    assert rows == expected and (summary.pages_parsed, summary.parses_stored) == (2, 0)
    assert "2 page versions had no stored parse and were parsed (--store-parses stores them)" in str(summary)

    report = store_missing_parses(storage, budget_seconds=0)  # one version, then the time is up
    assert (report.parsed, report.left) == (1, 1), str(report)
    rows, summary = exported_pages(storage, store_parses=True)
    assert rows == expected and (summary.pages_parsed, summary.parses_stored) == (1, 1)
    assert str(store_missing_parses(storage)) == f"page parses: 0 page versions parsed and stored (parser v{PARSER_VERSION})"
    assert exported_pages(storage)[1].pages_parsed == 0
    assert {name: storage.get(name).data for name in storage.list("pages/") if ".parsed-v" in name} == {
        **{name: data for name, data in originals.items() if name != parses[3]},
        parses[2].replace("-v1.json", "-v7.json"): b'{"parser":7}',
        parses[3].replace("T060000Z", "T070000Z"): originals[parses[3]]}


def test_the_docs_duckdb_example_reads_every_stored_parse(five_pages, monkeypatch):
    import duckdb

    storage, events = five_pages
    docs = (Path(__file__).resolve().parent.parent / "docs" / "pages-and-geography.md").read_text(encoding="utf-8")
    sql = docs.split("Reading a page back")[1].split("```sql")[1].split("```")[0]
    monkeypatch.chdir(storage.root.parent)
    storage.root.rename(storage.root.parent / "data")
    found = duckdb.sql(sql).fetchall()
    pages = {event.id: parse_page(page_bytes(event.id)) for event in events}
    assert [(event_id, title, author, body) for event_id, _, title, author, _, body in found] == [
        (event_id, page.title, page.author, page.body) for event_id, page in sorted(pages.items())]
    assert [published for *_, published, _ in found] == [  # DuckDB reads them as TIMESTAMPTZ
        datetime.fromisoformat(page.published) for _, page in sorted(pages.items())]
