"""Parquet as a folder of monthly files, kept up to date by rewriting only the months that changed.

    DIR/events-2026-05.parquet     the rows of the events dated in May 2026 (Swedish dates), by local_date and id
    DIR/_export_state.json         what the files were made from: per day, the digest of its objects' names;
                                   per month, how many rows its file holds; the days of each event
                                   whose versions are dated on several (a few: edits of an event's time)

`read_parquet('DIR/*.parquet')` in DuckDB (or pandas, Spark, Polars) reads them as one table;
`_export_state.json` matches no `*.parquet` glob and starts with `_`, which Spark and Hive skip.

A new folder (or one made otherwise, rebuilt) is written in one pass over the archive, as a single
file would be: each row goes to the month of its local_date, and a month's file is written once
the pass is MERGE_WINDOW_DAYS past the month's end, when no more of its events can come; a row
that still comes later (an event whose versions are dated further apart) has its month's file
read back and written again with it.

What changed is told by the names of the archive's objects, as for SQLite (export_update.py).
An update reads the days that changed, makes the rows of the events with a version on one (or a
row dated on one before) and replaces those events' rows in the files of their months. An event
whose versions are dated on several days within MERGE_WINDOW_DAYS is one row, in the month of its
latest version: its other days are read too, found in the state (the days of the events dated on
several) and in the files (a row of the event dated within MERGE_WINDOW_DAYS of a version: an
event that a new version dates elsewhere). With --type or --location, an event left out has no
row to be found by: then the MERGE_WINDOW_DAYS around each day are read instead. A file is
written only when its rows differ from those it holds (a compaction, or a page that changes no
column, writes nothing); an event whose row moves to another month (a new version dated there)
leaves the month it was in. Each file is written beside its place and renamed over it, so a
reader never sees half a file. Before the first file, the state is written without the days the
update read, and after the last, with them: a killed update has the next one read those days again
and make the same rows (a file already written then equals them and is left), even those of an
event taken out of one month's file and not yet put in the next. Two updates of one folder at once
take turns (a lock file in the folder).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from polisen_collector.archive.layout import BadLine, Version
from polisen_collector.export import (
    COLUMNS,
    MERGE_WINDOW_DAYS,
    PARQUET_ROW_GROUP,
    DayObjects,
    ExportError,
    ExportOptions,
    ExportSummary,
    import_pyarrow,
    iter_rows,
    list_day,
    list_days,
    parquet_schema,
)
from polisen_collector.export_update import Unreadable, changed_days, made_from, read_signatures, why_rebuild
from polisen_collector.files import NotRegularFile, atomic_write, open_regular, read_regular, replace_with
from polisen_collector.storage.base import Storage

STATE_FILE = "_export_state.json"
STATE_FORMAT = 3
"""1: per month the digest of its rows (files in the order rows were read); 2: per month its rows'
count, files sorted by ORDER; 3: and the days of the events dated on several. A folder of an older
format is rebuilt."""
STATE_MAX_BYTES = 16 << 20
"""The bookkeeping is read no further: about 40 bytes a day, a century of days is 1.5 MB."""
LOCK_FILE = ".export.lock"
ROW_OPTIONS = ("all_versions", "date_from", "date_to", "types", "locations", "page_origin")
ORDER = [("local_date", "ascending"), ("id", "ascending"), ("first_collected", "ascending"),
         ("last_collected", "ascending")]
"""The order of a file's rows, the same however they were made (in one pass or patched by updates)."""

Table = Any
"""A pyarrow.Table (pyarrow is an optional extra, without type information)."""


@dataclass
class MonthsReport:
    how: str
    reason: str = ""
    days: int = 0
    days_changed: int = 0
    months: int = 0
    months_read: int = 0
    months_written: int = 0
    rows_written: int = 0

    def __str__(self) -> str:
        text = f"{self.how}{f' ({self.reason})' if self.reason else ''}: "
        if self.how == "updated":
            text += (f"{self.days_changed} of {self.days} days changed, {self.months_read} "
                     f"month{'' if self.months_read == 1 else 's'} read; ")
        return text + f"{self.months_written} of {self.months} monthly files written ({self.rows_written} rows)"


