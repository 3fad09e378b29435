"""The deduplicated dataset: rows built from the archive day by day, and writers for them.

A day's partition holds every version of the events dated that day (an edit keeps the
event's datetime), so deduplicating day by day is exact and memory holds one day at a time.
Should an edit ever move an event to another date, the days of the last MERGE_WINDOW_DAYS
stay buffered and its versions are merged still; beyond that window the id is reported
(export keeps a set of exported ids to notice, a few dozen bytes per event).
"""

from __future__ import annotations

import csv
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO

from polisen_collector.archive.layout import BadLine, Version, collection_time, group_by_day, list_event_objects, read_versions
from polisen_collector.pages.columns import GEOGRAPHY_COLUMNS, PAGE_COLUMNS, PageColumns, parquet_fields
from polisen_collector.storage.base import Storage

MERGE_WINDOW_DAYS = 7
PARQUET_ROW_GROUP = 50_000
PARQUET_EVENT_TZ = "Europe/Stockholm"

COLUMNS = [
    "id", "datetime", "name", "summary", "url", "type", "location_name", "latitude", "longitude",
    "first_collected", "last_collected", "versions", *PAGE_COLUMNS, *GEOGRAPHY_COLUMNS,
]


class ExportError(Exception):
    """The export cannot be done as asked; the message says why."""


@dataclass
class ExportOptions:
    all_versions: bool = False
    date_from: date | None = None
    date_to: date | None = None
    types: frozenset[str] = frozenset()
    locations: frozenset[str] = frozenset()


@dataclass
class ExportSummary:
    rows: int = 0
    days: int = 0
    versions_dropped: int = 0
    copies_dropped: int = 0
    filtered_out: int = 0
    bad_lines: int = 0
    unplaced: int = 0
    split_ids: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"{self.rows} rows from {self.days} days; {self.versions_dropped} older versions dropped, "
                f"{self.copies_dropped} identical copies dropped, {self.filtered_out} rows filtered out, "
                f"{self.bad_lines} bad lines skipped")
        if self.unplaced:
            text += f"; {self.unplaced} rows placed in no municipality or county (location_level unknown)"
        if self.split_ids:
            text += f"; {len(self.split_ids)} ids dated on days too far apart to merge, exported once per date"
        return text


def parse_gps(gps: Any) -> tuple[float | None, float | None]:
    """`"55.990257,13.595769"` -> (55.990257, 13.595769); (None, None) when unusable."""
    try:
        latitude, longitude = (float(part) for part in str(gps).split(","))
    except ValueError:
        return None, None
    return latitude, longitude


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def make_row(version: Version, first_run: str, last_run: str, versions: int) -> dict[str, Any]:
    raw = version.event.raw
    location = raw.get("location") if isinstance(raw.get("location"), dict) else {}
    latitude, longitude = parse_gps(location.get("gps"))
    return {
        "id": version.event.id,
        "datetime": version.event.when,
        "name": _text(raw.get("name")),
        "summary": _text(raw.get("summary")),
        "url": _text(raw.get("url")),
        "type": _text(raw.get("type")),
        "location_name": _text(location.get("name")),
        "latitude": latitude,
        "longitude": longitude,
        "first_collected": collection_time(first_run),
        "last_collected": collection_time(last_run),
        "versions": versions,
    }


def rows_of_id(versions: list[Version], all_versions: bool) -> list[dict[str, Any]]:
    """The latest version (stored last) or every version (in order of first collection)."""
    if all_versions:
        ordered = sorted(versions, key=lambda v: v.first_run)
        return [make_row(v, v.first_run, v.last_run, len(versions)) for v in ordered]
    latest = max(versions, key=lambda v: v.last_run)
    first = min((v.first_run for v in versions if v.first_run), default="")
    return [make_row(latest, first, latest.last_run, len(versions))]


def _matches(row: dict[str, Any], options: ExportOptions) -> bool:
    if options.types and (row["type"] or "").casefold() not in options.types:
        return False
    return not options.locations or (row["location_name"] or "").casefold() in options.locations


def iter_rows(
    storage: Storage,
    options: ExportOptions,
    summary: ExportSummary,
    on_bad: Callable[[BadLine], None],
    progress: Callable[[int, int, date], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of the export, day by day, ids ascending within a day."""
    days = [
        (day, names) for day, names in group_by_day(list_event_objects(storage))
        if (options.date_from is None or day >= options.date_from)
        and (options.date_to is None or day <= options.date_to)
    ]
    window: OrderedDict[date, dict[int, list[Version]]] = OrderedDict()
    exported: set[int] = set()
    pages = PageColumns(storage)

    def flush(groups: dict[int, list[Version]]) -> Iterator[dict[str, Any]]:
        for event_id in sorted(groups):
            versions = groups[event_id]
            if event_id in exported:
                summary.split_ids.append(event_id)
            exported.add(event_id)
            rows = rows_of_id(versions, options.all_versions)
            summary.versions_dropped += len(versions) - len(rows)
            rows = pages.add(rows, options.all_versions)
            for row in rows:
                if _matches(row, options):
                    summary.rows += 1
                    summary.unplaced += row["location_level"] == "unknown"
                    yield row
                else:
                    summary.filtered_out += 1

    for index, (day, names) in enumerate(days, start=1):
        if progress:
            progress(index, len(days), day)
        found = read_versions(storage, names)
        for line in found.bad:
            on_bad(line)
        summary.bad_lines += len(found.bad)
        summary.copies_dropped += found.copies
        summary.days += 1
        groups: dict[int, list[Version]] = {}
        for version in found.versions:
            groups.setdefault(version.event.id, []).append(version)
        for event_id, versions in groups.items():
            for earlier in window.values():
                versions.extend(earlier.pop(event_id, []))
        window[day] = groups
        while (day - next(iter(window))).days > MERGE_WINDOW_DAYS:  # no date arithmetic that overflows at year 1
            yield from flush(window.popitem(last=False)[1])
    while window:
        yield from flush(window.popitem(last=False)[1])


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def _text_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: _iso(value) if isinstance(value, datetime) else value for key, value in row.items()}


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO) -> None:
    out.writelines(json.dumps(_text_row(row), ensure_ascii=False) + "\n" for row in rows)


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_text_row(row))


def parquet_schema():
    import pyarrow as pa

    return pa.schema([
        ("id", pa.int64()),
        ("datetime", pa.timestamp("ms", tz=PARQUET_EVENT_TZ)),
        ("name", pa.string()),
        ("summary", pa.string()),
        ("url", pa.string()),
        ("type", pa.string()),
        ("location_name", pa.string()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("first_collected", pa.timestamp("ms", tz="UTC")),
        ("last_collected", pa.timestamp("ms", tz="UTC")),
        ("versions", pa.int64()),
        *parquet_fields(PARQUET_EVENT_TZ),
    ])


def write_parquet(rows: Iterator[dict[str, Any]], out) -> None:
    """Row groups of PARQUET_ROW_GROUP rows, so memory holds one group at a time."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("Parquet output needs pyarrow: python3 -m pip install -r requirements-extras.txt") from None
    schema = parquet_schema()
    with pq.ParquetWriter(out, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}
