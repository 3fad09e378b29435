"""The feed run: fetch the feed and read the state in parallel, store what is new, then the state.

How events and the state are stored (and why a crash loses nothing) is archive/ingest.py.
A 304 is trusted only while the state is the one the cached answer was stored against.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from polisen_collector import interrupt
from polisen_collector.api.client import ApiError, FetchResult, PolisenClient
from polisen_collector.archive.events import Event, answered_ids
from polisen_collector.archive.ingest import (
    commit_state,
    find_changes,
    load_or_recover_state,
    updated_state,
    validate_all,
    write_events,
)
from polisen_collector.archive.state import Entry, State
from polisen_collector.clock import utc_now, utc_today
from polisen_collector.files import SMALL_FILE_BYTES, atomic_write, read_regular
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.readback import is_short_text
from polisen_collector.storage.base import Storage

if TYPE_CHECKING:
    from polisen_collector.recovery.gaps import Gap

log = logging.getLogger("polisen.collector")


@dataclass
class RunReport:
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    not_modified: bool = False
    objects_written: list[str] = field(default_factory=list)
    gap: Gap | None = None
    gap_queued: bool = False
    answered: list[Event] = field(default_factory=list)
    answered_ids: frozenset[int] = frozenset()
    """Every id the answer held, its invalid events' too (withdrawals.py: present is not withdrawn)."""
    answered_at: datetime | None = None
    seen: dict[int, Entry] = field(default_factory=dict)

    @property
    def events_processed(self) -> int:
        return self.new + self.updated


class ApiCache:
    """The validators of the last answer whose events are safely stored, for a 304 next time.

    It also records the state's etag after that answer was stored: a 304 proves nothing
    is new only while the state is still that one (not another archive, not rebuilt).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.loaded: dict[str, str] = {}

    def load(self) -> dict[str, str]:
        """The validators saved; none when the file is missing or unreadable, or when a value is
        not a short line of text (an ETag with a line break, sent as a header, would fail every
        request until the cache is rewritten: readback.py)."""
        try:
            document = json.loads(read_regular(self.path, SMALL_FILE_BYTES))
        except (OSError, ValueError, RecursionError):
            document = {}
        usable = isinstance(document, dict) and all(map(is_short_text, document.values()))
        self.loaded = document if usable else {}
        return self.loaded

    def save(self, url: str, result: FetchResult, state_etag: str | None) -> None:
        """Keep the validators; unchanged since load(), nothing is written."""
        document = {"url": url, "etag": result.etag, "last_modified": result.last_modified, "state_etag": state_etag}
        document = {k: v for k, v in document.items() if v}
        if document != self.loaded:  # a run that found nothing new writes only its metrics and health
            atomic_write(self.path, json.dumps(document).encode("utf-8"), durable=False)


def collect(
    storage: Storage,
    client: PolisenClient,
    metrics: RunMetrics,
    *,
    run_id: str,
    retention_days: int,
    api_cache: ApiCache | None = None,
    dry_run: bool = False,
    on_gap: Callable[[Gap], bool] | None = None,
) -> RunReport:
    """One collection: fetch and read the state in parallel, store what is new, then the state.

    A signal (interrupt.py) stops it before the fetch or before the first write, not between
    the events' writes and the state's: the run stops after the state, at its next check.
    """
    interrupt.check()
    report = RunReport()
    loaded = api_cache.load() if api_cache else {}
    cached = loaded if loaded.get("url") == client.options.url else {}

    def fetch(conditional: bool = True) -> FetchResult:
        with metrics.step("api_fetch"):
            try:
                if not conditional:
                    return client.fetch_events()
                return client.fetch_events(etag=cached.get("etag"), last_modified=cached.get("last_modified"))
            except ApiError as error:
                metrics.count(retries=error.retries, api_requests=error.requests)
                raise

    def read_state() -> State:
        with metrics.step("metadata_fetch"):
            return load_or_recover_state(storage, run_id, retention_days)

    with ThreadPoolExecutor(max_workers=2) as pool:
        fetching = pool.submit(fetch)
        reading = pool.submit(read_state)
        state = reading.result()  # first: a wrong bucket or refused credentials (exit 2) outrank an API failure
        result = fetching.result()
    interrupt.check()  # nothing written yet
    report.seen = state.seen
    if result.events is None and (state.rebuilt or cached.get("state_etag") != state.etag):
        log.info("the state changed since the cached answer was stored; fetching the feed in full")
        result = fetch(conditional=False)

    metrics.count(
        http_status=result.status, bytes_wire=result.bytes_wire, bytes_decoded=result.bytes_decoded,
        retries=result.retries, api_requests=result.requests, seen_ids=len(state.seen),
    )
    if result.events is None:
        report.not_modified = True
        metrics.count(api_events=0, new_events=0, updated_events=0, unchanged_events=0,
                      invalid_events=0, objects_written=0)
        log.info("API answered 304 Not Modified: nothing new since the last stored answer")
        return report

    from polisen_collector.recovery.gaps import detect_gap  # only an answer with events is checked for a gap

    with metrics.step("deduplication"):
        events = validate_all(result.events, metrics)
        report.answered, report.answered_ids = events, answered_ids(result.events)
        changes = find_changes(events, state.seen)
        report.gap = detect_gap(events, state.last_answer_at, state.seen)
    report.answered_at = answered_at = result.served_at or utc_now()  # the server's clock, the events' times' clock
    report.fetched = len(result.events)
    report.invalid = metrics.counts.get("invalid_events", 0)
    report.new, report.updated, report.unchanged = len(changes.new), len(changes.updated), changes.unchanged
    metrics.count(api_events=report.fetched, new_events=report.new, updated_events=report.updated,
                  unchanged_events=report.unchanged, objects_written=0)
    for event in changes.updated:
        log.info("event %d was edited since it was stored; storing the new version", event.id)
    if dry_run:
        return report
    if report.gap and on_gap is not None:
        report.gap_queued = on_gap(report.gap)  # before the state learns the answer: see backfill.queue_gap

    with metrics.step("save_events"):
        report.objects_written = write_events(storage, changes.stored, run_id)
    metrics.count(objects_written=len(report.objects_written))
    state_etag = state.etag
    if (changes.stored or not state.exists or state.rebuilt
            or updated_state(state.seen, [], events, utc_today()) != state.seen):  # an answered id seen on a new day
        with metrics.step("metadata_update"):
            state_etag = commit_state(storage, state, changes.stored, events, run_id=run_id, retention_days=retention_days,
                                      metrics=metrics,
                                      answered_at=answered_at)
    if api_cache is not None:
        api_cache.save(client.options.url, result, state_etag)
    return report