MONTH_FILE = re.compile(r"events-\d{4}-\d{2}\.parquet")
"""The name of a monthly file: the only *.parquet the folder's update owns (an events-all.parquet put
there is the user's)."""


def _month_files(folder: Path) -> set[str]:
    """The names of the monthly files in the folder."""
    return {path.name for path in folder.glob("events-*.parquet") if MONTH_FILE.fullmatch(path.name)}


def month_file(month: str) -> str:
    return f"events-{month}.parquet"


def month_of(day: date) -> str:
    return f"{day:%Y-%m}"


def update_months(storage: Storage, options: ExportOptions, folder: Path, summary: ExportSummary,
                  on_bad: Callable[[BadLine], None]) -> MonthsReport:
    """Bring the folder of monthly files up to date (made, or made again, when it holds no state of the same kind)."""
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file: a Parquet --update writes a folder of monthly files")
    Path(os.path.realpath(folder)).mkdir(exist_ok=True)  # through a link to a folder not made yet, that folder
    strangers = sorted(p.name for p in folder.iterdir() if not _ours(p.name))
    with _locked(folder):
        state = _read_state(folder)
        if strangers:  # `*.parquet` would read an events-all.parquet put there too; pyarrow fails on a notes.txt
            raise ExportError(f"{folder} holds files of its own ({strangers[0]}): " + (
                "export to a new or empty folder" if state is None else "move them out: the folder is the export's"))
        expected = made_from(storage, options, list(COLUMNS.items()), ROW_OPTIONS)
        reason = _why_rebuild(folder, state, expected)
        save = partial(_write_state, folder, expected)
        if state and not reason:
            report, days, months, spread = _update(storage, options, folder, summary, on_bad, known=state["days"],
                                                   rows=state["months"], spread=_spread_of(state), save=save)
        else:
            report, days, months, spread = _build(storage, options, folder, summary, on_bad)
            report.how, report.reason = ("created", "") if state is None else ("rebuilt", reason)
        save(days, months, spread)
    return report


def _write_state(folder: Path, made_from: str, days: dict[str, str], months: dict[str, int], spread: Spread) -> None:
    document = {"format": STATE_FORMAT, "made_from": made_from, "days": dict(sorted(days.items())),
                "months": dict(sorted(months.items())),
                "spread": {str(event_id): sorted(day.isoformat() for day in spread[event_id])
                           for event_id in sorted(spread)}}
    atomic_write(folder / STATE_FILE, json.dumps(document, indent=0).encode("utf-8"))


def _why_rebuild(folder: Path, state: dict[str, Any] | None, expected: str) -> str:
    """Why the folder is made again rather than updated; empty when it can be updated."""
    if not state:
        return "" if state is None else "its bookkeeping is unreadable"
    if state.get("made_from") != expected:
        return why_rebuild(state.get("made_from"), expected, "the folder")
    if state.get("format") != STATE_FORMAT:
        return "its bookkeeping is of an older version"
    listed = {month_file(month) for month in state["months"]}  # a killed update's, of 0 rows, too
    if unlisted := sorted(_month_files(folder) - listed):  # a copy put there: `*.parquet` would read its rows twice
        return f"{unlisted[0]} is not one of its files"
    for month, count in state["months"].items():
        if count and not (folder / month_file(month)).exists():
            return f"{month_file(month)} is missing"  # a file removed by hand
        if count and not _looks_like_parquet(folder / month_file(month)):
            return f"{month_file(month)} is not a Parquet file"  # overwritten by hand: the folder's own name
    return ""


def _looks_like_parquet(path: Path) -> bool:
    """A Parquet file begins and ends with its magic `PAR1` (two small reads, not its footer)."""
    try:
        fd = open_regular(path)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        return size >= 8 and os.pread(fd, 4, 0) == os.pread(fd, 4, size - 4) == b"PAR1"
    finally:
        os.close(fd)


