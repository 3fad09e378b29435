"""Withdrawal records in the archive: what polisen.se took back, when, and what it brought back.

The audit decides (recovery/withdrawals.py); this module stores and reads. A record is one
JSON line in `withdrawals/YYYY/MM/DD/withdrawals-<run id>.jsonl`, the folder being the
event's own date, like the folder of its events:

    {"id": 636465, "status": "withdrawn", "confirmed_at": "2026-05-27T08:22:10+00:00", "event_date": "2026-05-26",
     "content_hash": "0f3c...", "suspected_at": "2026-05-26T21:37:02+00:00"}

`confirmed_at` is when the API served the day's answer that confirmed the event gone (`withdrawn`:
the second that lacked it) or showed it again (`republished`); `suspected_at`, the first answer
known to lack it (the day's, or the feed's when the confirming host saw that).
Objects are only ever added, each under a new name, whole or not at all. An event's history
is its records in time order, each changing its status from the one before (published at
first); a record that repeats the status in force (two hosts auditing one day, a tick killed
after its record but before its progress) changes nothing, so readers drop it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from polisen_collector.archive.events import partition_prefix
from polisen_collector.archive.layout import BadLine, iter_numbered_lines
from polisen_collector.readback import MAX_ID
from polisen_collector.storage.base import Storage

WITHDRAWALS_PREFIX = "withdrawals/"
WITHDRAWN = "withdrawn"
REPUBLISHED = "republished"
STATUSES = (WITHDRAWN, REPUBLISHED)
RECORD_CONTENT_TYPE = "application/x-ndjson"


@dataclass(frozen=True)
class Record:
    """One change of an event's status, as the audit saw it in a day's answer."""

    id: int
    status: str
    confirmed_at: datetime
    event_date: str
    content_hash: str | None = None
    """The archived version that went (withdrawn) or the version answered (republished)."""
    suspected_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "confirmed_at": self.confirmed_at.isoformat(timespec="seconds"),
                "event_date": self.event_date, "content_hash": self.content_hash,
                "suspected_at": self.suspected_at.isoformat(timespec="seconds") if self.suspected_at else None}


def record_folder(day: str) -> str:
    """`2026-05-26` -> `withdrawals/2026/05/26/`, laid out like the events' folder of that day."""
    return WITHDRAWALS_PREFIX + partition_prefix(day).removeprefix("events/")


def record_object_name(day: str, run_id: str) -> str:
    """`withdrawals/2026/05/26/withdrawals-<run id>.jsonl`: the event date's folder, the run's name."""
    return f"{record_folder(day)}withdrawals-{run_id}.jsonl"


def day_of_record_object(name: str) -> date | None:
    """`withdrawals/2026/05/26/x.jsonl` -> date(2026, 5, 26); None for anything else."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != WITHDRAWALS_PREFIX.rstrip("/") or not parts[4].endswith(".jsonl"):
        return None
    try:
        day = date(int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        return None
    return day if name.startswith(record_folder(day.isoformat())) else None


def encode_records(records: Iterable[Record]) -> bytes:
    return "".join(json.dumps(record.as_json(), ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def write_records(storage: Storage, day: str, records: list[Record], run_id: str) -> str:
    """One new object holding the records of one event date; its name."""
    name = record_object_name(day, run_id)
    storage.put(name, encode_records(records), content_type=RECORD_CONTENT_TYPE)
    return name


def _time(value: Any, field: str) -> datetime:
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    if stamp is None or stamp.tzinfo is None:
        raise ValueError(f"{field} {value!r} is not a time with its offset")
    return stamp


def parse_record(value: dict[str, Any]) -> Record:
    """A record line's object as a Record; ValueError saying what is wrong."""
    event_id, status = value.get("id"), value.get("status")
    if isinstance(event_id, bool) or not isinstance(event_id, int) or not 1 <= event_id <= MAX_ID:
        raise ValueError(f"id {event_id!r} is not a positive integer up to 2**53")
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    event_date = value.get("event_date")
    if not isinstance(event_date, str):
        raise ValueError(f"event_date {event_date!r} is not a date")
    date.fromisoformat(event_date)
    content_hash = value.get("content_hash")
    suspected = value.get("suspected_at")
    return Record(event_id, status, _time(value.get("confirmed_at"), "confirmed_at"), event_date,
                  content_hash if isinstance(content_hash, str) else None,
                  _time(suspected, "suspected_at") if suspected is not None else None)


def list_record_objects(storage: Storage, prefix: str = WITHDRAWALS_PREFIX) -> list[str]:
    return [name for name in storage.list(prefix) if day_of_record_object(name) is not None]


def read_records(storage: Storage, names: Iterable[str], on_bad: Callable[[BadLine], None] | None = None) -> list[Record]:
    """The records of these objects in time order (ties: in the order they were written)."""
    found: list[tuple[datetime, str, int, Record]] = []
    for name in names:
        for number, item in iter_numbered_lines(storage, name):
            if isinstance(item, BadLine):
                if on_bad:
                    on_bad(item)
                continue
            try:
                record = parse_record(item)
            except ValueError as error:
                if on_bad:
                    on_bad(BadLine(name, number, f"invalid withdrawal record: {error}"))
                continue
            found.append((record.confirmed_at, name, number, record))
    found.sort(key=lambda entry: entry[:3])
    return [record for *_, record in found]


def read_day_records(storage: Storage, day: str) -> list[Record]:
    """The records of the events dated `day` (YYYY-MM-DD), in time order."""
    return read_records(storage, list_record_objects(storage, record_folder(day)))


def histories(records: Iterable[Record]) -> dict[int, list[Record]]:
    """Each id's changes of status in time order: the records that changed it (it was published at first)."""
    result: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        changes = result[record.id]
        current = changes[-1].status if changes else REPUBLISHED
        if record.status != current:
            changes.append(record)
    return {event_id: changes for event_id, changes in result.items() if changes}


def withdrawn_at(changes: list[Record]) -> datetime | None:
    """When the withdrawal in force began; None while the event is published."""
    return changes[-1].confirmed_at if changes and changes[-1].status == WITHDRAWN else None
