"""Storing events in the archive: validate, find new and edited versions, write them, then the state.

Events are written before the state that remembers them, so a crash at any point loses
nothing: the next run sees the same events as new and stores them again. The price is
that a crash between the two writes can leave an identical copy (same id and content)
in the archive; readers drop it (export_events.py does). The feed run, backfill and the
audit all store events through these steps.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from polisen_collector.archive.events import Event, InvalidEvent, encode_jsonl, validate_event
from polisen_collector.archive.layout import list_event_objects, run_object_name
from polisen_collector.archive.state import (
    STATE_CONTENT_TYPE,
    STATE_OBJECT,
    CorruptState,
    Entry,
    State,
    encode_state,
    prune,
    read_state,
    rebuild_from_archive,
)
from polisen_collector.clock import utc_now, utc_today
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.storage.base import Storage, StoredObject, update_object
from polisen_collector.storage.delta_map import decoded_limit

log = logging.getLogger("polisen.ingest")

PARALLEL_WRITES = 8
LOGGED_INVALID = 5
"""Invalid events of one answer logged one by one; the rest are counted in one line."""


class InvalidAnswer(Exception):
    """Most events of an answer are invalid: the API's format changed, or the answer is garbage."""


@dataclass
class Changes:
    new: list[Event] = field(default_factory=list)
    updated: list[Event] = field(default_factory=list)
    unchanged: int = 0

    @property
    def stored(self) -> list[Event]:
        return self.new + self.updated



def validate_all(raws: list[Any], metrics: RunMetrics) -> list[Event]:
    """Valid events of an answer; invalid ones are skipped, the first few logged, the rest counted.

    An answer in which more than half the events are invalid is not a quiet "0 new": it
    raises InvalidAnswer, so the run fails and says what is wrong with the events.
    """
    valid = []
    problems: list[str] = []
    now = utc_now()
    for raw in raws:
        try:
            valid.append(validate_event(raw, now))
        except InvalidEvent as error:
            problems.append(str(error))
            if len(problems) <= LOGGED_INVALID:
                log.warning("skipping invalid event: %s", error)
    if len(problems) > LOGGED_INVALID:
        log.warning("skipping %d more invalid events (%d of %d in this answer)",
                    len(problems) - LOGGED_INVALID, len(problems), len(raws))
    metrics.add("invalid_events", len(problems))
    if problems and len(problems) * 2 > len(raws):
        raise InvalidAnswer(f"{len(problems)} of {len(raws)} events in the API's answer are invalid "
                            f"(first: {problems[0]}); has the API changed its format? nothing was stored")
    return valid


def answer_hashes(events: list[Event]) -> dict[int, str]:
    """What the state records of each id of an answer: its hash, or, when the answer holds the
    id in several versions, their sorted hashes joined by `+` (the same whatever their order)."""
    hashes: dict[int, set[str]] = defaultdict(set)
    for event in events:
        hashes[event.id].add(event.hash)
    return {event_id: "+".join(sorted(versions)) for event_id, versions in hashes.items()}


def known_hashes(entry: Entry) -> set[str]:
    return set(entry[0].split("+"))


def find_changes(events: list[Event], seen: dict[int, Entry]) -> Changes:
    """Split events into new ids, edited versions, and versions already stored.

    An id twice in one answer with different content is stored once per distinct version;
    the state then remembers all of them (answer_hashes), so the next run stores none again.
    """
    changes = Changes()
    batch: set[tuple[int, str]] = set()
    new_ids: set[int] = set()
    for event in events:
        if (event.id, event.hash) in batch:
            continue
        batch.add((event.id, event.hash))
        known = seen.get(event.id)
        if known is None and event.id not in new_ids:
            new_ids.add(event.id)
            changes.new.append(event)
        elif known is None or event.hash not in known_hashes(known):
            changes.updated.append(event)
        else:
            changes.unchanged += 1
    return changes


def load_or_recover_state(storage: Storage, run_id: str, retention_days: int) -> State:
    """The state, rebuilt from the archive when it is missing or corrupt but events exist."""
    return recover_state(storage, storage.get(STATE_OBJECT), run_id, retention_days)


class HeldState:
    """The state as a job over many days (backfill, audit) last decoded it, used again while the
    store still has that very object: a day that stored nothing decodes no state."""

    def __init__(self) -> None:
        self.state: State | None = None

    def load(self, storage: Storage, run_id: str, retention_days: int) -> State:
        stored = storage.get(STATE_OBJECT)
        held = self.state
        if held is None or held.rebuilt or held.etag is None or stored is None or stored.etag != held.etag:
            held = self.state = recover_state(storage, stored, run_id, retention_days)
        return held


def recover_state(storage: Storage, stored: StoredObject | None, run_id: str, retention_days: int) -> State:
    """The state in `stored`; a corrupt one is kept aside and, like a missing one, rebuilt from the archive."""
    today = utc_today()
    try:
        state = read_state(stored, storage, decoded_limit(retention_days))
    except CorruptState as error:
        keep = f"{STATE_OBJECT}.corrupt-{run_id}"
        storage.put(keep, error.data)
        log.error("%s; kept it as %s and rebuilding the state from the archive", error, keep)
        return State(seen=rebuild_from_archive(storage, today, retention_days), source=stored, rebuilt=True)
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
    """The state after this run: stored versions recorded, every answered id marked seen today.

    An id answered in fewer versions than the state remembers (answer_hashes) is narrowed to
    them, so a later return to a dropped version is stored as an edit.
    """
    result = dict(seen)
    hashes = answer_hashes(answered or stored)
    for event in stored:
        result[event.id] = (hashes.get(event.id, event.hash), event.day, today.isoformat())
    for event in answered:
        entry = result.get(event.id)
        if entry is None:
            continue
        answered_hashes = hashes[event.id]
        narrowed = answered_hashes if set(answered_hashes.split("+")) < known_hashes(entry) else entry[0]
        if entry[2] != today.isoformat() or narrowed != entry[0]:
            result[event.id] = (narrowed, entry[1], today.isoformat())
    return result


def commit_state(
    storage: Storage, state: State, stored: list[Event], answered: list[Event], *, run_id: str,
    retention_days: int, metrics: RunMetrics, answered_at: datetime | None = None,
) -> str:
    """Record the stored versions with a conditional write; on a lost race merge into the new state.

    `answered_at` is when the feed served `answered` (the state's last_answer_at); a backfill
    or audit passes None and leaves it as it is. Returns the etag of the state written.
    """
    today = utc_today()

    def change(current: StoredObject | None) -> bytes:
        nonlocal state
        if current is not state.source:
            metrics.add("state_conflicts", 1)
            log.warning("state changed under us (another collector?); merging into it")
            state = recover_state(storage, current, run_id, retention_days)
        seen = prune(updated_state(state.seen, stored, answered, today), today, retention_days)
        data = encode_state(seen, run_id, answered_at or state.last_answer_at, storage=storage, base=state.base)
        metrics.count(state_ids=len(seen), state_bytes=len(data))
        return data

    etag = update_object(storage, STATE_OBJECT, change, current=state.source, content_type=STATE_CONTENT_TYPE)
    assert etag is not None  # change always returns bytes
    return etag
