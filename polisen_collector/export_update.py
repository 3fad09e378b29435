"""SQLite exports that keep their own bookkeeping, and bringing one up to date in place.

What changed in the archive is told by names alone. Every object is written once and never
changed: a run adds a per-run object (new events, late publications under old dates, edits),
the page step a page version and its parse, compaction replaces a day's objects by one named by
its content (compacted again, a new name), a new parser's parse replaces an older one. So each day's rows are a
function of the names of that day's objects (export.DayObjects), and the database records,
per day, a digest of the names its rows were read from (table `_export_days`), and in
`_export_state` what else the rows depend on (the schema, the parser's version, the SCB
reference, the options, the archive).

An update lists the archive (names only: the events and pages prefixes), reads the days whose
digest changed (and every other day of an event found there, should its versions be dated on
several days: the versions table has them, and `_export_left_out` those of the events the filters
left out), and replaces those events' rows, all in one transaction on the database in
place: a reader (Datasette) sees the database before or after, never between, and a killed
update leaves the previous one; a second update waits for the first and then finds little to
do. When anything but the archive changed (a new version of the schema or the parser, other
options), the update rebuilds every row, in place and in one transaction too.

The database keeps SQLite's rollback journal (never WAL), so that a reader needs nothing but read
access to the database file: the site serves it from a read-only folder (docs/site.md). The
update's changes stay in its page cache until it commits; readers go on reading the database as it
was meanwhile, and wait only while the commit writes the changed pages (SQLite's busy timeout).
A WAL database could not be opened by a reader that may not create the -wal and -shm files
beside it, which SQLite deletes when the last writer closes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from polisen_collector import readback
from polisen_collector.archive.layout import READ_ATTEMPTS, BadLine, DayKeptChanging
from polisen_collector.clock import utc_now
from polisen_collector.export import (
    COLUMNS,
    ROWS_VERSION,
    VERSION_KEY,
    DayObjects,
    EventRecord,
    ExportError,
    ExportOptions,
    ExportSummary,
    create_sqlite_tables,
    finish_sqlite_tables,
    insert_sqlite_records,
    iter_events_with_versions,
    list_day,
    list_days,
    sqlite_schema,
)
from polisen_collector.files import NotRegularFile, open_regular
from polisen_collector.pages.parse import PARSER_VERSION
from polisen_collector.storage.base import Storage

BOOKKEEPING_FORMAT = 2
"""2: and the days of the events the filters left out."""
DAYS_TABLE = "_export_days"
STATE_TABLE = "_export_state"
LEFT_OUT_TABLE = "_export_left_out"
BOOKKEEPING = [
    f'CREATE TABLE "{DAYS_TABLE}" ("day" TEXT PRIMARY KEY, "signature" TEXT NOT NULL)',
    f'CREATE TABLE "{STATE_TABLE}" ("key" TEXT PRIMARY KEY, "value" TEXT NOT NULL)',
    f'CREATE TABLE "{LEFT_OUT_TABLE}" ("id" INTEGER NOT NULL, "day" TEXT NOT NULL, PRIMARY KEY ("id", "day")) '
    "WITHOUT ROWID",
    f'CREATE INDEX "{LEFT_OUT_TABLE}_day" ON "{LEFT_OUT_TABLE}" ("day")',
]
LeftOut = list[tuple[int, str]]
"""(id, day) of each version of the events that --type or --location left out: the days an update reads when
an event is found again on one (a new version of another type), as the versions table gives them for the others."""
WRITER_WAIT_SECONDS = 900
"""How long an update waits for another one (or a rebuild) holding the database, before it gives up."""
UPDATE_CACHE_KIB = 65_536
"""The page cache of an update: its changes stay in memory until the commit. Changes beyond it are
written to the database before the commit, which keeps readers waiting from then on (a rebuild)."""


@dataclass
class UpdateReport:
    """What an export to SQLite did; `how` is `created` (a new file), `rebuilt` or `updated` (in place)."""

    how: str
    reason: str = ""
    days: int = 0
    days_changed: int = 0
    days_read: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    events: int = 0

    def __str__(self) -> str:
        if self.how == "updated":
            return (f"updated: {self.days_changed} of {self.days} days changed, {self.days_read} read; "
                    f"{self.added} events added, {self.changed} changed, {self.removed} removed; "
                    f"{self.events} events in all")
        return f"{self.how}{f' ({self.reason})' if self.reason else ''}: {self.events} events from {self.days} days"


def made_from(storage: Storage, options: ExportOptions, schema: object = None,
              row_options: tuple[str, ...] = ("date_from", "date_to", "types", "locations", "page_origin")) -> str:
    """What the rows depend on besides the archive's objects, as JSON: an export made from another is
    rebuilt, not updated. `schema` is the output's (by default SQLite's), `row_options` the options
    that change its rows (SQLite always has every version)."""
    places = (resources.files("polisen_collector") / "data" / "swedish_admin_areas.csv").read_bytes()
    document = {
        "bookkeeping": BOOKKEEPING_FORMAT,
        "rows": ROWS_VERSION,
        "schema": hashlib.sha256(json.dumps(sqlite_schema() if schema is None else schema).encode()).hexdigest()[:16],
        "parser": PARSER_VERSION,
        "places": hashlib.sha256(places).hexdigest()[:16],
        "archive": archive_name(storage),
        "options": {key: sorted(value) if isinstance(value, frozenset) else value.isoformat()
                    if isinstance(value, date) else value
                    for key, value in asdict(options).items() if key in row_options},
    }
    return json.dumps(document, sort_keys=True, ensure_ascii=False)


def archive_name(storage: Storage) -> str:
    """The archive as the bookkeeping names it: a local folder by its real path, so that the same folder
    named otherwise (a relative path, a symbolic link) is the same archive, not a reason to rebuild."""
    from polisen_collector.storage.local import LocalStorage

    return f"local folder {storage.root.resolve()}" if isinstance(storage, LocalStorage) else storage.description


def write_new(storage: Storage, options: ExportOptions, path: str, summary: ExportSummary, *,
              on_bad: Callable[[BadLine], None], progress: Callable[[int, date], None] | None = None
              ) -> UpdateReport:
    """A whole export into the new, empty file `path` (a temp file, renamed over -o by the caller), with
    its bookkeeping, in SQLite's rollback journal mode like every export (see the module's docstring)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")  # a temp file: renamed over -o only when complete
        connection.execute("BEGIN")
        report = _write_all(connection, storage, options, summary, on_bad=on_bad, progress=progress, how="created")
        connection.execute("COMMIT")
        connection.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as error:  # such as "database or disk is full": the output failed, like an OSError
        raise OSError(f"cannot write the SQLite database {path}: {error}") from None
    finally:
        connection.close()
    return report