def _build(storage: Storage, options: ExportOptions, folder: Path, summary: ExportSummary,
           on_bad: Callable[[BadLine], None]) -> tuple[MonthsReport, dict[str, str], dict[str, int], Spread]:
    """Every monthly file from one pass over the archive (see the module's docstring)."""
    signatures: dict[str, str] = {}
    spread: Spread = {}
    pending: dict[str, list[dict[str, Any]]] = {}  # month -> its rows not written yet
    read_back: dict[str, Table] = {}  # month -> the rows of its file, written already, that a late row joins
    written: dict[str, int] = {}  # month -> the rows of its file

    def write_done(last_read: date | None) -> None:
        """Write the months that no event read from now on can be in (all of them when `last_read` is None)."""
        for month in sorted(pending):
            if last_read is None or (last_read - _last_day(month)).days > MERGE_WINDOW_DAYS:
                table = _table(pending.pop(month), read_back.pop(month, None))
                _write_month(folder / month_file(month), table)
                written[month] = table.num_rows

    def read(days: Iterable[DayObjects]) -> Iterator[DayObjects]:
        last: date | None = None
        for objects in days:
            signatures[objects.day.isoformat()] = objects.signature()
            if last is not None:  # the rows of the days before `last` less the window are all out by now
                write_done(last)
            last = objects.day
            yield objects

    def noted(versions: list[Version]) -> bool:
        if len(dated := _days_of(versions)) > 1:
            spread.setdefault(versions[0].event.id, set()).update(dated)
        return True

    listed = read(list_days(storage, options, summary.counting(on_bad)))
    for row in iter_rows(storage, options, summary, on_bad, days=listed, keep=noted):
        month = month_of(row["local_date"])
        if month in written and month not in pending:  # a late row of a month written already
            read_back[month] = _read_month(folder / month_file(month))
        pending.setdefault(month, []).append(row)
    write_done(None)
    for name in _month_files(folder) - {month_file(month) for month in written}:
        (folder / name).unlink()  # a month a rebuilt folder no longer has
    report = MonthsReport("created", days=len(signatures), days_changed=len(signatures), months=len(written),
                          months_written=len(written), rows_written=sum(written.values()))
    return report, signatures, dict(written), spread


def _update(storage: Storage, options: ExportOptions, folder: Path, summary: ExportSummary,
            on_bad: Callable[[BadLine], None], *, known: dict[str, str], rows: dict[str, int], spread: Spread,
            save: Callable[[dict[str, str], dict[str, int], Spread], None]
            ) -> tuple[MonthsReport, dict[str, str], dict[str, int], Spread]:
    """The rows of the events of the days that changed replaced in the files of their months (see the module's
    docstring). Before the first file is written, the state forgets the days read (`save`): a kill between two
    files (an event leaving May written, June not yet) then has the next update read all of them again."""
    listed, changed, gone = changed_days(storage, options, summary, on_bad, known)
    days = {day: signature for day, signature in known.items() if date.fromisoformat(day) not in gone}
    days |= {day.isoformat(): objects.signature() for day, objects in changed.items()}
    report = MonthsReport("updated", days=len(listed), days_changed=len(changed) + len(gone))
    months = dict(rows)
    if changed or gone:
        before = {event_id: set(event_days) for event_id, event_days in spread.items()}
        tables, made, stale, read = _changed_rows(storage, options, folder, summary, on_bad, listed=listed,
                                                  changed=changed, gone=gone, spread=spread)
        report.months_read = len(tables)
        writes: dict[str, Table] = {}
        for month, old in sorted(tables.items()):
            table = _replaced(old, made.get(month, []), stale)
            if old is not None or table.num_rows:  # else no file, and none needed
                months[month] = table.num_rows
                if old is None or not table.equals(old):
                    writes[month] = table
        if writes:
            save({day: signature for day, signature in known.items() if date.fromisoformat(day) not in read},
                 {**rows, **dict.fromkeys(writes, 0)}, before)  # 0: may be missing, or new, when killed
        for month, table in writes.items():
            _write_month(folder / month_file(month), table)
            report.months_written += 1
            report.rows_written += table.num_rows
    months = {month: count for month, count in months.items() if count}
    report.months = len(months)
    return report, days, months, spread


Spread = dict[int, set[date]]
"""The days of each event whose versions are dated on more than one (the state's `spread`)."""
Stale = Callable[[int, date], bool]
"""Whether a file's row of this id and local_date is one an update made again (or found gone)."""


