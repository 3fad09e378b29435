"""Reading the archive back: which objects hold which day, and the events in them.

Object names carry the run that wrote them (`events-<run id>.jsonl`, run ids sort by
time), so the order of names within a day is the order in which versions were collected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from events import partition_prefix
from storage import Storage

log = logging.getLogger("polisen.archive")

EVENTS_PREFIX = "events/"


@dataclass(frozen=True)
class BadLine:
    """A line of an archive object that is not an event object."""

    object_name: str
    line_number: int
    reason: str

    def __str__(self) -> str:
        return f"{self.object_name} line {self.line_number}: {self.reason}"


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by time: `20260520T054943.123Z-1a2b3c`."""
    import secrets

    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z-" + secrets.token_hex(3)


def run_object_name(day: str, run_id: str) -> str:
    return f"{partition_prefix(day)}events-{run_id}.jsonl"


def day_of_object(name: str) -> date | None:
    """`events/2026/05/20/x.jsonl` -> date(2026, 5, 20); None for anything else."""
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != "events" or not parts[4].endswith(".jsonl"):
        return None
    try:
        return date(int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        return None


def collection_order_key(name: str) -> tuple[str, int, str]:
    """Sort key of a day's objects: compacted objects (older versions) before per-run ones."""
    filename = name.rsplit("/", 1)[-1]
    return (name.rsplit("/", 1)[0], 0 if filename.startswith("compacted") else 1, filename)


def list_event_objects(storage: Storage, prefix: str = EVENTS_PREFIX) -> list[str]:
    """Event objects under prefix, in collection order within each day."""
    return sorted((n for n in storage.list(prefix) if day_of_object(n) is not None), key=collection_order_key)


def iter_object_lines(storage: Storage, name: str) -> Iterator[dict[str, Any] | BadLine]:
    """The JSON objects of one archive object, with a BadLine for each unusable line."""
    stored = storage.get(name)
    if stored is None:
        return
    for number, line in enumerate(stored.data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            yield BadLine(name, number, f"invalid JSON: {error}")
            continue
        if not isinstance(value, dict):
            yield BadLine(name, number, f"not an object but {type(value).__name__}")
            continue
        yield value