def update(storage: Storage, options: ExportOptions, path: Path, summary: ExportSummary, *,
           on_bad: Callable[[BadLine], None], progress: Callable[[int, date], None] | None = None) -> UpdateReport:
    """Bring the export database `path` up to date in place, in one transaction (see the module's docstring)."""
    try:
        os.close(open_regular(path))  # a FIFO there would hang SQLite's first read, a folder fail it
    except NotRegularFile as refused:
        raise ExportError(f"{refused}; --update keeps an SQLite file up to date (remove it)") from None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None,
                                     timeout=WRITER_WAIT_SECONDS)
    except sqlite3.Error as error:
        raise OSError(f"cannot open the SQLite database {path}: {error}") from None
    try:
        _rollback_journal(connection, path)
        connection.execute("BEGIN IMMEDIATE")  # one writer at a time: a second update waits here
        try:
            state = _state(connection)
            expected = made_from(storage, options)
            try:
                if state.get("made_from") != expected:
                    raise Unreadable(why_rebuild(state.get("made_from"), expected))
                report = _update_days(connection, storage, options, summary, on_bad)
            except Unreadable as rebuild:  # nothing is committed before: the rebuild replaces it all
                if strangers := _not_of_the_export(connection):
                    raise ExportError(f"{path} holds tables that are not the export's ({', '.join(strangers[:3])}): "
                                      f"not rebuilt in place ({rebuild}); export to another file") from None
                _drop_everything(connection)
                report = _write_all(connection, storage, options, summary, on_bad=on_bad, progress=progress,
                                    how="rebuilt", reason=str(rebuild))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    except sqlite3.Error as error:
        raise OSError(f"cannot update the SQLite database {path}: {error}") from None
    finally:
        connection.close()
    return report


def _rollback_journal(connection: sqlite3.Connection, path: Path) -> None:
    """The rollback journal (a database an earlier version left in WAL mode is turned back) and the
    update's page cache; a file that is not a database is refused."""
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.execute(f"PRAGMA cache_size = -{UPDATE_CACHE_KIB}")
    except sqlite3.DatabaseError as error:
        if "not a database" in str(error) or "malformed" in str(error):
            raise ExportError(f"{path} is not an SQLite database: remove it, or export to another file") from None
        raise


