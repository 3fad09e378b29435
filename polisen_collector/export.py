"""The deduplicated dataset: rows built from the archive day by day, and writers for them.

A day's partition holds every version of the events dated that day (an edit keeps the
event's datetime), so deduplicating day by day is exact, and the archive's listing is
streamed: memory holds a few days at a time, whatever the size of the archive. Should an
edit ever move an event to another date, the days of the last MERGE_WINDOW_DAYS stay
buffered and its versions are merged still; beyond that window the id is reported
(a bitmap of exported ids notices it, a few KB for years of the API's dense ids).
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any, TextIO

from polisen_collector.archive.events import partition_prefix
from polisen_collector.archive.layout import (
    EVENTS_PREFIX,
    MOVE_WINDOW_DAYS,
    BadLine,
    Version,
    collection_order_key,
    collection_time,
    day_of_object,
    group_by_day,
    in_its_folder,
    list_event_objects,
    read_day,
)
from polisen_collector.archive.withdrawals import (
    Record,
    day_of_record_object,
    histories,
    list_record_objects,
    read_records,
    record_folder,
    withdrawn_at,
)
from polisen_collector.clock import swedish_date
from polisen_collector.config import DEFAULT_API_URL
from polisen_collector.pages.columns import PageColumns
from polisen_collector.pages.store import day_of_page_object, day_prefix, iter_day_names
from polisen_collector.storage.base import Storage
from polisen_collector.urls import origin_of, site_url

if TYPE_CHECKING:  # pyarrow is an optional extra, imported by the Parquet writer only
    import pyarrow as pa

MERGE_WINDOW_DAYS = MOVE_WINDOW_DAYS
ROWS_VERSION = 3
"""Raise it when a change makes the rows of the same archive differ (other than a new column or parser
version, which are noticed anyway): an SQLite export made before is then rebuilt by its next --update."""
PARQUET_ROW_GROUP = 10_000
PARQUET_EVENT_TZ = "Europe/Stockholm"
DEFAULT_PAGE_ORIGIN = origin_of(DEFAULT_API_URL)

# Every column of the export and its kind; make_row below fills them. A new column is one
# entry here and one in make_row: the CSV header, the Parquet schema and the SQLite tables
# follow from this table.
COLUMNS: dict[str, str] = {
    "id": "integer",
    "datetime": "local_time",
    "local_date": "local_date",
    "name": "text",
    "summary": "text",
    "url": "text",
    "page_url": "text",
    "type": "text",
    "location_name": "text",
    "latitude": "real",
    "longitude": "real",
    "first_collected": "utc_time",
    "last_collected": "utc_time",
    "versions": "integer",
    # When polisen.se withdrew the event (archive/withdrawals.py); None while it is published.
    "withdrawn_at": "utc_time",
    # Its date in Sweden, the calendar of local_date (a facet by withdrawn_at's date counts UTC days).
    "withdrawn_local_date": "local_date",
    # From the event's archived page (pages/columns.py): the latest version, or with
    # all_versions the one fetched while that feed version was current.
    "page_title": "text",
    "page_preamble": "text",
    "page_body": "text",
    "page_author": "text",
    "page_published": "local_time",
    "page_fetched": "utc_time",
    # Where it happened, from SCB's municipalities and counties (geography.py).
    "location_level": "text",
    "municipality_code": "text",
    "municipality_name": "text",
    "county_code": "text",
    "county_name": "text",
}
# The history of withdrawals and republications: SQLite's table `withdrawals`, and with
# the event's identity before them, the rows of `--withdrawals` in the other formats.
WITHDRAWAL_COLUMNS: dict[str, str] = {
    "id": "integer",
    "status": "text",
    "confirmed_at": "utc_time",
    "suspected_at": "utc_time",
    "content_hash": "text",
}
HISTORY_COLUMNS: dict[str, str] = {
    **{name: COLUMNS[name] for name in ("id", "datetime", "local_date", "name", "type", "location_name", "page_url")},
    **WITHDRAWAL_COLUMNS,
}
TEXT_COLUMNS = [name for name, kind in COLUMNS.items() if kind == "text"]
FTS_COLUMNS = ("name", "summary", "page_preamble", "page_body")
"""The columns SQLite's full-text index `events_fts` covers."""

