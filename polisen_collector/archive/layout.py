"""Reading the archive back: which objects hold which day, and the events in them.

Object names carry the run that wrote them (`events-<run id>.jsonl`, run ids sort by
time), so the order of names within a day is the order in which versions were collected.
Compaction (compaction.py) merges a day's objects into `compacted-YYYYMMDD-<digest>.jsonl`,
still one raw API object per line, beside `compacted-YYYYMMDD-<digest>.collected.json`, which
keeps the runs that first and last stored each version; the digest is of the two objects'
content, so a day compacted again with new versions gets a new name. Archives made before
name theirs `compacted-YYYYMMDD.jsonl`. `read_versions` reads every kind alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from itertools import groupby
from typing import Any

from polisen_collector.archive.events import Event, InvalidEvent, encode_jsonl, partition_prefix, validate_event
from polisen_collector.clock import utc_now
from polisen_collector.storage.base import Reader, Storage, StorageError, StoredObject

log = logging.getLogger("polisen.archive")

EVENTS_PREFIX = "events/"
COMPACTED_PREFIX = "compacted-"
COLLECTED_TIMES_FORMAT = 1
MOVE_WINDOW_DAYS = 7
"""How many days away an edit that changed an event's date is looked for: the export merges an id's
versions over this many days, the audit looks this far for the new day of an event its day lacks."""


@dataclass(frozen=True)
class BadLine:
    """A line of an archive object that is not an event object."""

    object_name: str
    line_number: int
    reason: str

    def __str__(self) -> str:
        """Line 0 is the whole object (outside its day's folder, its sidecar missing)."""
        where = f" line {self.line_number}" if self.line_number else ""
        return f"{self.object_name}{where}: {self.reason}"


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by time: `20260520T054943.123Z-1a2b3c`."""
    import secrets

    now = now or utc_now()
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
    """Event objects under prefix, in collection order within each day; only those in the folder of their day
    (`events/2026/05/20/`, not `events/2026/5/20/`, which the export reports and skips, and compaction leaves)."""
    return sorted((n for n in storage.list(prefix) if in_its_folder(n)), key=collection_order_key)


def in_its_folder(name: str) -> bool:
    """An event object in the one folder of its day (names sort by date only there)."""
    day = day_of_object(name)
    return day is not None and name.startswith(partition_prefix(day.isoformat()))


def iter_numbered_lines(storage: Reader, name: str) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """The JSON objects of one archive object with their line numbers, a BadLine for each unusable line."""
    stored = storage.get(name)
    if stored is None:
        return
    for number, line in enumerate(stored.data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            yield number, BadLine(name, number, f"invalid JSON: {error}")
            continue
        except RecursionError:
            yield number, BadLine(name, number, "invalid JSON: nested too deeply")
            continue
        if not isinstance(value, dict):
            yield number, BadLine(name, number, f"not an object but {type(value).__name__}")
            continue
        yield number, value


def is_compacted(name: str) -> bool:
    return name.rsplit("/", 1)[-1].startswith(COMPACTED_PREFIX)


def compacted_object_name(day: date, compacted: bytes, collected_times: bytes) -> str:
    """A day's compacted object, named by its content and its sidecar's: a rerun writes the same name, a day
    compacted again with other versions or times a new one, so that a reader who tells changes by names
    alone (export --update) sees the change."""
    digest = hashlib.sha256(hashlib.sha256(compacted).digest() + collected_times).hexdigest()[:16]
    return f"{partition_prefix(day.isoformat())}{COMPACTED_PREFIX}{day:%Y%m%d}-{digest}.jsonl"


def collected_times_name(compacted_name: str) -> str:
    """The sidecar of a compacted object; not `*.jsonl`, so raw readers never see it."""
    return compacted_name.removesuffix(".jsonl") + ".collected.json"


def run_id_of_object(name: str) -> str | None:
    """`events/2026/05/20/events-<run id>.jsonl` -> the run id; None for other objects."""
    filename = name.rsplit("/", 1)[-1]
    if not filename.startswith("events-") or not filename.endswith(".jsonl"):
        return None
    return filename[len("events-"):-len(".jsonl")]


_RUN_STAMP = re.compile(r"\d{8}T\d{6}\.\d{1,6}Z")


@lru_cache(maxsize=4096)
def collection_time(run_id: str) -> datetime | None:
    """When a run collected its events: the timestamp its id starts with (cached: export asks per row)."""
    stamp = run_id.split("-", 1)[0]
    if not _RUN_STAMP.fullmatch(stamp):
        return None
    try:  # basic ISO 8601 (20260520T093809.123Z): fromisoformat is 50 times quicker than strptime
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def group_by_day(names: Iterable[str]) -> Iterator[tuple[date, list[str]]]:
    """(day, its objects) from a listing of event objects, in the listing's order (names of no day are left out)."""
    for day, group in groupby(names, key=day_of_object):
        if day is not None:
            yield day, list(group)


@dataclass
class Version:
    """One distinct content of an event, with the runs that first and last stored it."""

    event: Event
    first_run: str
    last_run: str

    @property
    def key(self) -> str:
        return version_key(self.event)


def version_key(event: Event) -> str:
    return f"{event.id}:{event.hash}"


def encode_collected_times(versions: list[Version]) -> bytes:
    document = {
        "format": COLLECTED_TIMES_FORMAT,
        "collected": {v.key: [v.first_run, v.last_run] for v in versions},
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def encode_compacted(versions: list[Version]) -> bytes:
    return encode_jsonl([v.event.raw for v in versions])


def read_collected_times(storage: Reader, compacted_name: str) -> dict[str, tuple[str, str]] | None:
    """The sidecar of a compacted object; None when it is missing or unreadable."""
    stored = storage.get(collected_times_name(compacted_name))
    if stored is None:
        return None
    try:
        document = json.loads(stored.data)
        return {key: (str(first), str(last)) for key, (first, last) in document["collected"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


@dataclass
class DayVersions:
    """What read_versions found in a day's objects."""

    versions: list[Version]
    bad: list[BadLine]
    copies: int


READ_ATTEMPTS = 3
"""How often a day is listed and read again when objects it listed were gone when read."""


class DayKeptChanging(StorageError):
    """A day's objects went between its listing and its reading, READ_ATTEMPTS times."""


class ListedReading:
    """The store as read_versions reads a day's objects, noting the listed objects that are gone."""

    def __init__(self, storage: Reader, listed: Iterable[str]) -> None:
        self.storage, self.listed = storage, set(listed)
        self.gone: list[str] = []

    def get(self, name: str) -> StoredObject | None:
        stored = self.storage.get(name)
        if stored is None and name in self.listed:
            self.gone.append(name)
        return stored


def read_day(storage: Storage, day: str, names: Iterable[str] | None = None) -> DayVersions:
    """The distinct versions of one day's partition (`YYYY-MM-DD`), as read_versions gives them, from `names`
    (the day's objects as a listing saw them) or from a listing of its own. An object listed but gone when
    read (a compaction merged it into a new object, then deleted it) has the day listed and read again:
    never a day read short (DayKeptChanging when it keeps changing)."""
    gone = ""
    for _ in range(READ_ATTEMPTS):
        listed = list_event_objects(storage, partition_prefix(day)) if names is None else list(names)
        reading = ListedReading(storage, listed)
        found = read_versions(reading, listed)
        if not reading.gone:
            return found
        gone, names = reading.gone[0], None
    raise DayKeptChanging(f"{gone} was listed but gone when read, {READ_ATTEMPTS} times: the archive kept changing "
                          "(a compaction?)")


def read_versions(storage: Reader, names: list[str]) -> DayVersions:
    """The distinct versions in a day's objects, in collection order (last stored last).

    Identical copies (a crash between the event and the state write, or objects that a
    killed compaction left beside the compacted one) are merged: earliest first run,
    latest last run. So a day reads the same before, during and after compaction.
    """
    merged: dict[str, Version] = {}
    bad: list[BadLine] = []
    untimed: dict[str, set[str]] = {}  # a compacted object without its sidecar -> the keys of its versions
    copies = 0
    for name in names:
        times: dict[str, tuple[str, str]] = {}
        run = run_id_of_object(name) or ""
        if is_compacted(name):
            times = read_collected_times(storage, name) or {}
            if not times:
                untimed[name] = set()
        for number, item in iter_numbered_lines(storage, name):
            if isinstance(item, BadLine):
                bad.append(item)
                continue
            try:
                event = validate_event(item)
            except InvalidEvent as error:
                bad.append(BadLine(name, number, f"invalid event: {error}"))
                continue
            key = version_key(event)
            if name in untimed:
                untimed[name].add(key)
            first, last = times.get(key, (run, run))
            known = merged.get(key)
            if known is None:
                merged[key] = Version(event, first, last)
                continue
            copies += 1
            known.first_run = min((r for r in (known.first_run, first) if r), default="")
            known.last_run = max(known.last_run, last)
    for name, keys in untimed.items():  # harmless when another object has every version with its times
        if not keys or any(not merged[key].last_run for key in keys):  # (compactions racing on several hosts)
            bad.append(BadLine(name, 0, f"{collected_times_name(name)} is missing or unreadable: "
                                        "collection times unknown"))
    order = {key: index for index, key in enumerate(merged)}
    versions = sorted(merged.values(), key=lambda v: (v.last_run, order[v.key]))
    return DayVersions(versions, bad, copies)