def _state(connection: sqlite3.Connection) -> dict[str, str]:
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {DAYS_TABLE, STATE_TABLE} <= tables:
        return {}
    return dict(connection.execute(f'SELECT "key", "value" FROM "{STATE_TABLE}"'))


class Unreadable(Exception):
    """The export's bookkeeping, or a row it reads back, is not as the export writes it: rebuild it."""


def why_rebuild(made: Any, expected: str, what: str = "the database") -> str:
    """Why an export made from `made` (None: it has no bookkeeping) is rebuilt to be made from `expected`."""
    if made is None:
        return f"{what} has no bookkeeping of an export"
    now = json.loads(expected)
    try:
        was = json.loads(made)
    except (TypeError, ValueError, RecursionError):
        was = None
    if not isinstance(was, dict):
        return "its bookkeeping is unreadable"
    changed = [key for key in sorted(now) if was.get(key) != now[key]]
    if "options" in changed and isinstance(options := was.get("options"), dict):
        named = [OPTION_NAMES.get(name, name) for name in sorted(now["options"])
                 if options.get(name) != now["options"][name]]
        changed[changed.index("options")] = f"options ({', '.join(named)})" if named else "options"
    return "its " + ", ".join(changed) + " changed"


OPTION_NAMES = {"all_versions": "--all-versions", "date_from": "--from", "date_to": "--to", "types": "--type",
                "locations": "--location", "page_origin": "the pages' site, POLISEN_SITE_URL or POLISEN_API_URL"}
"""The options of made_from as a user gives them, to say which one changed."""


def read_signatures(days: Any) -> dict[str, str]:
    """The bookkeeping's day -> digest of its objects' names, checked as strictly as a setting
    (readback.py); Unreadable otherwise."""
    try:
        if not isinstance(days, dict):
            raise ValueError(f"its days are a {type(days).__name__}")
        for day, signature in days.items():
            readback.named("day", readback.iso_day, day)
            if not readback.is_short_text(signature, 64):
                raise ValueError(f"the signature of {day} is {readback.shown(signature)}")
    except ValueError as error:
        raise Unreadable(f"its bookkeeping is unreadable: {error}") from None
    return days


