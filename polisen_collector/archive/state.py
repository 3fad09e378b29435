"""The state object `metadata/last_seen.json`: which event versions the archive holds.

It maps each remembered id to the hash of the version stored last, the event's own date,
and the last day (UTC) an API answer contained it. An id is forgotten only when no answer
has shown it for STATE_RETENTION_DAYS: not by its event date (old events do reappear in
the feed, one from March was served in late May) and not because one short answer lacked
it, so the state stays bounded without forgetting anything the API can still serve.

Format 2 (written since issue 16) is gzip-compressed JSON whose `seen` is held in columns:
ids ascending, each as its difference from the one before, and the three entry fields as
parallel lists; every other top-level field is kept as it is. About 11 bytes an id, a
fifth of format 1 (plain JSON, `seen` a mapping), which is still read.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from polisen_collector.archive.layout import collection_time, group_by_day, list_event_objects, read_versions
from polisen_collector.clock import utc_now
from polisen_collector.storage.base import Storage, StorageError, StoredObject

log = logging.getLogger("polisen.state")

STATE_OBJECT = "metadata/last_seen.json"
STATE_FORMAT = 2
READABLE_FORMATS = (1, 2)
STATE_CONTENT_TYPE = "application/gzip"


class CorruptState(StorageError):
    """The state object exists but cannot be read as a state; carries it for safekeeping."""

    def __init__(self, message: str, data: bytes = b"", etag: str | None = None) -> None:
        super().__init__(message)
        self.data = data
        self.etag = etag


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

    @property
    def etag(self) -> str | None:
        return self.source.etag if self.source else None

    @property
    def exists(self) -> bool:
        return self.source is not None


def load_document(data: bytes) -> dict[str, Any]:
    """The state document of either format, `seen` as a mapping of id text to entry list (format 1's shape)."""
    try:
        document = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    except (ValueError, EOFError, OSError, zlib.error) as error:
        raise CorruptState(f"{STATE_OBJECT} is not valid (gzip-compressed) JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") not in READABLE_FORMATS:
        raise CorruptState(f"{STATE_OBJECT} is not a state object of format {' or '.join(map(str, READABLE_FORMATS))}")
    if document["format"] == 2:
        columns = document.get("seen")
        try:
            deltas, *fields = (columns[key] for key in ("id_deltas", "hash", "day", "last_seen"))
            if any(len(column) != len(deltas) for column in fields) or any(delta <= 0 for delta in deltas):
                raise ValueError("columns of different lengths or ids not ascending")
            seen = {}
            event_id = 0
            for delta, *entry in zip(deltas, *fields, strict=True):
                event_id += delta
                seen[str(event_id)] = entry
        except (TypeError, ValueError, KeyError) as error:
            raise CorruptState(f"{STATE_OBJECT} has malformed columns: {error}") from None
        document["seen"] = seen
    return document


def dump_document(document: dict[str, Any]) -> bytes:
    """Format 2 bytes of a document in format 1's shape; fields other than `seen` pass through."""
    ids = sorted(document["seen"], key=int)
    entries = [document["seen"][key] for key in ids]
    numbers = [int(key) for key in ids]
    columns = {
        "id_deltas": [b - a for a, b in zip([0, *numbers], numbers, strict=False)],
        "hash": [entry[0] for entry in entries],
        "day": [entry[1] for entry in entries],
        "last_seen": [entry[2] for entry in entries],
    }
    compact = {**document, "format": STATE_FORMAT, "seen": columns}
    return gzip.compress(json.dumps(compact, separators=(",", ":")).encode("utf-8"), compresslevel=9, mtime=0)


def decode_state(data: bytes) -> tuple[dict[int, Entry], datetime | None]:
    """The remembered versions and `last_answer_at`, or CorruptState."""
    document = load_document(data)
    seen = document.get("seen")
    if not isinstance(seen, dict):
        raise CorruptState(f"{STATE_OBJECT} has no 'seen' mapping")
    try:
        result = {}
        for key, value in seen.items():
            content_hash, day, last_seen = value
            date.fromisoformat(day)
            date.fromisoformat(last_seen)
            result[int(key)] = (str(content_hash), day, last_seen)
        return result, last_answer_of(document)
    except (TypeError, ValueError) as error:
        raise CorruptState(f"{STATE_OBJECT} has a malformed entry: {error}") from None


def encode_state(seen: dict[int, Entry], run_id: str, last_answer_at: datetime | None = None) -> bytes:
    document = {
        "format": STATE_FORMAT,
        "updated_at": utc_now().isoformat(timespec="seconds"),
        "updated_by_run": run_id,
        LAST_ANSWER_KEY: last_answer_at.isoformat(timespec="seconds") if last_answer_at else None,
        "seen": {str(event_id): list(seen[event_id]) for event_id in sorted(seen)},
    }
    return dump_document(document)


def read_state(stored: StoredObject | None) -> State:
    """The state in a stored object (None: no state yet); CorruptState if it is unusable."""
    if stored is None:
        return State()
    try:
        seen, last_answer_at = decode_state(stored.data)
    except CorruptState as error:
        raise CorruptState(str(error), data=stored.data, etag=stored.etag) from None
    return State(seen=seen, source=stored, last_answer_at=last_answer_at)


LAST_ANSWER_KEY = "last_answer_at"


def last_answer_of(document: dict) -> datetime | None:
    """The state's `last_answer_at`; None when absent (a state written before it existed) or unusable."""
    value = document.get(LAST_ANSWER_KEY)
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return stamp if stamp is not None and stamp.tzinfo is not None else None


def prune(seen: dict[int, Entry], today: date, retention_days: int) -> dict[int, Entry]:
    """Forget ids that no answer has shown for more than retention_days."""
    cutoff = (today - timedelta(days=retention_days)).isoformat()
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
        found = read_versions(storage, day_names)
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
