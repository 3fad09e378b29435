"""Poisoned state and planted files (issue 22): what the tools read back from their own files
(the page queue, the rate ledger, the state, the metrics) is checked as strictly as a setting,
and every file they open in LOG_DIR, METRICS_DIR and DATA_DIR is opened the one guarded way.
"""

from __future__ import annotations

import gzip
import json
import logging

import pytest
from test_pages import T0, events_of, page_client

from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.pages.collect import collect_pages
from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue
from polisen_collector.storage.local import LocalStorage

# -- the page queue (row 5, and its format in "also seen") -------------------------------------------


def queue_document(storage: LocalStorage) -> dict:
    return json.loads(gzip.decompress(storage.get(QUEUE_OBJECT).data))


def plant_queue(storage: LocalStorage, document: dict) -> None:
    storage.put(QUEUE_OBJECT, gzip.compress(json.dumps(document).encode()))


def test_malformed_queue_entries_are_dropped_with_one_warning_and_the_rest_goes_on(fake_api, snapshot_bodies,
                                                                                    tmp_path, caplog):
    fake_api.serve(0)
    events = sorted(events_of(snapshot_bodies[0])[:6], key=lambda event: event.id)
    storage = LocalStorage(tmp_path)
    client = page_client(fake_api, interval=0.0)
    collect_pages(storage, client, events, {}, RunMetrics("run"), max_pages=0, now=lambda: T0)  # all queued, none fetched
    document = queue_document(storage)
    pages = document["pages"]
    poison = {"due": "garbage"}, {"due": "2026-05-20T06:00:00"}, {"url": 12345}, {"status": {}}
    for event, change in zip(events, poison, strict=False):
        pages[str(event.id)].update(change)
    plant_queue(storage, document)

    metrics = RunMetrics("run")
    with caplog.at_level(logging.WARNING):
        report = collect_pages(storage, client, events, {}, metrics, max_pages=10, now=lambda: T0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("metadata/pages.json: dropped 4 malformed entries, their pages are queued again")
    for event, reason in zip(events, ("due 'garbage' is not a time", "due '2026-05-20T06:00:00' is not a time",
                                      "url 12345 is not a short line of text", "status {} is not a short"),
                             strict=False):
        assert f"entry {event.id}: {reason}" in warnings[0]
    assert "page_errors" not in metrics.counts
    assert (report.requests, report.stored, report.stopped) == (6, 6, None), "the others and the re-queued ones"
    entries = decode_queue(storage.get(QUEUE_OBJECT).data, storage)[0]
    assert {entries[event.id].status for event in events} == {"recheck"}


def test_a_queue_time_with_another_offset_is_read_as_utc():
    from polisen_collector.pages.queue import entry_of

    entry = entry_of({"url": "/a", "day": "2026-05-20", "hash": "h", "due": "2026-05-20T08:00:00+02:00"})
    assert entry.due == "2026-05-20T06:00:00+00:00"


@pytest.mark.parametrize("fields", [
    {"url": "/a", "day": "2026-05-20"},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "color": "red"},
    {"url": "/a", "day": "20 maj", "hash": "h"},
    {"url": "/a", "day": "2026-05-20", "hash": ""},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "tries": True},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "tries": -1},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "etag": "\"x\"\r\nX-Injected: 1"},
    {"url": "/a", "day": "2026-05-20", "hash": "h" * 2000},
    {"url": "//elsewhere.example/a", "day": "2026-05-20", "hash": "h"},
    {"url": "", "day": "2026-05-20", "hash": "h", "status": "new"},
    {"url": "/a", "day": "2026-05-20", "hash": "h", "first_fetched": "yesterday"},
    ["/a", "2026-05-20", "h"],
])
def test_each_queue_field_is_checked(fields):
    from polisen_collector.pages.queue import entry_of

    with pytest.raises(ValueError):
        entry_of(fields)


def test_a_queue_of_an_unknown_format_is_not_read_as_one(tmp_path, caplog):
    storage = LocalStorage(tmp_path)
    entry = {"url": "/a", "day": "2026-05-20", "hash": "h", "status": "new"}
    for document in ({"format": 7, "pages": {"7": entry}}, {"pages": {"7": entry}}, ["not", "a", "queue"]):
        plant_queue(storage, document)
        assert decode_queue(storage.get(QUEUE_OBJECT).data, storage)[0] == {}
        assert "is unreadable (not a page queue of format 1 or 2); starting a new page queue" in caplog.text
        caplog.clear()


def test_malformed_entries_of_a_queue_s_base_make_the_next_write_start_a_new_base(tmp_path, caplog):
    """A bad row in the write-once base would otherwise be warned about on every run until the
    base is replaced: the next write replaces it, without the row."""
    from polisen_collector.pages.queue import PageEntry, encode_queue

    storage = LocalStorage(tmp_path)
    entries = {600000 + n: PageEntry(url="", day="2026-05-20", hash=f"{n:016x}", status="done") for n in range(300)}
    head = encode_queue(entries, storage=storage)
    (base_name,) = storage.list("metadata/bases/")
    base = json.loads(gzip.decompress(storage.get(base_name).data))
    base["rows"]["600001"]["day"] = "never"
    storage.put(base_name, gzip.compress(json.dumps(base).encode()))
    read, over = decode_queue(head, storage)
    assert len(read) == 299 and "entry 600001: day 'never' is not a date" in caplog.text
    caplog.clear()
    encode_queue(read, storage=storage, base=over)
    (new_base,) = [name for name in storage.list("metadata/bases/") if name != base_name]
    assert decode_queue(encode_queue(read, storage=storage, base=over), storage)[0] == read
    assert "malformed" not in caplog.text and new_base
