"""The state object `metadata/last_seen.json`: which event versions the archive holds.

It maps each remembered id to the hash of the version stored last, the event's own date,
and the last day (UTC) an API answer contained it. An id is forgotten only when no answer
has shown it for STATE_RETENTION_DAYS: not by its event date (old events do reappear in
the feed, one from March was served in late May) and not because one short answer lacked
it, so the state stays bounded without forgetting anything the API can still serve.

Format 3, the one written, is gzip-compressed JSON. Its `seen` is held in columns:
ids ascending, each as its difference from the one before, and the three entry fields as
parallel lists, about 11 bytes an id. Once it remembers a few hundred ids the object is a
head over a write-once base (storage/delta_map.py): `base` names the base, `seen` holds
only the entries that differ from it, `forgotten` the ids gone from it and `carried` how
many entries the heads have carried since the base, so a run moves a few KB however long
the retention. Formats 2 (columns, no base) and 1 (plain JSON, `seen`
a mapping) are still read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from polisen_collector import readback
from polisen_collector.archive.layout import collection_time, group_by_day, list_event_objects, read_day
from polisen_collector.clock import utc_now
from polisen_collector.messages import one_line
from polisen_collector.readback import shown
from polisen_collector.storage.base import Storage, StorageError, StoredObject
from polisen_collector.storage.delta_map import (
    DEFAULT_LIMIT,
    Base,
    UnusableBase,
    gzip_json,
    head_fields,
    json_of,
    load_head,
)

log = logging.getLogger("polisen.state")

STATE_OBJECT = "metadata/last_seen.json"
STATE_FORMAT = 3
READABLE_FORMATS = (1, 2, 3)
STATE_CONTENT_TYPE = "application/gzip"
BASE_KIND = "last_seen"
COLUMNS = ("id_deltas", "hash", "day", "last_seen")
HEAD_KEYS = ("seen", "base", "forgotten", "carried")
"""The fields that hold the entries; every other field of the document is the state's own."""


class CorruptState(StorageError):
    """The state object exists but cannot be read as a state; carries it for safekeeping."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


Entry = tuple[str, str, str]
"""(content hash of the version stored last, event date, last day seen in an answer)."""


@dataclass
class State:
    """The remembered versions, and the stored object they were read from (None: there was none)."""

    seen: dict[int, Entry] = field(default_factory=dict)
    source: StoredObject | None = None
    rebuilt: bool = False
    last_answer_at: datetime | None = None
    """When the feed answer stored last was served (gaps.py judges outages by it); None: unknown."""
    base: Base = field(default_factory=Base)
    """The base the state was read over; the next write carries only what differs from it."""

    @property
    def etag(self) -> str | None:
        return self.source.etag if self.source else None

    @property
    def exists(self) -> bool:
        return self.source is not None


def rows_of_columns(columns: Any) -> dict[int, tuple[Any, ...]]:
    """Format 2 and 3 columns as id -> entry; ValueError, TypeError or KeyError when malformed."""
    deltas, *fields = (columns[key] for key in COLUMNS)
    if not all(isinstance(column, list) for column in (deltas, *fields)):
        raise TypeError("a column is not a list")
    if any(len(column) != len(deltas) for column in fields) or any(
            type(delta) is not int or delta <= 0 for delta in deltas):
        raise ValueError("columns of different lengths or ids not ascending")
    rows = {}
    event_id = 0
    for delta, *entry in zip(deltas, *fields, strict=True):
        event_id += delta
        rows[event_id] = tuple(entry)
    return rows


def columns_of_rows(rows: Mapping[int, Sequence[Any]]) -> dict[str, list[Any]]:
    numbers = sorted(rows)
    entries = [rows[number] for number in numbers]
    return {
        "id_deltas": [b - a for a, b in zip([0, *numbers], numbers, strict=False)],
        **{key: [entry[index] for entry in entries] for index, key in enumerate(COLUMNS[1:])},
    }


def parse_document(data: bytes, storage: Storage | None = None, max_bytes: int = DEFAULT_LIMIT,
                   ) -> tuple[dict[str, Any], dict[int, Any], Base]:
    """The document's other fields, its entries (a format 3 head merged with its base), and that base.

    `max_bytes` bounds what the head and its base may decompress to (delta_map.decoded_limit)."""
    try:
        document = json_of(data, max_bytes)
    except ValueError as error:
        raise CorruptState(f"{STATE_OBJECT} is not valid (gzip-compressed) JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") not in READABLE_FORMATS:
        raise CorruptState(f"{STATE_OBJECT} is not a state object of format {', '.join(map(str, READABLE_FORMATS))}")
    fields = {key: value for key, value in document.items() if key not in HEAD_KEYS}
    if document["format"] == 1:
        if not isinstance(document.get("seen"), dict):
            raise CorruptState(f"{STATE_OBJECT} has no 'seen' mapping")
        return fields, document["seen"], Base()
    try:
        rows, base = load_head(storage, document, rows_of_columns, "seen", "forgotten", max_bytes=max_bytes)
    except (TypeError, ValueError, KeyError) as error:
        raise CorruptState(f"{STATE_OBJECT} has malformed columns: {error}") from None
    except UnusableBase as error:
        raise CorruptState(f"{STATE_OBJECT} is unusable: {error}") from None
    return fields, rows, base


def decode_state(data: bytes, storage: Storage | None = None, max_bytes: int = DEFAULT_LIMIT,
                 ) -> tuple[dict[int, Entry], datetime | None, Base]:
    """The remembered versions, `last_answer_at` and the base they were read over, or CorruptState.

    Every entry is checked as strictly as a setting: a hash that is not one (a number, say)
    would never match, and the event would be stored again on every run."""
    document, rows, base = parse_document(data, storage, max_bytes)
    result = {}
    for key, value in rows.items():
        try:
            result[readback.event_id(key)] = entry_of(value)
        except (TypeError, ValueError) as error:
            raise CorruptState(f"{STATE_OBJECT} has a malformed entry: {one_line(key, 30)}: {error}") from None
    return result, last_answer_of(document), base


HASH = re.compile(r"[0-9A-Za-z]+(?:\+[0-9A-Za-z]+)*")
"""A content hash (archive/events.content_hash: hex), or several joined by `+` (archive/ingest.answer_hashes)."""
MAX_HASH = 4096


def entry_of(value: Any) -> Entry:
    """One remembered entry, (hash, event date, last day seen), or ValueError saying what is wrong."""
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError("not a (hash, day, last seen) entry")
    content_hash, day, last_seen = value
    if not (isinstance(content_hash, str) and 0 < len(content_hash) <= MAX_HASH and HASH.fullmatch(content_hash)):
        raise ValueError(f"hash {shown(content_hash)} is not one")
    return content_hash, readback.named("day", readback.iso_day, day), readback.named("last seen", readback.iso_day, last_seen)


def encode_state(
    seen: dict[int, Entry], run_id: str, last_answer_at: datetime | None = None, *,
    storage: Storage | None = None, base: Base | None = None,
) -> bytes:
    """The state's bytes; with `storage`, a head over `base` (or over a new base written now)."""
    return gzip_json({
        "format": STATE_FORMAT,
        "updated_at": utc_now().isoformat(timespec="seconds"),
        "updated_by_run": run_id,
        LAST_ANSWER_KEY: last_answer_at.isoformat(timespec="seconds") if last_answer_at else None,
        **head_fields(storage, BASE_KIND, seen, base, pack=columns_of_rows, rows_key="seen", removed_key="forgotten"),
    })


