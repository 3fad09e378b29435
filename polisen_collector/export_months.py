"""Parquet as a folder of monthly files, kept up to date by rewriting only the months that changed.

    DIR/events-2026-05.parquet     the rows of the events dated in May 2026 (Swedish dates)
    DIR/_export_state.json         what the files were made from: per day, the digest of its objects' names;
                                   per month, the digest of its rows

`read_parquet('DIR/*.parquet')` in DuckDB (or pandas, Spark, Polars) reads them as one table;
`_export_state.json` matches no `*.parquet` glob and starts with `_`, which Spark and Hive skip.
What changed is told by the names of the archive's objects, as for SQLite (export_update.py):
a month is read again when a day in it changed, from its own days and the MERGE_WINDOW_DAYS
around it (an event whose versions are dated on two days is one row, in the month of its latest
version), and its file is replaced only when its rows differ from those it holds (a compaction,
or a page that changes no column, rewrites nothing). Should an event's row move to another month
(a new version dated there), the month it left is read again too. Each file is written beside
its place and renamed over it, so a reader never sees half a file; the state is written after
the files, so a killed update leaves the state of before and the next update reads those months
again. Two updates of one folder at once take turns (a lock file in the folder).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from polisen_collector.archive.layout import BadLine
from polisen_collector.export import (
    COLUMNS,
    MERGE_WINDOW_DAYS,
    READ_ATTEMPTS,
    DayObjects,
    ExportError,
    ExportOptions,
    ExportSummary,
    iter_rows,
    list_day,
    list_days,
    write_parquet,
)
from polisen_collector.export_update import Unreadable, made_from, read_signatures, why_rebuild
from polisen_collector.files import NotRegularFile, atomic_write, open_regular, read_regular, replace_with
from polisen_collector.storage.base import Storage

STATE_FILE = "_export_state.json"
STATE_MAX_BYTES = 16 << 20
"""The bookkeeping is read no further: about 40 bytes a day, a century of days is 1.5 MB."""
LOCK_FILE = ".export.lock"
ROW_OPTIONS = ("all_versions", "date_from", "date_to", "types", "locations", "page_origin")


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
            text += f"{self.days_changed} of {self.days} days changed, {self.months_read} months read; "
        return text + f"{self.months_written} of {self.months} monthly files written ({self.rows_written} rows)"


def month_file(month: str) -> str:
    return f"events-{month}.parquet"


def month_of(day: date) -> str:
    return f"{day:%Y-%m}"


def update_months(storage: Storage, options: ExportOptions, folder: Path, summary: ExportSummary,
                  on_bad: Callable[[BadLine], None]) -> MonthsReport:
    """Bring the folder of monthly files up to date (made, or made again, when it holds no state of the same kind)."""
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file: a Parquet --update writes a folder of monthly files")
    folder.mkdir(exist_ok=True)
    strangers = [p.name for p in folder.iterdir() if not _ours(p.name)]
    with _locked(folder):
        state = _read_state(folder)
        if state is None and strangers:
            raise ExportError(f"{folder} holds files of its own ({strangers[0]}): export to a new or empty folder")
        expected = made_from(storage, options, list(COLUMNS.items()), ROW_OPTIONS)
        same = state is not None and state.get("made_from") == expected
        known: dict[str, str] = state["days"] if same and state else {}
        digests: dict[str, str] = dict(state.get("months") or {}) if same and state else {}
        signatures = {objects.day: objects.signature()
                      for objects in list_days(storage, options, summary.counting(on_bad))}
        months = sorted({month_of(day) for day in signatures})
        if same:
            changed = {day for day, signature in signatures.items() if known.get(day.isoformat()) != signature}
            changed |= {date.fromisoformat(day) for day in known} - signatures.keys()
            report = MonthsReport("updated", days=len(signatures), days_changed=len(changed), months=len(months))
            missing = {month for month in months if digests.get(month, EMPTY) != EMPTY
                       and not (folder / month_file(month)).exists()}  # a file removed by hand
            pending = sorted({month_of(day) for day in changed} | missing)
        else:
            reason = ("" if state is None else "its bookkeeping is unreadable" if not state
                      else why_rebuild(state.get("made_from"), expected, "the folder"))
            report = MonthsReport("created" if state is None else "rebuilt", reason,
                                  days=len(signatures), days_changed=len(signatures), months=len(months))
            pending, digests = list(months), {}
        days = {day.isoformat(): signature for day, signature in signatures.items()}
        read: set[str] = set()
        while pending:
            month = pending.pop(0)
            if month in read:
                continue
            read.add(month)
            rows, seen = _month_rows(storage, options, month, summary, on_bad=on_bad)
            days = {day: signature for day, signature in days.items() if not day.startswith(month)} | seen
            path, digest = folder / month_file(month), _digest(rows)
            if digest != digests.get(month) or (rows and not path.exists()):
                _write_month(path, rows)
                report.months_written += 1
                report.rows_written += len(rows)
            digests[month] = digest
            ids = {row["id"] for row in rows}
            pending += [other for other in _neighbours(month) if other not in read and other in months
                        and ids & _ids_in(folder / month_file(other))]  # rows that moved here from there
        report.months_read = len(read)
        for path in folder.glob("events-*.parquet"):
            if path.name not in {month_file(month) for month in months}:
                path.unlink()
        document = {"made_from": expected, "days": dict(sorted(days.items())),
                    "months": {month: digests[month] for month in months if month in digests}}
        atomic_write(folder / STATE_FILE, json.dumps(document, indent=0).encode("utf-8"))
    return report


def _digest(rows: list[dict[str, Any]]) -> str:
    """What a month's file holds, for telling whether it must be written again."""
    return hashlib.sha256(json.dumps(rows, default=str, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


EMPTY = _digest([])


def _month_rows(storage: Storage, options: ExportOptions, month: str, summary: ExportSummary, *,
                on_bad: Callable[[BadLine], None]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rows of one month, from its days and the merge window around them, and the signature of each of
    its days as read; read again when the days changed meanwhile (a compaction deleting what it merged)."""
    first = date.fromisoformat(f"{month}-01")
    end = (first + timedelta(days=32)).replace(day=1)
    window = [first + timedelta(days=offset) for offset in range(-MERGE_WINDOW_DAYS, (end - first).days + MERGE_WINDOW_DAYS)
              if _in_dates(first + timedelta(days=offset), options)]
    for _ in range(READ_ATTEMPTS):
        days: list[DayObjects] = [objects for day in window for objects in [list_day(storage, day)] if objects]
        attempt = ExportSummary()
        rows = [row for row in iter_rows(storage, options, attempt, on_bad, days=days)
                if month_of(row["datetime"].date()) == month]
        if all(list_day(storage, objects.day).signature() == objects.signature() for objects in days):
            summary.add(attempt)
            return rows, {objects.day.isoformat(): objects.signature() for objects in days
                          if month_of(objects.day) == month}
    raise ExportError("the archive kept changing while the update read it; the next update tries again")


def _write_month(path: Path, rows: list[dict[str, Any]]) -> None:
    """A month's file replaced by its rows (removed when it has none)."""
    if rows:
        replace_with(path, partial(write_parquet, rows))
    else:
        path.unlink(missing_ok=True)


def _neighbours(month: str) -> list[str]:
    first = date.fromisoformat(f"{month}-01")
    return [month_of(first - timedelta(days=1)), month_of(first + timedelta(days=31))]


def _ids_in(path: Path) -> set[int]:
    """The event ids in a monthly file (its id column alone); none when there is no file."""
    import pyarrow.parquet as pq

    try:
        return set(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    except FileNotFoundError:
        return set()


def _in_dates(day: date, options: ExportOptions) -> bool:
    return (options.date_from is None or day >= options.date_from) and (options.date_to is None or
                                                                         day <= options.date_to)


def _ours(name: str) -> bool:
    return (name in (STATE_FILE, LOCK_FILE) or (name.startswith("events-") and name.endswith(".parquet"))
            or name.startswith("."))


def _read_state(folder: Path) -> dict[str, Any] | None:
    """The folder's bookkeeping; None when there is none, {} when it is unreadable (read the guarded
    way, no further than STATE_MAX_BYTES, its days checked like settings): then every month is written again."""
    try:
        data = read_regular(folder / STATE_FILE, STATE_MAX_BYTES)
        document = json.loads(data) if len(data) <= STATE_MAX_BYTES else None
        if isinstance(document, dict):
            read_signatures(document.get("days"))
            months = document.get("months", {})
            if isinstance(months, dict) and all(isinstance(digest, str) for digest in months.values()):
                return document
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError, Unreadable):
        pass
    return {}


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