def _changed_rows(storage: Storage, options: ExportOptions, folder: Path, summary: ExportSummary,
                  on_bad: Callable[[BadLine], None], *, listed: set[date], changed: dict[date, DayObjects],
                  gone: set[date], spread: Spread
                  ) -> tuple[dict[str, Table | None], dict[str, list[dict[str, Any]]], Stale, set[date]]:
    """(the files of the months read, each as it is (None: there is none); the rows, by month, of the events
    with a version on a changed day or a row dated on one; which rows of the files they replace; the days
    read). The other days of those events are read too, so that each is made of the versions a whole export
    merges into it; `spread` (the days of the events dated on several) is brought up to date."""
    touched = set(changed) | gone
    filtered = bool(options.types or options.locations)  # an event left out has no row that tells its days
    objects: dict[date, DayObjects] = dict(changed)
    tables: dict[str, Table | None] = {}
    wanted = _around(touched, listed) if filtered else set()
    while True:
        objects |= {day: list_day(storage, day) for day in wanted - objects.keys()}  # listed again
        for month in _months_around(objects.keys() | touched) - tables.keys():
            tables[month] = _read_month(folder / month_file(month))
        dated: dict[int, set[date]] = {}  # the days of each event's rows in the files read
        for table in tables.values():
            for event_id, day in _ids_and_dates(table):
                dated.setdefault(event_id, set()).add(day)
        before = {event_id for event_id, days in dated.items() if days & touched}
        attempt = ExportSummary()
        made, days_of, grouped = _rows_of(storage, options, attempt, on_bad, days=objects, touched=touched,
                                          before=before)
        more = set().union(*(spread.get(event_id, ()) for event_id in days_of.keys() | before))
        more |= {day for event_id, versions in days_of.items() for day in dated.get(event_id, ())
                 if any(abs((day - version).days) <= MERGE_WINDOW_DAYS for version in versions)}
        if filtered:
            more |= _around(set().union(*days_of.values()), listed)
        if not (more := (more & listed) - objects.keys()):
            summary.add(attempt)
            for event_id in days_of.keys() | before:
                spread.pop(event_id, None)
            for event_id, days in grouped.items():  # a row not made again keeps its days too
                spread.setdefault(event_id, set()).update(days)
            return tables, made, partial(_stale, touched, days_of), set(objects)
        wanted |= more


def _rows_of(storage: Storage, options: ExportOptions, summary: ExportSummary, on_bad: Callable[[BadLine], None], *,
             days: dict[date, DayObjects], touched: set[date], before: set[int]
             ) -> tuple[dict[str, list[dict[str, Any]]], dict[int, set[date]], Spread]:
    """(the rows by month, the days of each event's versions) of the events read from `days` that have a
    version on a day `touched` or are `before` (had a row dated on one); and the days of every row read
    dated on several, made again or not (the state's `spread`)."""
    days_of: dict[int, set[date]] = {}
    grouped: Spread = {}

    def keep(versions: list[Version]) -> bool:
        event_id, dated = versions[0].event.id, _days_of(versions)
        if len(dated) > 1:
            grouped.setdefault(event_id, set()).update(dated)
        if dated & touched or event_id in before:
            days_of.setdefault(event_id, set()).update(dated)
            return True
        return False

    made: dict[str, list[dict[str, Any]]] = {}
    for row in iter_rows(storage, options, summary, on_bad, keep=keep,
                         days=[found for _, found in sorted(days.items()) if found]):
        made.setdefault(month_of(row["local_date"]), []).append(row)
    return made, days_of, grouped


def _days_of(versions: list[Version]) -> set[date]:
    return {date.fromisoformat(version.event.day) for version in versions}


def _stale(touched: set[date], days_of: dict[int, set[date]], event_id: int, day: date) -> bool:
    """A row dated on a changed day, or of an event made again dated on a day of its versions: replaced."""
    return day in touched or day in days_of.get(event_id, ())


def _around(days: Iterable[date], listed: set[date]) -> set[date]:
    """The listed days within MERGE_WINDOW_DAYS of one of `days`: where a version merged with one on them can be."""
    found: set[date] = set()
    for day in days:
        for offset in range(-MERGE_WINDOW_DAYS, MERGE_WINDOW_DAYS + 1):
            try:
                near = day + timedelta(days=offset)
            except OverflowError:  # before year 1 or after 9999
                continue
            if near in listed:
                found.add(near)
    return found


