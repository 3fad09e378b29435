"""One collection run: fetch the feed, find new and edited events, store them, then the state.

Events are written before the state that remembers them, so a crash at any point loses
nothing: the next run sees the same events as new and stores them again. The price is
that a crash between the two writes can leave an identical copy (same id and content)
in the archive; readers drop it (export_events.py does).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from polisen_collector.api.client import ApiError, FetchResult, PolisenClient
from polisen_collector.archive.events import Event, InvalidEvent, encode_jsonl, validate_event
from polisen_collector.archive.layout import list_event_objects, run_object_name
from polisen_collector.archive.state import (
    STATE_OBJECT,
    CorruptState,
    Entry,
    State,
    encode_state,
    load_state,
    prune,
    rebuild_from_archive,
)
from polisen_collector.clock import utc_today
from polisen_collector.files import atomic_write
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.gaps import Gap, detect_gap
from polisen_collector.storage.base import PreconditionFailed, Storage, StorageError

log = logging.getLogger("polisen.collector")

STATE_WRITE_ATTEMPTS = 5
PARALLEL_WRITES = 8


@dataclass
class Changes:
    new: list[Event] = field(default_factory=list)
    updated: list[Event] = field(default_factory=list)
    unchanged: int = 0

    @property
    def stored(self) -> list[Event]:
        return self.new + self.updated


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

    def load(self) -> dict[str, str]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict):
            return {}
        return {k: v for k, v in document.items() if isinstance(v, str)}

    def save(self, url: str, result: FetchResult, state_etag: str | None) -> None:
        document = {"url": url, "etag": result.etag, "last_modified": result.last_modified, "state_etag": state_etag}
        document = {k: v for k, v in document.items() if v}
        if document != self.load():  # a run that found nothing new writes only its metrics and health
            atomic_write(self.path, json.dumps(document).encode("utf-8"), durable=False)


def validate_all(raws: list[Any], metrics: RunMetrics) -> list[Event]:
    """Valid events of an answer; each invalid one is logged with its id and skipped."""
    valid = []
    invalid = 0
    for raw in raws:
        try:
            valid.append(validate_event(raw))
        except InvalidEvent as error:
            invalid += 1
            log.warning("skipping invalid event: %s", error)
    metrics.add("invalid_events", invalid)
    return valid


def find_changes(events: list[Event], seen: dict[int, Entry]) -> Changes:
    """Split events into new ids, edited versions, and versions already stored."""
    changes = Changes()
    batch: set[tuple[int, str]] = set()
    for event in events:
        if (event.id, event.hash) in batch:
            continue
        batch.add((event.id, event.hash))
        known = seen.get(event.id)
        if known is None:
            changes.new.append(event)
        elif known[0] != event.hash:
            changes.updated.append(event)
        else:
            changes.unchanged += 1
    return changes


def load_or_recover_state(storage: Storage, run_id: str, retention_days: int) -> State:
    """The state, rebuilt from the archive when it is missing or corrupt but events exist."""
    today = utc_today()
    try:
        state = load_state(storage)
    except CorruptState as error:
        keep = f"{STATE_OBJECT}.corrupt-{run_id}"
        storage.put(keep, error.data)
        log.error("%s; kept it as %s and rebuilding the state from the archive", error, keep)
        return State(seen=rebuild_from_archive(storage, today, retention_days), etag=error.etag, exists=True,
                     rebuilt=True)
    if not state.exists and any(True for _ in list_event_objects(storage)):
        log.warning("%s is missing but the archive has events: rebuilding the state from it", STATE_OBJECT)
        state.seen = rebuild_from_archive(storage, today, retention_days)
        state.rebuilt = True
    return state


def write_events(storage: Storage, events: list[Event], run_id: str) -> list[str]:
    """One object per event date, written in parallel; any failure fails the run."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_day[event.day].append(event.raw)
    jobs = {run_object_name(day, run_id): encode_jsonl(raws) for day, raws in sorted(by_day.items())}
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL_WRITES, len(jobs))) as pool:
        futures = [
            pool.submit(storage.put, name, data, content_type="application/x-ndjson")
            for name, data in jobs.items()
        ]
        for future in futures:
            future.result()
    return list(jobs)


def updated_state(seen: dict[int, Entry], stored: list[Event], answered: list[Event], today: date) -> dict[int, Entry]:
    """The state after this run: stored versions recorded, every answered id marked seen today."""
    result = dict(seen)
    for event in stored:
        result[event.id] = (event.hash, event.day, today.isoformat())
    for event in answered:
        entry = result.get(event.id)
        if entry is not None and entry[2] != today.isoformat():
            result[event.id] = (entry[0], entry[1], today.isoformat())
    return result


def commit_state(
    storage: Storage, state: State, stored: list[Event], answered: list[Event], run_id: str,
    retention_days: int, metrics: RunMetrics,
) -> str:
    """Record the stored versions with a conditional write; on a lost race reload and merge.

    Returns the etag of the state written.
    """
    today = utc_today()
    for attempt in range(1, STATE_WRITE_ATTEMPTS + 1):
        seen = prune(updated_state(state.seen, stored, answered, today), today, retention_days)
        data = encode_state(seen, run_id)
        try:
            etag = storage.put(
                STATE_OBJECT, data, content_type="application/json",
                if_match=state.etag if state.exists else None, if_none_match=not state.exists,
            )
            metrics.count(state_ids=len(seen), state_bytes=len(data))
            return etag
        except PreconditionFailed:
            metrics.add("state_conflicts", 1)
            log.warning("state changed under us (another collector?); reloading and merging, attempt %d", attempt)
            state = load_or_recover_state(storage, run_id, retention_days)
    raise StorageError(f"could not write {STATE_OBJECT}: it kept changing during {STATE_WRITE_ATTEMPTS} attempts")


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
    """One collection: fetch and read the state in parallel, store what is new, then the state."""
    report = RunReport()
    cached = api_cache.load() if api_cache else {}
    if cached.get("url") != client.options.url:
        cached = {}

    def fetch(conditional: bool = True) -> FetchResult:
        validators = {"etag": cached.get("etag"), "last_modified": cached.get("last_modified")} if conditional else {}
        with metrics.step("api_fetch"):
            try:
                return client.fetch_events(**validators)
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

    with metrics.step("deduplication"):
        events = validate_all(result.events, metrics)
        changes = find_changes(events, state.seen)
        report.gap = detect_gap(len(result.events), events, state.seen)
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
    refreshed = updated_state(state.seen, [], events, utc_today()) != state.seen
    if changes.stored or refreshed or not state.exists or state.rebuilt:
        with metrics.step("metadata_update"):
            state_etag = commit_state(storage, state, changes.stored, events, run_id, retention_days, metrics)
    if api_cache is not None:
        api_cache.save(client.options.url, result, state_etag)
    return report