def read_state(stored: StoredObject | None, storage: Storage | None, max_bytes: int = DEFAULT_LIMIT) -> State:
    """The state in a stored object of `storage` (None: no state yet); CorruptState if it is unusable."""
    if stored is None:
        return State()
    try:
        seen, last_answer_at, base = decode_state(stored.data, storage, max_bytes)
    except CorruptState as error:
        raise CorruptState(str(error), data=stored.data) from None
    return State(seen=seen, source=stored, last_answer_at=last_answer_at, base=base)


LAST_ANSWER_KEY = "last_answer_at"


def last_answer_of(document: dict[str, Any]) -> datetime | None:
    """The state's `last_answer_at`; None when absent (a state written before it existed) or unusable."""
    value = document.get(LAST_ANSWER_KEY)
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return stamp if stamp is not None and stamp.tzinfo is not None else None


def prune(seen: dict[int, Entry], today: date, retention_days: int) -> dict[int, Entry]:
    """Forget ids that no answer has shown for more than retention_days, counted back from the
    newest event the state remembers, or from `today` when that is earlier: a clock that jumps
    ahead (a VM restored, a wrong NTP step) forgets nothing, nor does one entry dated far ahead
    (a poisoned state) make it forget the others, whose events would then be stored again."""
    if not seen:
        return seen
    newest = min(date.fromisoformat(max(entry[1] for entry in seen.values())), today)
    cutoff = (newest - timedelta(days=retention_days)).isoformat()
    return {event_id: entry for event_id, entry in seen.items() if entry[2] >= cutoff}


def rebuild_from_archive(storage: Storage, today: date, retention_days: int) -> dict[int, Entry]:
    """Recreate the state by reading the whole archive, the latest version of each id winning.

    The whole archive, because an event's date says nothing about when it was stored.
    An id's last-seen day becomes the day its latest version was collected (or its event date).
    """
    names = list_event_objects(storage)
    seen: dict[int, Entry] = {}
    latest_run: dict[int, str] = {}
    bad = 0
    for day, day_names in group_by_day(names):
        found = read_day(storage, day.isoformat(), day_names)  # read again if a compaction elsewhere changed it
        for line in found.bad:
            log.warning("skipping unreadable archive line: %s", line)
        bad += len(found.bad)
        for version in found.versions:
            event = version.event
            collected = collection_time(version.last_run)
            written = collected.date().isoformat() if collected else day.isoformat()
            last_seen = max(written, seen.get(event.id, ("", "", ""))[2])
            if version.last_run >= latest_run.get(event.id, ""):
                latest_run[event.id] = version.last_run
                seen[event.id] = (event.hash, event.day, last_seen)
            else:
                seen[event.id] = (*seen[event.id][:2], last_seen)
    log.warning("rebuilt the state from the archive: %d ids from %d objects (%d bad lines)",
                len(seen), len(names), bad)
    return prune(seen, today, retention_days)