def _months_around(days: Iterable[date]) -> set[str]:
    """The months of the days within MERGE_WINDOW_DAYS of one of `days` (less than a month: those of its ends)."""
    months: set[str] = set()
    for day in days:
        for offset in (-MERGE_WINDOW_DAYS, 0, MERGE_WINDOW_DAYS):
            with suppress(OverflowError):  # before year 1 or after 9999
                months.add(month_of(day + timedelta(days=offset)))
    return months


def _ids_and_dates(table: Table | None) -> Iterator[tuple[int, date]]:
    return iter(()) if table is None else zip(table["id"].to_pylist(), table["local_date"].to_pylist(), strict=True)


def _replaced(old: Table | None, rows: list[dict[str, Any]], stale: Stale) -> Table:
    """The month's file with `rows` in place of the rows it held that are `stale`."""
    if old is None:
        return _table(rows)
    pa, _ = import_pyarrow()
    kept = pa.array([not stale(event_id, day) for event_id, day in _ids_and_dates(old)], pa.bool_())
    return _table(rows, old.filter(kept))


def _last_day(month: str) -> date:
    first = date.fromisoformat(f"{month}-01")
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _table(rows: list[dict[str, Any]], more: Table | None = None) -> Table:
    """The rows (and those of the table `more`) as one table of the export's schema, in ORDER."""
    pa, _ = import_pyarrow()
    schema = parquet_schema()
    table = pa.Table.from_pylist(rows, schema=schema)
    if more is not None:
        table = pa.concat_tables([more.cast(schema), table])
    return table.sort_by(ORDER)


def _read_month(path: Path) -> Table | None:
    """A monthly file as a table; None when there is none."""
    _, pq = import_pyarrow()
    try:
        return pq.ParquetFile(path).read()  # not read_table, which loads pandas when it is installed
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise ExportError(f"{path} is not a monthly file as the export writes them ({error}): remove it, "
                          "and the next update makes the folder again") from None


def _write_month(path: Path, table: Table) -> None:
    """A month's file replaced by its rows (removed when it has none)."""
    if table.num_rows:
        _, pq = import_pyarrow()
        replace_with(path, partial(pq.write_table, table, row_group_size=PARQUET_ROW_GROUP))
    else:
        path.unlink(missing_ok=True)


def _ours(name: str) -> bool:
    return name in (STATE_FILE, LOCK_FILE) or MONTH_FILE.fullmatch(name) is not None or name.startswith(".")


def _read_state(folder: Path) -> dict[str, Any] | None:
    """The folder's bookkeeping; None when there is none, {} when it is unreadable (read the guarded
    way, no further than STATE_MAX_BYTES, its days checked like settings): then every month is written again."""
    try:
        data = read_regular(folder / STATE_FILE, STATE_MAX_BYTES)
        document = json.loads(data) if len(data) <= STATE_MAX_BYTES else None
        if isinstance(document, dict):
            read_signatures(document.get("days"))
            months = document.get("months")  # required, as made_from and format are (checked by _why_rebuild)
            if isinstance(months, dict) and all(isinstance(count, str) or (type(count) is int and count >= 0)
                                                for count in months.values()):  # digests of STATE_FORMAT 1
                _spread_of(document)
                return document
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError, Unreadable):
        pass
    return {}


def _spread_of(state: dict[str, Any]) -> Spread:
    """The state's days of the events dated on several; ValueError when they are not such."""
    spread = state.get("spread", {})
    if not isinstance(spread, dict) or not all(isinstance(days, list) for days in spread.values()):
        raise ValueError("the days of the events dated on several are not a mapping of lists")
    try:
        return {int(event_id): {date.fromisoformat(day) for day in days} for event_id, days in spread.items()}
    except TypeError as error:
        raise ValueError(str(error)) from None


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One update of the folder at a time: a second one waits for the first. The lock file is
    opened the guarded way (files.open_regular): a FIFO there would block, a link be written through."""
    try:
        fd = open_regular(folder / LOCK_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, follow=False)
    except NotRegularFile as refused:
        raise ExportError(f"{refused}; refusing to use it as the folder's lock (remove it)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