# A text cell starting with one of these is a formula to a spreadsheet (OWASP's list).
FORMULA_STARTS = frozenset("=+-@\t\r")


class ExportError(Exception):
    """The export cannot be done as asked; the message says why."""


@dataclass
class ExportOptions:
    all_versions: bool = False
    withdrawals: bool = False
    """Rows of the withdrawal history (HISTORY_COLUMNS) instead of events."""
    date_from: date | None = None
    date_to: date | None = None
    types: frozenset[str] = frozenset()
    locations: frozenset[str] = frozenset()
    page_origin: str = DEFAULT_PAGE_ORIGIN
    store_parses: bool = False


@dataclass
class ExportSummary:
    rows: int = 0
    version_rows: int = 0
    days: int = 0
    versions_dropped: int = 0
    copies_dropped: int = 0
    filtered_out: int = 0
    bad_lines: int = 0
    unplaced: int = 0
    pages_parsed: int = 0
    parses_stored: int = 0
    withdrawn: int = 0
    history_rows: int = 0
    split_ids: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        if self.version_rows:
            text = f"{self.rows} events and {self.version_rows} versions from {self.days} days; "
        elif self.history_rows:
            text = f"{self.history_rows} withdrawals and republications of {self.rows} events from {self.days} days; "
        else:
            text = (f"{self.rows} rows from {self.days} days; "
                    f"{self.versions_dropped} older versions dropped, ")
        text += (f"{self.copies_dropped} identical copies dropped, {self.filtered_out} rows filtered out, "
                 f"{self.bad_lines} bad lines skipped")
        return text + self.notes()

    def notes(self) -> str:
        """What else an export should tell, as `; ...` parts (empty when nothing)."""
        text = ""
        if self.unplaced:
            text += f"; {self.unplaced} rows placed in no municipality or county (location_level unknown)"
        if self.withdrawn:
            text += f"; {self.withdrawn} events withdrawn"
        if self.pages_parsed:
            text += (f"; {self.pages_parsed} page versions had no stored parse and were parsed"
                     + (f", {self.parses_stored} parses stored" if self.parses_stored else " (--store-parses stores them)"))
        if self.split_ids:
            text += f"; {len(self.split_ids)} ids dated on days too far apart to merge"
        return text

    def count_pages(self, pages: PageColumns) -> None:
        self.pages_parsed, self.parses_stored = pages.parsed, pages.stored

    def add(self, other: ExportSummary) -> None:
        """Count what `other` counted too (an export read in parts)."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def counting(self, on_bad: Callable[[BadLine], None]) -> Callable[[BadLine], None]:
        """`on_bad` that also counts the line in bad_lines."""
        def report(line: BadLine) -> None:
            self.bad_lines += 1
            on_bad(line)

        return report


def parse_gps(gps: Any) -> tuple[float | None, float | None]:
    """`"55.990257,13.595769"` -> (55.990257, 13.595769); (None, None) when unusable."""
    try:
        latitude, longitude = (float(part) for part in str(gps).split(","))
    except ValueError:
        return None, None
    return latitude, longitude


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def make_row(version: Version, first_run: str, last_run: str, versions: int, origin: str, *,
             withdrawn: datetime | None = None) -> dict[str, Any]:
    """The one place a row is built: one value for each of COLUMNS."""
    raw = version.event.raw
    location = raw.get("location")
    if not isinstance(location, dict):
        location = {}
    latitude, longitude = parse_gps(location.get("gps"))
    url = _text(raw.get("url"))
    return {
        "id": version.event.id,
        "datetime": version.event.when,
        "local_date": version.event.when.date(),  # the offset is Swedish time: the event's date in Sweden
        "name": _text(raw.get("name")),
        "summary": _text(raw.get("summary")),
        "url": url,
        "page_url": site_url(origin, url),
        "type": _text(raw.get("type")),
        "location_name": _text(location.get("name")),
        "latitude": latitude,
        "longitude": longitude,
        "first_collected": collection_time(first_run),
        "last_collected": collection_time(last_run),
        "versions": versions,
        "withdrawn_at": withdrawn,
        "withdrawn_local_date": swedish_date(withdrawn) if withdrawn else None,
    }


def _latest(versions: list[Version]) -> Version:
    return max(versions, key=lambda v: v.last_run)


def _first_run(versions: list[Version]) -> str:
    return min((v.first_run for v in versions if v.first_run), default="")


def _by_first_run(versions: list[Version]) -> list[Version]:
    return sorted(versions, key=lambda v: v.first_run)


def latest_row(versions: list[Version], origin: str, withdrawn: datetime | None = None) -> dict[str, Any]:
    """The version stored last, with the first collection of any version."""
    latest = _latest(versions)
    return make_row(latest, _first_run(versions), latest.last_run, len(versions), origin, withdrawn=withdrawn)


def version_rows(versions: list[Version], origin: str,
                 withdrawn: datetime | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(content hash, row) of every version, in order of first collection, each with its own times."""
    return [(v.event.hash, make_row(v, v.first_run, v.last_run, len(versions), origin, withdrawn=withdrawn))
            for v in _by_first_run(versions)]