def _not_of_the_export(connection: sqlite3.Connection) -> list[str]:
    """The tables and views of the database that an export does not make, a rebuild would drop: every one
    when it has none of the export's bookkeeping (a user's own `events` table is not the export's)."""
    made = sqlite3.connect(":memory:")
    try:
        create_sqlite_tables(made)
        for statement in BOOKKEEPING:
            made.execute(statement)
        ours = {name for (name,) in made.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    finally:
        made.close()
    tables = [name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    if DAYS_TABLE not in tables:  # dropping _export_state alone asks for a rebuild (docs/export.md)
        return tables
    return [name for name in tables if name not in ours]


def _drop_everything(connection: sqlite3.Connection) -> None:
    """Every table, view, index and trigger: the database is the export's (the rebuild makes it again)."""
    for kind in ("view", "trigger", "table"):
        for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%'", (kind,)).fetchall():
            if connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone():
                connection.execute(f'DROP {kind.upper()} "{name}"')  # an FTS table drops its shadow tables


def _write_all(connection: sqlite3.Connection, storage: Storage, options: ExportOptions, summary: ExportSummary, *,
               on_bad: Callable[[BadLine], None], progress: Callable[[int, date], None] | None, how: str,
               reason: str = "") -> UpdateReport:
    """Every row and the bookkeeping, inside the caller's transaction, in an empty database."""
    create_sqlite_tables(connection)
    for statement in BOOKKEEPING:
        connection.execute(statement)
    signatures: dict[str, str] = {}

    def recorded(days: Iterable[DayObjects]) -> Iterable[DayObjects]:
        for objects in days:
            signatures[objects.day.isoformat()] = objects.signature()
            yield objects

    days = recorded(list_days(storage, options, summary.counting(on_bad)))
    left: LeftOut = []
    insert_sqlite_records(connection, iter_events_with_versions(storage, options, summary, on_bad, progress, days=days,
                                                                left_out=partial(_note_left_out, left)))
    finish_sqlite_tables(connection)
    connection.executemany(f'INSERT INTO "{DAYS_TABLE}" VALUES (?, ?)', sorted(signatures.items()))
    connection.executemany(f'INSERT INTO "{LEFT_OUT_TABLE}" VALUES (?, ?)', left)
    now = utc_now().isoformat(timespec="seconds")
    connection.executemany(f'INSERT INTO "{STATE_TABLE}" VALUES (?, ?)', [
        ("made_from", made_from(storage, options)), ("exported_at", now), ("updated_at", now)])
    # A day read from a listing that changed meanwhile (a compaction deletes what it merged) is read again
    # from a new one, as an update would; its lines were reported by the whole read already.
    settled = _update_days(connection, storage, options, ExportSummary(), lambda line: None)
    return UpdateReport(how, reason, days=settled.days, days_read=len(signatures) + settled.days_read,
                        events=settled.events)


def changed_days(storage: Storage, options: ExportOptions, summary: ExportSummary, on_bad: Callable[[BadLine], None],
                 known: Mapping[str, str]) -> tuple[set[date], dict[date, DayObjects], set[date]]:
    """(every listed day, the days whose objects differ from `known`'s signatures with their objects, the
    known days no longer listed), from one listing of the archive."""
    listed: set[date] = set()
    changed: dict[date, DayObjects] = {}  # only these days' names are kept: a few, where all are years of pages
    for objects in list_days(storage, options, summary.counting(on_bad)):
        listed.add(objects.day)
        if known.get(objects.day.isoformat()) != objects.signature():
            changed[objects.day] = objects
    return listed, changed, {date.fromisoformat(day) for day in known} - listed


def _update_days(connection: sqlite3.Connection, storage: Storage, options: ExportOptions, summary: ExportSummary,
                 on_bad: Callable[[BadLine], None]) -> UpdateReport:
    known = read_signatures(dict(connection.execute(f'SELECT "day", "signature" FROM "{DAYS_TABLE}"')))
    listed, changed, gone = changed_days(storage, options, summary, on_bad, known)
    report = UpdateReport("updated", days=len(listed), days_changed=len(changed) + len(gone))
    if changed or gone:
        connection.execute('CREATE TEMP TABLE "_ids" ("id" INTEGER PRIMARY KEY)')
        connection.execute('CREATE TEMP TABLE "_days" ("day" TEXT PRIMARY KEY)')
        days, records, left = _read_until_stable(connection, storage, options, summary, on_bad=on_bad,
                                                 days={**changed, **{day: DayObjects(day) for day in gone}})
        report.days_read = len(days)
        report.added, report.changed, report.removed = _replace_rows(connection, days, records, left)
        connection.executemany(f'INSERT OR REPLACE INTO "{DAYS_TABLE}" VALUES (?, ?)',
                               [(day.isoformat(), objects.signature()) for day, objects in days.items()
                                if objects])
        connection.executemany(f'DELETE FROM "{DAYS_TABLE}" WHERE "day" = ?',
                               [(day.isoformat(),) for day, objects in days.items()
                                if not objects])
        connection.execute(f'INSERT OR REPLACE INTO "{STATE_TABLE}" VALUES (?, ?)',
                           ("updated_at", utc_now().isoformat(timespec="seconds")))
    report.events = connection.execute('SELECT count(*) FROM "events"').fetchone()[0]
    return report


Records = list[EventRecord]


def _read_until_stable(connection: sqlite3.Connection, storage: Storage, options: ExportOptions,
                       summary: ExportSummary, *, on_bad: Callable[[BadLine], None],
                       days: dict[date, DayObjects]) -> tuple[dict[date, DayObjects], Records, LeftOut]:
    """The days to read, their records and the events the filters leave out: the changed days, and every
    other day of an event found on them, in the database or in the archive; read again if they changed
    meanwhile (a compaction on another host deletes objects it merged): READ_ATTEMPTS times at most (the
    days found to read too are no attempt: each adds days, so they end)."""
    for _ in range(READ_ATTEMPTS):
        days, records, left = _read_with_every_day(connection, storage, options, summary, on_bad=on_bad, days=days)
        again = {day: list_day(storage, day) for day in days}
        if all(again[day].signature() == objects.signature() for day, objects in days.items()):
            return days, records, left
        days = again
    raise DayKeptChanging("the archive kept changing while the update read it; the next update tries again")


def _read_with_every_day(connection: sqlite3.Connection, storage: Storage, options: ExportOptions,
                         summary: ExportSummary, *, on_bad: Callable[[BadLine], None],
                         days: dict[date, DayObjects]) -> tuple[dict[date, DayObjects], Records, LeftOut]:
    """The records of `days` and of every other day of the events found on them (added to `days`)."""
    while True:
        while extra := _days_of(connection, days.keys(), "day") - days.keys():
            days.update({day: list_day(storage, day) for day in extra})
        attempt, left = ExportSummary(), LeftOut()
        records = list(iter_events_with_versions(storage, options, attempt, on_bad,
                                                 days=[objects for _, objects in sorted(days.items())],
                                                 left_out=partial(_note_left_out, left)))
        found = [latest["id"] for latest, *_ in records] + [event_id for event_id, _ in left]
        if not (extra := _days_of(connection, found, "id") - days.keys()):
            vars(summary).update(vars(attempt))
            return days, records, left
        days.update({day: list_day(storage, day) for day in extra})


def _note_left_out(left: LeftOut, event_id: int, days: set[str]) -> None:
    left.extend((event_id, day) for day in sorted(days))


def _days_of(connection: sqlite3.Connection, keys: Iterable[Any], by: str) -> set[date]:
    """Every day on which the database has a version of an event it has on one of the days given (`by` day)
    or of one of the ids given (`by` id), its rows' or those the filters left out."""
    connection.execute('DELETE FROM temp."_days"')
    connection.execute('DELETE FROM temp."_ids"')
    if by == "day":
        connection.executemany('INSERT INTO temp."_days" VALUES (?)', [(day.isoformat(),) for day in keys])
        connection.execute('INSERT OR IGNORE INTO temp."_ids" SELECT "id" FROM "versions" '
                           'WHERE "local_date" IN (SELECT "day" FROM temp."_days")')
        connection.execute(f'INSERT OR IGNORE INTO temp."_ids" SELECT "id" FROM "{LEFT_OUT_TABLE}" '
                           'WHERE "day" IN (SELECT "day" FROM temp."_days")')
    else:
        connection.executemany('INSERT OR IGNORE INTO temp."_ids" VALUES (?)', [(key,) for key in keys])
    found = connection.execute(f'SELECT "local_date" FROM "versions" WHERE "id" IN (SELECT "id" FROM temp."_ids") '
                               f'UNION SELECT "day" FROM "{LEFT_OUT_TABLE}" WHERE "id" IN (SELECT "id" FROM temp."_ids")')
    try:
        return {date.fromisoformat(readback.iso_day(day)) for (day,) in found}
    except ValueError as error:
        raise Unreadable(f"a version's local_date is not the export's: {error}") from None


def _replace_rows(connection: sqlite3.Connection, days: dict[date, DayObjects], records: Records, left: LeftOut
                  ) -> tuple[int, int, int]:
    """Delete the rows of every event the database has on `days`, write `records`, the rows those days
    give now, and `left`, the events they leave out; returns how many events were (added, changed, removed)."""
    _days_of(connection, days.keys(), "day")  # fills temp._ids with the events the database has on them
    connection.executemany('INSERT OR IGNORE INTO temp."_ids" VALUES (?)',
                           [(latest["id"],) for latest, *_ in records] + [(event_id,) for event_id, _ in left])
    before = _rows(connection)
    for table in ("withdrawals", "versions", "events", LEFT_OUT_TABLE):
        connection.execute(f'DELETE FROM "{table}" WHERE "id" IN (SELECT "id" FROM temp."_ids")')
    insert_sqlite_records(connection, records)
    connection.executemany(f'INSERT INTO "{LEFT_OUT_TABLE}" VALUES (?, ?)', left)
    after = _rows(connection)
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    changed = sum(before[key] != after[key] for key in before.keys() & after.keys())
    return added, changed, removed


def _rows(connection: sqlite3.Connection) -> dict[int, tuple[Any, ...]]:
    """The rows of the events in temp._ids, each with its versions and its withdrawals, to count what an
    update changed."""
    columns = ", ".join(f'"{name}"' for name in COLUMNS)
    rows: dict[int, Any] = {row[0]: [row, [], []] for row in connection.execute(
        f'SELECT {columns} FROM "events" WHERE "id" IN (SELECT "id" FROM temp."_ids")')}
    for row in connection.execute(f'SELECT {columns}, "{VERSION_KEY}" FROM "versions" '
                                  f'WHERE "id" IN (SELECT "id" FROM temp."_ids") ORDER BY "id", "{VERSION_KEY}"'):
        rows.setdefault(row[0], [None, [], []])[1].append(row)
    for row in connection.execute('SELECT * FROM "withdrawals" WHERE "id" IN (SELECT "id" FROM temp."_ids") '
                                  'ORDER BY "id", "confirmed_at", "status"'):
        rows.setdefault(row[0], [None, [], []])[2].append(row)
    return {key: (value[0], tuple(value[1]), tuple(value[2])) for key, value in rows.items()}
