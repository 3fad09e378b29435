"""The page step of a run: queue the pages of new and edited events, fetch those due, store versions.

It runs after the feed's events and state are stored (run/collection.py) and never fails
the run. Order of writes, as for events: a page version, then its parsed fields, are written
before the queue that remembers it, so a kill at any point loses nothing. Pages are queued from the feed's answer
and from the state: an id the state knows in a version the queue does not (a run killed
between its state write and its queue write, or an archive collected before pages were)
is queued too, its url read from the archive.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from polisen_collector import interrupt
from polisen_collector.archive.events import Event
from polisen_collector.archive.layout import read_day
from polisen_collector.archive.state import Entry
from polisen_collector.clock import utc_now
from polisen_collector.interrupt import Interrupted
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.pages.fetch import PageClient, PageError
from polisen_collector.pages.parse import content_fingerprint, parse_page
from polisen_collector.pages.queue import (
    QUEUE_OBJECT,
    PageEntry,
    backlog,
    decode_queue,
    due_ids,
    encode_queue,
    enqueue,
    next_due,
    prune,
    record_failure,
    record_fetched,
    unfetchable,
)
from polisen_collector.pages.store import write_page_version
from polisen_collector.storage.base import Storage, StorageError, StoredObject, update_object
from polisen_collector.storage.delta_map import DEFAULT_LIMIT

log = logging.getLogger("polisen.pages")


@dataclass
class PagesReport:
    queued: int = 0
    requests: int = 0
    stored: int = 0
    unchanged: int = 0
    missing: int = 0
    gone: int = 0
    failed: int = 0
    unparsed: int = 0
    backlog: int = 0
    bytes_wire: int = 0
    stopped: str | None = None
    next_due: str | None = None

    def as_counts(self) -> dict[str, int]:
        return {
            "pages_queued": self.queued, "page_requests": self.requests, "pages_stored": self.stored,
            "pages_unchanged": self.unchanged, "pages_missing": self.missing, "pages_gone": self.gone,
            "pages_failed": self.failed, "pages_unparsed": self.unparsed, "pages_backlog": self.backlog,
            "pages_bytes_wire": self.bytes_wire,
        }


def collect_pages(
    storage: Storage,
    client: PageClient,
    events: list[Event],
    seen: Mapping[int, Entry],
    metrics: RunMetrics,
    *,
    max_pages: int,
    budget_seconds: float | None = None,
    now: Callable[[], datetime] = utc_now,
    max_bytes: int = DEFAULT_LIMIT,
) -> PagesReport:
    """Queue the pages of `events` (the feed's answer) and of `seen` (the state as the run read
    it) not yet fetched for their content, then fetch at most `max_pages` due pages.
    Raises StorageError only when the queue or the archive cannot be read, or the queue
    written; the run's caller logs and counts it. Fetching stops once `budget_seconds` have passed,
    so slow answers cannot hold the run (and its health file) up. The queue may decompress to
    `max_bytes` (delta_map.decoded_limit of the state's retention); a larger one is unreadable."""
    report = PagesReport()
    started = now()
    current = storage.get(QUEUE_OBJECT)
    entries, base = decode_queue(current.data if current else None, storage, max_bytes)
    answered = {event.id for event in events}
    missed, lost = missed_events(storage, seen, entries, answered)
    if missed:
        log.info("queueing the pages of %d stored events the page queue does not know", len(missed))
    touched = enqueue(entries, [*events, *missed], started)
    report.queued = sum(entry.pending for entry in touched.values())
    for event_id in lost:
        log.warning("event %d is in the state but not in its day's objects: its page cannot be fetched", event_id)
        touched[event_id] = unfetchable(seen[event_id][1], seen[event_id][0])
    entries.update(touched)
    deadline = time.monotonic() + budget_seconds if budget_seconds is not None else None
    for event_id in due_ids(entries, started)[:max_pages]:
        time_left = deadline - time.monotonic() if deadline is not None else None
        if time_left is not None and time_left <= 0:
            report.stopped = f"the page step's {budget_seconds:g} s are used up"
            log.info("page fetching stopped for this run: %s", report.stopped)
            break
        if (stop := interrupt.requested()) is not None:  # a signal: stop here, the queue is written below
            report.stopped = str(stop)
            break
        # A copy, changed in place below: the base's own entry must stay as it was, or the next
        # head, which holds only what differs from the base, would leave the change out.
        entry = replace(entries[event_id])
        sent = client.requests_sent
        try:
            keep_going = _fetch_one(storage, client, event_id, entry, now=now(), report=report, time_left=time_left)
        except Interrupted as stop:  # in the client's pacing, or its request cut short: the entry stays as it was
            if client.requests_sent == sent:  # stopped before the request went out
                report.requests -= 1
            report.stopped = str(stop)
            break
        entries[event_id] = touched[event_id] = entry
        if not keep_going:
            log.warning("page fetching stopped for this run: %s", report.stopped)
            break
    report.backlog = backlog(entries, started)
    report.next_due = next_due(entries)
    if report.backlog:
        log.info("%d event pages wait for the next runs", report.backlog)

    def change(stored: StoredObject | None) -> bytes | None:
        if stored is current:  # the queue as read above, with this run's changes
            merged, over = entries, base
        else:  # another collector wrote it meanwhile: its entries, with this run's changes
            theirs, over = decode_queue(stored.data if stored else None, storage, max_bytes)
            merged = {**theirs, **touched}
        data = encode_queue(prune(merged, set(seen) | answered), storage=storage, base=over)
        return None if stored is not None and stored.data == data else data

    try:
        update_object(storage, QUEUE_OBJECT, change, current=current, content_type="application/gzip")
    finally:
        metrics.count(**report.as_counts())
    return report


def missed_events(storage: Storage, seen: Mapping[int, Entry], entries: dict[int, PageEntry],
                  answered: set[int]) -> tuple[list[Event], set[int]]:
    """Stored versions the state knows and the queue does not, read back from their days' objects;
    and the ids of those not found there."""
    by_day: dict[str, set[int]] = defaultdict(set)
    for event_id, (content_hash, day, _) in seen.items():
        known = entries.get(event_id)
        if event_id not in answered and (known is None or known.hash != content_hash):
            by_day[day].add(event_id)
    found: dict[int, Event] = {}
    for day, ids in sorted(by_day.items()):
        for version in read_day(storage, day).versions:
            event = version.event
            if event.id in ids and event.hash == seen[event.id][0]:
                found[event.id] = event
    return list(found.values()), {event_id for ids in by_day.values() for event_id in ids} - set(found)


def _fetch_one(storage: Storage, client: PageClient, event_id: int, entry: PageEntry, *, now: datetime,
               report: PagesReport, time_left: float | None = None) -> bool:
    """Fetch one page and record the outcome in `entry`; False when the run should stop fetching.

    A 429 counts a try and puts the page back until the site's Retry-After; the others go on."""
    validators = (entry.etag, entry.last_modified) if entry.fingerprint else (None, None)
    report.requests += 1
    try:
        response = client.fetch(entry.url, *validators, time_left=time_left)
    except PageError as error:
        if error.time_up:  # the step's time running out is not the page's fault
            report.stopped = f"the page step's time is used up during the page of event {event_id}"
            return False
        record_failure(entry, now, missing=False)
        report.failed += 1
        report.stopped = str(error)
        return False
    report.bytes_wire += response.bytes_wire
    if response.status == 304 and entry.fingerprint:
        record_fetched(entry, now, entry.fingerprint, response.etag or entry.etag,
                       response.last_modified or entry.last_modified)
        report.unchanged += 1
        return True
    if response.status == 200:
        return _store(storage, event_id, entry, now=now, html=response.body, etag=response.etag,
                      last_modified=response.last_modified, report=report)
    if response.status in (404, 410):
        record_failure(entry, now, missing=True, site_wait=response.retry_after)
        report.missing += 1
        if entry.status == "gone":
            report.gone += 1
            log.info("page of event %d answered %d %d times: recorded as gone", event_id, response.status, entry.tries)
        return True
    if response.status == 429:
        record_failure(entry, now, missing=False, site_wait=response.retry_after)
        report.failed += 1
        log.warning("page of event %d answered 429 (slow down): %s", event_id,
                    f"tried again from {entry.due}" if entry.due else f"recorded as failed after {entry.tries} tries")
        return True
    record_failure(entry, now, missing=False, site_wait=response.retry_after)
    report.failed += 1
    report.stopped = f"page of event {event_id} answered HTTP {response.status}"
    return False


def _store(storage: Storage, event_id: int, entry: PageEntry, *, now: datetime, html: bytes, etag: str | None,
           last_modified: str | None, report: PagesReport) -> bool:
    page = parse_page(html)
    if page.reason is not None:
        report.unparsed += 1
        log.warning("page of event %d does not parse (%s); its bytes are kept", event_id, page.reason)
    fingerprint = content_fingerprint(page)
    if fingerprint == entry.fingerprint:
        report.unchanged += 1
    else:
        try:
            write_page_version(storage, entry.day, event_id, fetched=now, fingerprint=fingerprint, html=html, page=page)
        except StorageError as error:
            report.failed += 1
            report.stopped = f"cannot store the page of event {event_id}: {error}"
            return False
        report.stored += 1
    record_fetched(entry, now, fingerprint, etag, last_modified)
    return True