def latest_of_version_rows(versions: list[Version], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """latest_row from the rows of version_rows (completed alike), not made a second time: the latest
    version's row with the first collection of any version."""
    row = rows[_by_first_run(versions).index(_latest(versions))]
    return {**row, "first_collected": collection_time(_first_run(versions))}


def history_row(record: Record) -> dict[str, Any]:
    """A change of an event's status as a row of SQLite's `withdrawals` (WITHDRAWAL_COLUMNS)."""
    return {"id": record.id, "status": record.status, "confirmed_at": record.confirmed_at, "suspected_at": record.suspected_at,
            "content_hash": record.content_hash}


class Changes:
    """The events' withdrawals and republications, gathered from the record objects of each day read
    (an event's records lie in the folder of its date, as its versions do, so they are in by the time
    its rows are made)."""

    def __init__(self) -> None:
        self.records: dict[int, list[tuple[str, Record]]] = {}

    def add(self, day: str, records: Iterable[Record]) -> None:
        """The records of the day's folder (`YYYY-MM-DD`)."""
        for record in records:
            self.records.setdefault(record.id, []).append((day, record))

    def of(self, versions: list[Version]) -> list[Record]:
        """The changes of status of the event of these versions, in time order (histories drops a record that
        changes nothing): those in the folders of the versions' days, so that an id exported as two rows,
        dated too far apart to merge, has each row's own, whichever was read first."""
        event_id, days = versions[0].event.id, {version.event.day for version in versions}
        records = sorted((record for day, record in self.records.get(event_id, ()) if day in days),
                         key=lambda record: record.confirmed_at)
        return histories(records).get(event_id, []) if records else []


def _matches(row: dict[str, Any], options: ExportOptions) -> bool:
    if options.types and (row["type"] or "").casefold() not in options.types:
        return False
    return not options.locations or (row["location_name"] or "").casefold() in options.locations


class IdBitmap:
    """A set of positive ints as bits in pages of PAGE_IDS: the API's ids are dense, so years fit in KB."""

    PAGE_IDS = 4096

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def add(self, number: int) -> bool:
        """Add `number`; True when it was there already."""
        page, offset = divmod(number, self.PAGE_IDS)
        bits = self.pages.get(page)
        if bits is None:
            bits = self.pages[page] = bytearray(self.PAGE_IDS // 8)
        byte, mask = offset >> 3, 1 << (offset & 7)
        present = bool(bits[byte] & mask)
        bits[byte] |= mask
        return present


def iter_days(
    storage: Storage, options: ExportOptions, on_bad: Callable[[BadLine], None],
) -> Iterator[tuple[date, list[str]]]:
    """(day, its event objects in collection order) in date order, streamed from the listing.

    Names sort by date only in the canonical folders (`events/2026/05/20/`); an object
    elsewhere that looks like a day (`events/2026/5/20/`) is reported and skipped before the
    dates are looked at, so that its place in the listing cannot end the export early.
    """

    def reported(name: str) -> bool:
        if in_its_folder(name):
            return True
        if (day := day_of_object(name)) is not None:
            on_bad(BadLine(name, 0, f"not in the folder of its day {partition_prefix(day.isoformat())}: skipped"))
        return False

    names = (name for name in storage.list(EVENTS_PREFIX) if reported(name))
    yield from _in_range(((day, sorted(group, key=collection_order_key)) for day, group in group_by_day(names)),
                         options)


def _in_range(days: Iterable[tuple[date, list[str]]], options: ExportOptions) -> Iterator[tuple[date, list[str]]]:
    """The days between --from and --to of a listing in date order; stops listing after --to."""
    for day, names in days:
        if options.date_to is not None and day > options.date_to:
            return
        if options.date_from is None or day >= options.date_from:
            yield day, names


@dataclass(frozen=True)
class DayObjects:
    """The objects of one day of the archive, as one listing saw them: what the day's rows are read from."""

    day: date
    events: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    withdrawals: tuple[str, ...] = ()

    def signature(self) -> str:
        """A digest of the day's object names. Objects are written once and never changed (compaction,
        a late version, a page or its parse, a withdrawal record add or remove objects), so the same
        names read the same rows."""
        names = (*self.events, *sorted(self.pages), *sorted(self.withdrawals))
        return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:32]

    def __bool__(self) -> bool:
        return bool(self.events or self.pages or self.withdrawals)


def list_days(storage: Storage, options: ExportOptions, on_bad: Callable[[BadLine], None]) -> Iterator[DayObjects]:
    """Every day with objects, in date order: the listings of events/, pages/ and withdrawals/ streamed side by side."""
    records = ((day, list(names)) for day, names in groupby(list_record_objects(storage), key=day_of_record_object)
               if day is not None)
    merged = heapq.merge(((day, 0, names) for day, names in iter_days(storage, options, on_bad)),
                         ((day, 1, names) for day, names in _in_range(iter_day_names(storage), options)),
                         ((day, 2, names) for day, names in _in_range(records, options)))
    for day, group in groupby(merged, key=lambda item: item[0]):
        found: tuple[list[str], list[str], list[str]] = ([], [], [])
        for _, kind, names in group:
            found[kind].extend(names)
        yield DayObjects(day, *(tuple(names) for names in found))


def list_day(storage: Storage, day: date) -> DayObjects:
    """One day's objects, listed again (a day read again, or read without the whole listing)."""
    events = list_event_objects(storage, partition_prefix(day.isoformat()))
    pages = [name for name in storage.list(day_prefix(day.isoformat())) if day_of_page_object(name) == day]
    records = list_record_objects(storage, record_folder(day.isoformat()))
    return DayObjects(day, tuple(events), tuple(pages), tuple(records))


def iter_versions(
    storage: Storage,
    days: Iterable[DayObjects],
    summary: ExportSummary,
    on_bad: Callable[[BadLine], None],
    progress: Callable[[int, date], None] | None = None,
) -> Iterator[list[Version]]:
    """The versions of each id, day by day, ids ascending within a day: an id's versions dated at most
    MERGE_WINDOW_DAYS apart (in a chain) are one list, however many days lie between them."""
    window: OrderedDict[date, dict[int, list[Version]]] = OrderedDict()
    exported = IdBitmap()

    def flush(groups: dict[int, list[Version]]) -> Iterator[list[Version]]:
        for event_id in sorted(groups):
            if exported.add(event_id):
                summary.split_ids.append(event_id)
            yield groups[event_id]

    report = summary.counting(on_bad)
    for index, objects in enumerate(days, start=1):
        day = objects.day
        if progress:
            progress(index, day)
        found = read_day(storage, day.isoformat(), objects.events)  # listed again if a compaction changed it
        for line in found.bad:
            report(line)
        summary.copies_dropped += found.copies
        summary.days += 1
        # Days too far back are done before this day merges: whether two versions merge then depends on their
        # own days alone, not on which days lie between them in the listing (an update reads only some).
        while window and (day - next(iter(window))).days > MERGE_WINDOW_DAYS:  # no date arithmetic that overflows
            yield from flush(window.popitem(last=False)[1])
        groups: dict[int, list[Version]] = {}
        for version in found.versions:
            groups.setdefault(version.event.id, []).append(version)
        for event_id, versions in groups.items():
            for earlier in window.values():
                versions.extend(earlier.pop(event_id, []))
        window[day] = groups
    while window:
        yield from flush(window.popitem(last=False)[1])


def _days_for(storage: Storage, options: ExportOptions, summary: ExportSummary, on_bad: Callable[[BadLine], None], *,
              days: Iterable[DayObjects] | None, pages: PageColumns, changes: Changes) -> Iterator[DayObjects]:
    """The days to read (by default every day of the listing), each day's page listing handed to `pages`
    and its withdrawal records to `changes`."""
    report = summary.counting(on_bad)
    for objects in list_days(storage, options, report) if days is None else days:
        pages.know(objects.day.isoformat(), objects.pages)
        changes.add(objects.day.isoformat(), read_records(storage, objects.withdrawals, report))
        yield objects


def iter_rows(
    storage: Storage,
    options: ExportOptions,
    summary: ExportSummary,
    on_bad: Callable[[BadLine], None],
    progress: Callable[[int, date], None] | None = None,
    *,
    days: Iterable[DayObjects] | None = None,
    keep: Callable[[list[Version]], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of the export: each id's latest version, or with all_versions every version, or with
    withdrawals each change of its status (HISTORY_COLUMNS); of every day of the archive, or of
    `days` only; of the events whose versions `keep` accepts only, when given (an update making the
    rows of a few events, not of every event on the days it reads)."""
    pages, changes = PageColumns(storage, options.store_parses), Changes()
    listed = _days_for(storage, options, summary, on_bad, days=days, pages=pages, changes=changes)
    for versions in iter_versions(storage, listed, summary, on_bad, progress):
        if keep is not None and not keep(versions):
            continue
        history = changes.of(versions)
        if options.withdrawals:
            yield from _history_rows(versions, history, options, summary)
            continue
        if options.all_versions:
            rows = [row for _, row in version_rows(versions, options.page_origin, withdrawn_at(history))]
        else:
            rows = [latest_row(versions, options.page_origin, withdrawn_at(history))]
        summary.versions_dropped += len(versions) - len(rows)
        rows = pages.add(rows, options.all_versions, {version.event.day for version in versions})
        summary.count_pages(pages)
        for row in rows:
            if _matches(row, options):
                summary.rows += 1
                summary.unplaced += row["location_level"] == "unknown"
                summary.withdrawn += row["withdrawn_at"] is not None
                yield row
            else:
                summary.filtered_out += 1


def _history_rows(versions: list[Version], history: list[Record], options: ExportOptions,
                  summary: ExportSummary) -> Iterator[dict[str, Any]]:
    """The event's changes of status, each with its identity (its latest version), when it passes the filters."""
    if not history:
        return
    latest = latest_row(versions, options.page_origin)
    if not _matches(latest, options):
        summary.filtered_out += 1
        return
    summary.rows += 1
    summary.history_rows += len(history)
    for record in history:
        yield {**{name: latest[name] for name in HISTORY_COLUMNS if name in latest}, **history_row(record)}


EventRecord = tuple[dict[str, Any], list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]
"""What the SQLite export stores of an event: its row, (content hash, row) of each version, and its
changes of status as rows of WITHDRAWAL_COLUMNS."""


def iter_events_with_versions(
    storage: Storage,
    options: ExportOptions,
    summary: ExportSummary,
    on_bad: Callable[[BadLine], None],
    progress: Callable[[int, date], None] | None = None,
    *,
    days: Iterable[DayObjects] | None = None,
    left_out: Callable[[int, set[str]], None] | None = None,
) -> Iterator[EventRecord]:
    """(latest row, (content hash, row) of every version, withdrawal history) of each id whose latest
    version passes the filters, of every day of the archive, or of `days` only; `left_out` is told the id
    and the days of each event the filters leave out.

    Every row carries the event's latest page and its place; the page versions themselves
    are in the other formats' `--all-versions`.
    """
    pages = PageColumns(storage, options.store_parses)
    changes = Changes()
    listed = _days_for(storage, options, summary, on_bad, days=days, pages=pages, changes=changes)
    for versions in iter_versions(storage, listed, summary, on_bad, progress):
        history = changes.of(versions)
        withdrawn = withdrawn_at(history)
        dated = {version.event.day for version in versions}
        hashes, rows = zip(*version_rows(versions, options.page_origin, withdrawn), strict=True)
        completed = pages.add(list(rows), all_versions=False, days=dated)
        summary.count_pages(pages)
        latest = latest_of_version_rows(versions, completed)
        if not _matches(latest, options):
            summary.filtered_out += 1
            if left_out is not None:
                left_out(versions[0].event.id, dated)
            continue
        every = list(zip(hashes, completed, strict=True))
        summary.rows += 1
        summary.unplaced += latest["location_level"] == "unknown"
        summary.withdrawn += withdrawn is not None
        summary.version_rows += len(every)
        yield latest, every, [history_row(record) for record in history]


# One format per column, so that a reader infers one type for it: pandas' read_csv(parse_dates=)
# leaves a column of mixed `...:49+00:00` and `...:49.106+00:00` as text. The collection times
# have milliseconds (the run ids'); the event's and the page's own times are whole seconds.
TIMESPEC = {"utc_time": "milliseconds", "local_time": "seconds"}


DATED_COLUMNS = {name: TIMESPEC.get(kind, "") for name, kind in {**COLUMNS, **HISTORY_COLUMNS}.items()
                 if kind in TIMESPEC or kind == "local_date"}
"""The columns of times and dates, each with its one format (a date's is empty): the only cells made text."""


def _text_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with each datetime as ISO 8601 text in its column's one format, a date as YYYY-MM-DD."""
    cells = dict(row)
    for name, timespec in DATED_COLUMNS.items():
        value = cells.get(name)
        if isinstance(value, datetime):
            cells[name] = value.isoformat(timespec=timespec or "milliseconds")
        elif isinstance(value, date):
            cells[name] = value.isoformat()
    return cells


def neutralise(cells: dict[str, Any]) -> None:
    """Text cells a spreadsheet would run as a formula get a leading `'`, so they show as the text they are."""
    for name in TEXT_COLUMNS:
        value = cells.get(name)
        if value and value[0] in FORMULA_STARTS:
            cells[name] = "'" + value


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    out.writelines(json.dumps(_text_row(row), ensure_ascii=False) + "\n" for row in rows)


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO, raw: bool = False,
              columns: dict[str, str] = COLUMNS) -> None:
    """RFC 4180 CSV with a header (CRLF line ends, so a lone CR in a text is quoted too); cells that
    start like a formula are neutralised unless `raw`."""
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        cells = _text_row(row)
        if not raw:
            neutralise(cells)
        writer.writerow(cells)


PARQUET_TYPES = {"integer": "int64", "text": "string", "real": "float64"}


def parquet_schema(columns: dict[str, str] = COLUMNS) -> pa.Schema:
    import pyarrow as pa

    def arrow_type(kind: str) -> pa.DataType:
        if kind == "local_time":
            return pa.timestamp("ms", tz=PARQUET_EVENT_TZ)
        if kind == "utc_time":
            return pa.timestamp("ms", tz="UTC")
        if kind == "local_date":
            return pa.date32()
        return pa.type_for_alias(PARQUET_TYPES[kind])

    return pa.schema([(name, arrow_type(kind)) for name, kind in columns.items()])


def import_pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet); ExportError saying how to install the extra when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from polisen_collector.installation import extra_hint

        raise ExportError(f"Parquet output needs pyarrow, the optional extra 'parquet': {extra_hint('parquet')}") from None
    return pa, pq


def write_parquet(rows: Iterable[dict[str, Any]], out: str, columns: dict[str, str] = COLUMNS) -> None:
    """Row groups of PARQUET_ROW_GROUP rows, gathered as columns: memory holds one group at a time."""
    pa, pq = import_pyarrow()
    schema = parquet_schema(columns)

    def empty_group() -> dict[str, list[Any]]:
        return {name: [] for name in columns}

    with pq.ParquetWriter(out, schema) as writer:
        group, count = empty_group(), 0
        for row in rows:
            for name, values in group.items():
                values.append(row[name])
            count += 1
            if count == PARQUET_ROW_GROUP:
                writer.write_table(pa.Table.from_pydict(group, schema=schema))
                group, count = empty_group(), 0
        writer.write_table(pa.Table.from_pydict(group, schema=schema))


SQLITE_TYPES = {"integer": "INTEGER", "text": "TEXT", "real": "REAL", "local_time": "TEXT", "utc_time": "TEXT",
                "local_date": "TEXT"}
VERSION_KEY = "content_hash"


def _q(name: str) -> str:
    """An SQL identifier, quoted as sqlite-utils quotes them."""
    return f'"{name}"'


def _column_list(names: Iterable[str], prefix: str = "") -> str:
    return ", ".join(prefix + _q(name) for name in names)


# For a Datasette site over the database: its list of events sorts by datetime and facets by type,
# county, municipality, local date and the Swedish date of a withdrawal; the latest edits start from
# versions > 1, the withdrawn events from withdrawn_at. One index each, so that a facet counts from its
# index instead of reading every row with its page text.
SQLITE_INDEXES = ("datetime", "local_date", "type", "county_name", "municipality_name", "versions", "withdrawn_at",
                  "withdrawn_local_date")
LIST_VIEW = "event_list"
LIST_COLUMNS = ("id", "datetime", "local_date", "type", "name", "summary", "location_name", "municipality_name",
                "county_name", "latitude", "longitude", "versions", "withdrawn_at", "withdrawn_local_date",
                "page_url")
"""The view `event_list`: the events without the long page text, one short line each in a list."""


WITHDRAWALS_KEY = ("id", "confirmed_at", "status")


def sqlite_schema() -> tuple[list[str], list[str], list[str]]:
    """(tables and the list view, indexes, full-text index triggers): `events` keyed by id, `versions`,
    `withdrawals` (each change of an event's status), `events_fts` in the shape sqlite-utils'
    enable_fts(..., create_triggers=True) gives, which Datasette detects, and `event_list`. The indexes
    are best built once the rows are in, the triggers last."""
    events = ",\n".join(
        f"   {_q(name)} {SQLITE_TYPES[kind]}" + (" PRIMARY KEY" if name == "id" else "")
        for name, kind in COLUMNS.items()
    )
    versions = ",\n".join(
        f"   {_q(name)} {SQLITE_TYPES[kind]}" + (' REFERENCES "events"("id")' if name == "id" else "")
        for name, kind in COLUMNS.items()
    )
    withdrawals = ",\n".join(
        f"   {_q(name)} {SQLITE_TYPES[kind]}" + (' REFERENCES "events"("id")' if name == "id" else "")
        for name, kind in WITHDRAWAL_COLUMNS.items()
    )
    fts, new, old = _column_list(FTS_COLUMNS), _column_list(FTS_COLUMNS, "new."), _column_list(FTS_COLUMNS, "old.")
    add = f'INSERT INTO "events_fts" (rowid, {fts}) VALUES (new.rowid, {new});'
    remove = f'INSERT INTO "events_fts" ("events_fts", rowid, {fts}) VALUES(\'delete\', old.rowid, {old});'
    tables = [
        f'CREATE TABLE "events" (\n{events}\n)',
        f'CREATE TABLE "versions" (\n{versions},\n   {_q(VERSION_KEY)} TEXT,\n   PRIMARY KEY ("id", {_q(VERSION_KEY)})\n)',
        f'CREATE TABLE "withdrawals" (\n{withdrawals},\n   PRIMARY KEY ({_column_list(WITHDRAWALS_KEY)})\n)',
        f'CREATE VIRTUAL TABLE "events_fts" USING FTS5 (\n    {fts},\n    content="events"\n)',
        f'CREATE VIEW {_q(LIST_VIEW)} AS SELECT {_column_list(LIST_COLUMNS)} FROM "events"',
    ]
    indexes = [f'CREATE INDEX {_q("idx_events_" + name)} ON "events" ({_q(name)})' for name in SQLITE_INDEXES]
    indexes.append('CREATE INDEX "idx_versions_local_date" ON "versions" ("local_date")')  # --update finds a day's events
    triggers = [
        f'CREATE TRIGGER "events_ai" AFTER INSERT ON "events" BEGIN\n  {add}\nEND',
        f'CREATE TRIGGER "events_ad" AFTER DELETE ON "events" BEGIN\n  {remove}\nEND',
        f'CREATE TRIGGER "events_au" AFTER UPDATE ON "events" BEGIN\n  {remove}\n  {add}\nEND',
    ]
    return tables, indexes, triggers


def _upsert_event_sql() -> str:
    """Insert a row into events; should the id be there already (versions dated too far apart to
    merge in the stream) keep the later-collected content, the earliest collection, all versions."""
    later = 'excluded."last_collected" > "events"."last_collected"'
    updates = [f"{_q(name)} = CASE WHEN {later} THEN excluded.{_q(name)} ELSE \"events\".{_q(name)} END"
               for name in COLUMNS if name not in ("id", "first_collected", "versions")]
    updates += [
        '"first_collected" = coalesce(min("events"."first_collected", excluded."first_collected"), '
        '"events"."first_collected", excluded."first_collected")',
        '"versions" = "events"."versions" + excluded."versions"',
    ]
    return (f'INSERT INTO "events" ({_column_list(COLUMNS)}) VALUES ({", ".join("?" * len(COLUMNS))})\n'
            f'ON CONFLICT("id") DO UPDATE SET {", ".join(updates)}')


def _insert_version_sql() -> str:
    names = [*COLUMNS, VERSION_KEY]
    return f'INSERT OR IGNORE INTO "versions" ({_column_list(names)}) VALUES ({", ".join("?" * len(names))})'


def _insert_withdrawal_sql() -> str:
    return (f'INSERT OR IGNORE INTO "withdrawals" ({_column_list(WITHDRAWAL_COLUMNS)}) '
            f'VALUES ({", ".join("?" * len(WITHDRAWAL_COLUMNS))})')


def create_sqlite_tables(connection: Any) -> None:
    """The tables and the list view, without indexes and triggers: rows go in faster before them."""
    for statement in sqlite_schema()[0]:
        connection.execute(statement)


def insert_sqlite_records(connection: Any, records: Iterable[EventRecord]) -> None:
    """iter_events_with_versions' records into `events`, `versions` and `withdrawals`."""
    upsert, insert_version, insert_withdrawal = _upsert_event_sql(), _insert_version_sql(), _insert_withdrawal_sql()
    for latest, every, history in records:
        cells = _text_row(latest)
        connection.execute(upsert, [cells[name] for name in COLUMNS])
        connection.executemany(insert_version, (
            [*(cells[name] for name in COLUMNS), content_hash]
            for content_hash, cells in ((content_hash, _text_row(row)) for content_hash, row in every)))
        connection.executemany(insert_withdrawal, (
            [cells[name] for name in WITHDRAWAL_COLUMNS] for cells in map(_text_row, history)))


def finish_sqlite_tables(connection: Any) -> None:
    """Once the rows are in: the full-text index built in one go, the indexes, then the triggers that
    keep the full-text index in step with later changes."""
    _, indexes, triggers = sqlite_schema()
    connection.execute('INSERT INTO "events_fts" ("events_fts") VALUES (\'rebuild\')')
    for statement in indexes + triggers:
        connection.execute(statement)
