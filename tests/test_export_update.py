"""export_events.py --update: an SQLite export brought up to date in place, against the archive as it grows.

The archive grows as the replay of the 114 recorded answers grew it (the session's replayed
archive, its objects in the order the runs wrote them), with pages arriving runs after their
events (the real pages), pages of old events, an edited page, pages stored without a parse
and parsed later, withdrawals and a republication, and a compaction halfway: after every
step an update, and at checkpoints the updated database equals a whole export of the same
archive, row for row.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Collector, clear_settings
from fake_polisen import PAGES_DIR

from polisen_collector import export_update
from polisen_collector.archive.compaction import compact
from polisen_collector.archive.events import encode_jsonl
from polisen_collector.archive.layout import collection_time, new_run_id, read_versions, run_id_of_object, run_object_name
from polisen_collector.archive.withdrawals import REPUBLISHED, WITHDRAWN, Record, write_records
from polisen_collector.cli import export_events
from polisen_collector.export import COLUMNS
from polisen_collector.pages.parse import content_fingerprint, parse_page
from polisen_collector.pages.reparse import store_missing_parses
from polisen_collector.pages.store import page_object_name, write_page_version
from polisen_collector.storage.local import LocalStorage

STEPS = (10, 40, 55, 85, None)  # cut after this many runs (None: all)
COMPACT_AFTER_STEP, REPARSE_AFTER_STEP = 2, 3
CHECKED_STEPS = {1, 3, 4}
KILL_SCRIPT = "tests/export_with_kill.py"
POLISEN = {"POLISEN_API_URL": "https://polisen.se/api/events", "API_RATE_LIMIT": "on"}
"""The settings of run_export's exports, for those run as a process: the same page_url origin."""


def timeline(replayed: Path, pages: bool = True) -> list[list[tuple[str, object]]]:
    """The archive's writes grouped by run: each run's event objects, then the pages that arrive after it."""
    names = sorted((str(path.relative_to(replayed).as_posix()) for path in (replayed / "events").rglob("*.jsonl")),
                   key=lambda name: run_id_of_object(name) or "")
    runs = sorted({run_id_of_object(name) or "" for name in names})
    writes: list[list[tuple[str, object]]] = [[("event", name) for name in names if run_id_of_object(name) == run]
                                              for run in runs]
    if not pages:
        return writes
    storage = LocalStorage(replayed)
    first_run: dict[int, tuple[int, str]] = {}  # id -> (index of the run that stored it first, its day)
    for index, run in enumerate(writes):
        for _, name in run:
            day = "-".join(str(name).split("/")[1:4])
            for event in read_versions(storage, [str(name)]).versions:
                first_run.setdefault(event.event.id, (index, day))
    last = len(runs) - 1
    for event_id, (index, day) in sorted(first_run.items()):
        if event_id % 6:
            continue  # pages for a sixth of the events: enough of every case, and quick to parse
        due = last if event_id % 5 == 0 else min(index + 3, last)  # late: the pages of old events
        writes[due].append(("page", (day, event_id, fetched_at(runs[due]), event_id % 3 == 0)))
    edited = next(event_id for event_id, (index, _) in sorted(first_run.items())
                  if event_id % 6 == 0 and event_id % 5 and index + 6 < last)
    index, day = first_run[edited]
    writes[index + 6].append(("page", (day, edited, fetched_at(runs[index + 6], 2), "edited")))
    for nth, (event_id, (index, day)) in enumerate(sorted(first_run.items())[7:10]):  # withdrawn, one republished
        withdrawn = Record(event_id, WITHDRAWN, fetched_at(runs[index + 20]), day)
        writes[index + 20].append(("withdrawal", (day, withdrawn, f"{runs[index + 20]}{nth}")))  # one object each
        if nth == 0:
            back = Record(event_id, REPUBLISHED, fetched_at(runs[index + 50]), day)
            writes[index + 50].append(("withdrawal", (day, back, runs[index + 50])))
    return writes


def fetched_at(run: str, seconds: int = 1):
    return collection_time(run) + timedelta(seconds=seconds)


def write(storage: LocalStorage, replayed: LocalStorage, kind: str, what) -> None:
    if kind == "event":
        storage.put(what, replayed.get(what).data)
        return
    if kind == "withdrawal":
        day, record, run = what
        write_records(storage, day, [record], run)
        return
    day, event_id, fetched, how = what
    html = gzip.decompress((PAGES_DIR / f"{event_id}.html.gz").read_bytes())
    if how == "edited":
        html = html.replace(b"</h1>", b" (uppdaterad)</h1>", 1)
    page = parse_page(html)
    if how is True:  # stored before parses were: the page alone
        storage.put(page_object_name(day, event_id, fetched, content_fingerprint(page)), gzip.compress(html))
    else:
        write_page_version(storage, day, event_id, fetched=fetched, fingerprint=content_fingerprint(page), html=html,
                           page=page)


def dump(path: Path) -> dict[str, list]:
    """Everything an export database holds, in a comparable order."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            "events": connection.execute("SELECT * FROM events ORDER BY id").fetchall(),
            "versions": connection.execute("SELECT * FROM versions ORDER BY id, content_hash").fetchall(),
            "withdrawals": connection.execute("SELECT * FROM withdrawals ORDER BY id, confirmed_at").fetchall(),
            "search": connection.execute("SELECT rowid FROM events_fts WHERE events_fts MATCH 'bil* OR polis*' "
                                         "ORDER BY rowid").fetchall(),
            "days": connection.execute("SELECT * FROM _export_days ORDER BY day").fetchall(),
            "schema": connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
        }
    finally:
        connection.close()


def parquet_rows(path: Path) -> list[dict]:
    """The rows of a Parquet file or of a folder of them, ordered by id."""
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    return sorted((row for file in files for row in pq.read_table(file).to_pylist()), key=lambda row: row["id"])


def whole_parquet(run_export, data_dir: Path, path: Path, *args: str) -> list[dict]:
    code, err = run_export(data_dir, "-o", str(path), *args)
    assert code == 0, err
    return parquet_rows(path)


def journal_mode(path: Path) -> str:
    """The rollback journal ("delete") for every export: a reader needs no file beside the database."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def fts_intact(path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("INSERT INTO events_fts(events_fts) VALUES('integrity-check')")
    finally:
        connection.close()


@pytest.fixture
def run_export(monkeypatch, capsys):
    """export_events.main in this process, with no settings from the environment but the API URL."""
    clear_settings(monkeypatch, POLISEN_API_URL="https://polisen.se/api/events")

    def run(data_dir: Path, *args: str) -> tuple[int, str]:
        code = export_events.main(["--env-file", os.devnull, "--data-dir", str(data_dir), *args])
        return code, capsys.readouterr().err

    return run


@pytest.mark.slow
def test_a_chain_of_updates_gives_the_rows_of_a_whole_export(replayed_archive, tmp_path, run_export):
    source = replayed_archive.collector.data_dir
    replayed, storage = LocalStorage(source), LocalStorage(tmp_path / "data")
    database, months = tmp_path / "events.db", tmp_path / "events-by-month"
    writes = timeline(source)
    done, reports = 0, []
    for step, cut in enumerate(STEPS):
        for run in writes[done:cut]:
            for kind, what in run:
                write(storage, replayed, kind, what)
        done = len(writes) if cut is None else cut
        if step == COMPACT_AFTER_STEP:
            assert compact(storage, date(2026, 5, 30), 2).days_compacted > 0
        if step == REPARSE_AFTER_STEP:
            assert store_missing_parses(storage).parsed > 0
        code, err = run_export(storage.root, "-o", str(database), "--update")
        assert code == 0, err
        reports.append(err)
        code, err = run_export(storage.root, "-o", str(months), "--format", "parquet", "--update")
        assert code == 0, err
        if step in CHECKED_STEPS:
            code, err = run_export(storage.root, "-o", str(tmp_path / "whole.db"))
            assert code == 0, err
            assert dump(database) == dump(tmp_path / "whole.db"), f"step {step}"
            fts_intact(database)
            assert [journal_mode(path) for path in (database, tmp_path / "whole.db")] == ["delete", "delete"]
            assert parquet_rows(months) == whole_parquet(run_export, storage.root, tmp_path / "whole.parquet")
    assert len(dump(database)["withdrawals"]) == 4, "three withdrawals, one republication"
    assert reports[0].startswith("exported ")  # the first --update made the database
    assert all(report.startswith(f"{database} updated: ") for report in reports[1:]), reports
    again = run_export(storage.root, "-o", str(database), "--update")[1]
    assert " 0 of 28 days changed, 0 read; 0 events added, 0 changed, 0 removed; " in again, again


@pytest.fixture
def half_grown(replayed_archive, tmp_path, run_export):
    """A workspace holding the objects of the replay's first 90 runs and an export of them made with
    --update, and a function that adds the rest of the runs."""
    source = replayed_archive.collector.data_dir
    workspace = Collector(tmp_path / "workspace", "http://127.0.0.1:9/api/events")
    runs = [[what for kind, what in run if kind == "event"] for run in timeline(source, pages=False)]
    replayed, storage = LocalStorage(source), LocalStorage(workspace.data_dir)
    for run in runs[:90]:
        for name in run:
            storage.put(name, replayed.get(name).data)
    database = tmp_path / "events.db"
    assert run_export(workspace.data_dir, "-o", str(database), "--update")[0] == 0

    def add_the_rest() -> None:
        for run in runs[90:]:
            for name in run:
                storage.put(name, replayed.get(name).data)

    return workspace, database, add_the_rest


def whole_export(run_export, data_dir: Path, path: Path, *args: str) -> dict[str, list]:
    code, err = run_export(data_dir, "-o", str(path), *args)
    assert code == 0, err
    return dump(path)


@pytest.mark.slow
@pytest.mark.parametrize("step, cache_kib", [("_replace_rows", None), ("_write_all", None), ("_write_all", 64)])
def test_a_killed_update_leaves_the_previous_database(half_grown, run_export, tmp_path, step, cache_kib):
    """Killed before its commit: its changes were in its page cache, and a read-only reader (the site)
    reads the database as it was. With a cache too small for its changes (64 KiB), the update had
    begun to write the database: the journal beside it is hot, which a read-only reader cannot roll
    back (it is refused until then), and the next writer rolls back (docs/site.md)."""
    workspace, database, add_the_rest = half_grown
    if step == "_write_all":  # a rebuild in place: what an export made by an older version gets
        with sqlite3.connect(database) as connection:
            connection.execute(f'DROP TABLE "{export_update.STATE_TABLE}"')
        connection.close()
    before = dump(database)
    add_the_rest()
    env = {**POLISEN, "KILL_AFTER": f"export_update.{step}"}
    killed = workspace.run("-o", str(database), "--update", script=KILL_SCRIPT,
                           env=env if cache_kib is None else {**env, "UPDATE_CACHE_KIB": str(cache_kib)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert Path(f"{database}-journal").exists(), "killed inside its transaction: its rollback journal is left"
    if cache_kib is None:
        assert dump(database) == before
    else:
        with pytest.raises(sqlite3.OperationalError, match="attempt to write a readonly database"):
            dump(database)
        with sqlite3.connect(database) as connection:  # a writer: rolls the hot journal back
            connection.execute("SELECT count(*) FROM sqlite_master")
        connection.close()
        assert not Path(f"{database}-journal").exists()
        assert dump(database) == before
    fts_intact(database)

    code, err = run_export(workspace.data_dir, "-o", str(database), "--update")
    assert code == 0, err
    assert dump(database) == whole_export(run_export, workspace.data_dir, tmp_path / "whole.db")


def test_a_killed_first_export_leaves_no_database(tmp_path, half_grown):
    workspace, _, _ = half_grown
    database = tmp_path / "new.db"
    killed = workspace.run("-o", str(database), "--update", script=KILL_SCRIPT,
                           env={**POLISEN, "KILL_AFTER": "export_update._write_all"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not database.exists()


def test_a_compaction_during_a_whole_export_loses_no_day(half_grown, run_export, tmp_path, monkeypatch):
    """Compaction deletes the objects it merged: a day listed before and read after is read again
    before the export commits, so the new database holds every row (as the update's reads do)."""
    from polisen_collector.archive import layout

    workspace, _, add_the_rest = half_grown
    add_the_rest()
    read_versions_of_a_day = layout.read_versions

    def compacting_first(storage, names):
        if not compacted:
            compacted.append(compact(LocalStorage(workspace.data_dir), date(2026, 6, 10), 2))
        return read_versions_of_a_day(storage, names)

    compacted: list = []
    monkeypatch.setattr(layout, "read_versions", compacting_first)
    database = tmp_path / "during.db"
    code, err = run_export(workspace.data_dir, "-o", str(database), "--update")
    assert code == 0, err
    assert compacted[0].days_compacted > 0
    monkeypatch.undo()
    assert dump(database) == whole_export(run_export, workspace.data_dir, tmp_path / "whole.db")


def test_readers_see_the_database_before_or_after_an_update_never_between(half_grown, run_export, tmp_path,
                                                                         monkeypatch):
    """Readers, read-only as Datasette reads, see the database as it was while the update works; its commit
    waits for a read in progress to end (rollback journal), then every reader sees the new rows."""
    import threading
    import time

    workspace, database, add_the_rest = half_grown
    before = dump(database)
    reader = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    seen: list = []
    replace_rows = export_update._replace_rows

    def end_the_read() -> None:
        time.sleep(1)  # the update is waiting for it meanwhile
        seen.append(("still reading", reader.execute("SELECT count(*) FROM events").fetchone()[0]))
        seen.append("ending the read")
        reader.execute("COMMIT")

    def replace_then_look(*args):
        changed = replace_rows(*args)
        seen.append(dump(database))  # a reader that starts while the update has rewritten its rows, uncommitted
        reader.execute("BEGIN")
        seen.append(("reading", reader.execute("SELECT count(*) FROM events").fetchone()[0]))
        threading.Thread(target=end_the_read).start()
        return changed

    monkeypatch.setattr(export_update, "_replace_rows", replace_then_look)
    add_the_rest()
    code, err = run_export(workspace.data_dir, "-o", str(database), "--update")
    seen.append("committed")
    assert code == 0, err
    count = len(before["events"])
    assert seen == [before, ("reading", count), ("still reading", count), "ending the read", "committed"]
    assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 1722
    reader.close()
    assert dump(database) == whole_export(run_export, workspace.data_dir, tmp_path / "whole.db")


@pytest.mark.slow
def test_two_updates_at_once_beside_a_collection_run(half_grown, fake_api, run_export, tmp_path):
    """Started together: the second update waits for the first and finds what is left; the run's new
    objects are there for the next update."""
    from concurrent.futures import ThreadPoolExecutor

    workspace, database, add_the_rest = half_grown
    add_the_rest()
    fake_api.serve(40)
    update = ["-o", str(database), "--update"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = [pool.submit(workspace.run, *update, script="export_events.py", env=POLISEN, process=True)
                for _ in range(2)]
        collecting = pool.submit(workspace.run, env={"POLISEN_API_URL": fake_api.url}, process=True)
        results = [run.result() for run in runs]
    assert [result.returncode for result in results] == [0, 0], [result.stderr for result in results]
    assert all(result.stderr.startswith(f"{database} updated: ") for result in results)
    assert collecting.result().returncode == 0, collecting.result().stderr
    code, err = run_export(workspace.data_dir, *update)
    assert code == 0, err
    assert dump(database) == whole_export(run_export, workspace.data_dir, tmp_path / "whole.db")


def test_a_database_made_otherwise_is_rebuilt_in_place(half_grown, run_export, tmp_path, monkeypatch):
    """Other options, another parser version, or an export from before the bookkeeping: every row
    again, in place, in one transaction (a reader of the old file sees the new rows, no rename)."""
    workspace, database, _ = half_grown
    inode = database.stat().st_ino
    code, err = run_export(workspace.data_dir, "-o", str(database), "--update", "--type", "Brand")
    assert (code, err.splitlines()[0]) == (0, f"{database} rebuilt in place: its options (--type) changed")
    assert dump(database) == whole_export(run_export, workspace.data_dir, tmp_path / "brand.db", "--type", "Brand")
    assert {row[list(COLUMNS).index("type")] for row in dump(database)["events"]} == {"Brand"}

    monkeypatch.setattr(export_update, "PARSER_VERSION", 99)
    code, err = run_export(workspace.data_dir, "-o", str(database), "--update")
    assert (code, err.splitlines()[0]) == (
        0, f"{database} rebuilt in place: its options (--type), parser changed")
    with sqlite3.connect(database) as connection:
        connection.execute(f'DROP TABLE "{export_update.STATE_TABLE}"')
    connection.close()
    code, err = run_export(workspace.data_dir, "-o", str(database), "--update")
    assert (code, err.splitlines()[0]) == (
        0, f"{database} rebuilt in place: the database has no bookkeeping of an export")
    assert database.stat().st_ino == inode
    assert dump(database) == whole_export(run_export, workspace.data_dir, tmp_path / "whole.db")


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "events.csv"], "error: --update applies to SQLite (-o FILE.db) and Parquet (-o FOLDER --format parquet)"),
    (["-o", "junk.db", "--format", "parquet"],
     "error: junk.db is a file: a Parquet --update writes a folder of monthly files"),
    (["-o", "data", "--format", "parquet"], "error: data holds files of its own (events): export to a new or empty "
                                            "folder"),
    (["-o", "events.db", "--all-versions"],
     "error: --all-versions does not apply to SQLite, which holds every version (table versions)"),
    (["-o", "junk.db"], "error: junk.db is not an SQLite database: remove it, or export to another file"),
])
def test_what_update_refuses(tmp_path, run_export, monkeypatch, args, message):
    (tmp_path / "data" / "events").mkdir(parents=True)
    (tmp_path / "junk.db").write_bytes(b"a file that is not a database" * 10)
    monkeypatch.chdir(tmp_path)
    assert run_export(tmp_path / "data", *args, "--update") == (2, message + "\n")
    assert (tmp_path / "junk.db").read_bytes() == b"a file that is not a database" * 10


@pytest.mark.slow
def test_a_folder_of_monthly_parquet_files_updated_and_killed(half_grown, run_export, tmp_path):
    """Every version (--all-versions); a killed update leaves whole files and a state that has forgotten the days
    it read (read again by the next update), the next one the rows of a whole export."""
    workspace, _, add_the_rest = half_grown
    months = tmp_path / "months"
    update = ["-o", str(months), "--format", "parquet", "--all-versions", "--update"]
    code, err = run_export(workspace.data_dir, *update)
    assert (code, err.splitlines()[0]) == (0, f"{months} created: 4 of 4 monthly files written (1456 rows)")
    state = json.loads((months / "_export_state.json").read_text())
    add_the_rest()
    killed = workspace.run(*update, script=KILL_SCRIPT, env={**POLISEN, "KILL_AFTER": "export_months._write_month"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal = json.loads((months / "_export_state.json").read_text())
    assert journal["days"].items() < state["days"].items() and journal["spread"] == state["spread"]
    assert not [path for path in months.iterdir() if path.name.endswith(".tmp")], "a temp file is left hidden only"
    parquet_rows(months)  # every file whole
    code, err = run_export(workspace.data_dir, *update)
    assert code == 0, err
    assert err.startswith(f"{months} updated: ") and " of 4 monthly files written" in err, err
    assert parquet_rows(months) == whole_parquet(run_export, workspace.data_dir, tmp_path / "all.parquet",
                                                 "--all-versions")

    import duckdb
    import pandas as pd

    rows = len(parquet_rows(months))  # export.md's two ways to read the folder as one table
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{months}/*.parquet')").fetchall() == [(rows,)]
    assert len(pd.read_parquet(months)) == rows


def test_monthly_files_are_written_only_when_their_rows_change(half_grown, run_export, tmp_path):
    """A compaction changes a day's objects, not its rows: no file is written. An edit that moves an event
    into the next month (a version dated there, as an edit of its time would be stored): the month it
    left is written too, and the event is in one file only. SQLite follows the event as well."""
    workspace, database, _ = half_grown
    months = tmp_path / "months"
    update = ["-o", str(months), "--format", "parquet", "--update"]
    assert run_export(workspace.data_dir, *update)[0] == 0

    def files() -> dict[str, int]:
        return {path.name: path.stat().st_ino for path in sorted(months.glob("*.parquet"))}

    created = files()
    storage = LocalStorage(workspace.data_dir)
    assert compact(storage, date(2026, 6, 10), 2).days_compacted > 0
    code, err = run_export(workspace.data_dir, *update)
    assert (code, files()) == (0, created), err
    assert " days changed, 4 months read; 0 of 4 monthly files written (0 rows)" in err, err

    event = read_versions(storage, list(storage.list("events/2026/05/30/"))).versions[0].event.raw
    moved = {**event, "datetime": event["datetime"].replace("2026-05-30", "2026-06-01")}
    storage.put(run_object_name("2026-06-01", new_run_id()), encode_jsonl([moved]))
    code, err = run_export(workspace.data_dir, *update)
    assert code == 0, err
    assert " 1 of " in err and "2 of 4 monthly files written" in err, err
    assert {name: inode == created[name] for name, inode in files().items()} == {
        "events-2026-03.parquet": True, "events-2026-04.parquet": True,
        "events-2026-05.parquet": False, "events-2026-06.parquet": False}
    rows = parquet_rows(months)
    assert [row["local_date"] for row in rows if row["id"] == event["id"]] == [date(2026, 6, 1)]
    assert rows == whole_parquet(run_export, workspace.data_dir, tmp_path / "whole.parquet")
    assert run_export(workspace.data_dir, "-o", str(database), "--update")[0] == 0
    assert dump(database) == whole_export(run_export, workspace.data_dir, tmp_path / "whole.db")


def dated_event(event_id: int, day: str, summary: str = "x") -> dict:
    return {**event_line(event_id), "datetime": f"{day} 9:38:09 +02:00", "summary": summary}


@pytest.mark.parametrize("only", [[], ["--type", "brand"]])
def test_monthly_files_of_events_dated_on_days_far_apart(tmp_path, run_export, only):
    """Event 7's versions are dated 30 May, 5 and 11 June, a week or less apart, so one row; the version
    stored last is the one of 30 May, so the row is May's, which the one pass over the archive has written
    by the time it reads 11 June: May's file is read back and written again with it. Event 8's versions
    are six weeks apart: a row in May and one in July. An edit of event 7 dated 11 June moves its row to
    June: the update reads the days around each of its versions (30 May is more than a week from 11 June)
    and takes the row out of May; an edit of event 8 in July leaves its May row alone. The update finds
    event 7's days in the state (the days of the events dated on several), or with a filter, which
    leaves no row of an event left out, by reading the week around each day."""
    storage, months = LocalStorage(tmp_path / "data"), tmp_path / "months"

    def put(day: str, run: str, *events: dict) -> None:
        storage.put(run_object_name(day, f"{run}.000Z-aaaaaa"), encode_jsonl(list(events)))

    for number, day in enumerate(["2026-05-20", "2026-05-30", "2026-06-05", "2026-06-09", "2026-06-11", "2026-06-20",
                                  "2026-07-01"]):
        put(day, f"{day.replace('-', '')}T080000", dated_event(100 + number, day))
    put("2026-06-05", "20260605T090000", dated_event(7, "2026-06-05"))
    put("2026-06-11", "20260611T090000", dated_event(7, "2026-06-11"))
    put("2026-05-30", "20260612T090000", dated_event(7, "2026-05-30"))  # stored last: the row's version
    put("2026-05-20", "20260520T090000", dated_event(8, "2026-05-20"))
    put("2026-07-01", "20260701T090000", dated_event(8, "2026-07-01"))
    update = ["-o", str(months), "--format", "parquet", "--update", *only]
    code, err = run_export(storage.root, *update)
    assert (code, err.splitlines()[-1]) == (0, f"{months} created: 3 of 3 monthly files written (10 rows); "
                                               "1 ids dated on days too far apart to merge"), err
    rows = parquet_rows(months)
    assert [(row["id"], row["local_date"], row["versions"]) for row in rows if row["id"] in (7, 8)] == [
        (7, date(2026, 5, 30), 3), (8, date(2026, 5, 20), 1), (8, date(2026, 7, 1), 1)]
    assert rows == whole_parquet(run_export, storage.root, tmp_path / "whole.parquet", *only)
    spread = json.loads((months / "_export_state.json").read_text())["spread"]
    assert spread == {"7": ["2026-05-30", "2026-06-05", "2026-06-11"]}

    put("2026-06-11", "20260613T090000", dated_event(7, "2026-06-11", "edited"))
    put("2026-07-01", "20260713T090000", dated_event(8, "2026-07-01", "edited"))
    code, err = run_export(storage.root, *update)
    assert (code, err) == (0, f"{months} updated: 2 of 7 days changed, 3 months read; 3 of 3 monthly files written "
                              "(10 rows)\n")  # event 8's day in May is not read: no warning
    rows = parquet_rows(months)
    assert [(row["id"], row["local_date"], row["summary"]) for row in rows if row["id"] in (7, 8)] == [
        (7, date(2026, 6, 11), "edited"), (8, date(2026, 5, 20), "x"), (8, date(2026, 7, 1), "edited")]
    assert rows == whole_parquet(run_export, storage.root, tmp_path / "whole.parquet", *only)
    assert json.loads((months / "_export_state.json").read_text())["spread"] == spread


@pytest.mark.parametrize("listed", ["every day", "only the days of 7 and 8"])
def test_an_ids_versions_merge_by_their_own_days_not_by_the_days_listed_between(tmp_path, listed):
    """Versions of an id at most MERGE_WINDOW_DAYS (7) apart are one row, farther apart two, whichever days
    lie between them in the listing: an update reads only some days, and must merge as a whole export does
    (versions 8 days apart merged when the day before the later one was listed, in review)."""
    from polisen_collector.export import ExportOptions, ExportSummary, iter_versions, list_days

    storage = LocalStorage(tmp_path / "data")
    for day in range(1, 13):
        storage.put(run_object_name(f"2026-06-{day:02d}", f"202606{day:02d}T080000.000Z-aaaaaa"),
                    encode_jsonl([dated_event(100 + day, f"2026-06-{day:02d}")]))
    for day, event_id in ((1, 7), (8, 7), (1, 8), (9, 8), (2, 9), (10, 9), (11, 9)):
        storage.put(run_object_name(f"2026-06-{day:02d}", f"202606{day:02d}T09{event_id:02d}00.000Z-aaaaaa"),
                    encode_jsonl([dated_event(event_id, f"2026-06-{day:02d}")]))
    days = list(list_days(storage, ExportOptions(), on_bad=pytest.fail))
    if listed != "every day":
        days = [objects for objects in days if objects.day.day in (1, 2, 8, 9, 10, 11)]
    groups = [sorted(version.event.day for version in versions)
              for versions in iter_versions(storage, days, ExportSummary(), on_bad=pytest.fail)
              if versions[0].event.id < 100]
    assert sorted(groups) == [["2026-06-01"], ["2026-06-01", "2026-06-08"], ["2026-06-02"],
                              ["2026-06-09"], ["2026-06-10", "2026-06-11"]]


def test_an_update_that_reads_a_few_days_merges_as_the_whole_export(tmp_path, run_export):
    """The review's case: events every day from 1 to 12 June, event 7 on 1 and 10 June (two rows); an edit of 7
    on 10 June and a new event on 1 June, then an update: it reads those two days alone, and keeps two rows."""
    storage, database, months = LocalStorage(tmp_path / "data"), tmp_path / "events.db", tmp_path / "months"
    updates = (["-o", str(database), "--update"], ["-o", str(months), "--format", "parquet", "--update"])

    def put(day: int, run: str, *events: dict) -> None:
        storage.put(run_object_name(f"2026-06-{day:02d}", f"202606{day:02d}T{run}.000Z-aaaaaa"),
                    encode_jsonl(list(events)))

    for day in range(1, 13):
        put(day, "080000", dated_event(100 + day, f"2026-06-{day:02d}"))
    put(1, "090000", dated_event(7, "2026-06-01"))
    put(10, "090000", dated_event(7, "2026-06-10"))
    for update in updates:
        assert run_export(storage.root, *update)[0] == 0
    put(10, "100000", dated_event(7, "2026-06-10", "edited"))
    put(1, "100000", dated_event(200, "2026-06-01"))
    for update in updates:
        code, err = run_export(storage.root, *update)
        assert (code, " 2 of 12 days changed" in err) == (0, True), err
    assert sqlite3.connect(database).execute("SELECT local_date, summary FROM versions WHERE id = 7 "
                                             "ORDER BY local_date, summary").fetchall() == [
        ("2026-06-01", "x"), ("2026-06-10", "edited"), ("2026-06-10", "x")]
    assert dump(database) == whole_export(run_export, storage.root, tmp_path / "whole.db")
    rows = parquet_rows(months)
    assert [(row["id"], row["local_date"], row["summary"]) for row in rows if row["id"] == 7] == [
        (7, date(2026, 6, 1), "x"), (7, date(2026, 6, 10), "edited")]
    assert rows == whole_parquet(run_export, storage.root, tmp_path / "whole.parquet")


def test_an_sqlite_update_with_a_filter_reads_the_days_of_the_events_it_left_out(tmp_path, run_export):
    """With --type brand: event 7 (Stöld on 16 and 19 May, left out) gets a version of type Brand dated
    25 May: its row is made of all three versions. Event 8, Brand on 1 May and Stöld on 20 May, too far
    apart to merge, is kept for its 1 May version alone; a new event on 1 May has that day read again, and
    20 May with it. The database keeps the days of the events it left out (_export_left_out) to find them,
    as it finds the others' in the versions table."""
    storage, database = LocalStorage(tmp_path / "data"), tmp_path / "events.db"
    update = ["-o", str(database), "--update", "--type", "brand"]

    def put(day: str, run: str, *events: dict) -> None:
        storage.put(run_object_name(day, f"{run}.000Z-aaaaaa"), encode_jsonl(list(events)))

    def stold(event_id: int, day: str) -> dict:
        return {**dated_event(event_id, day), "type": "Stöld"}

    put("2026-05-01", "20260501T090000", dated_event(8, "2026-05-01"), dated_event(1, "2026-05-01"))
    put("2026-05-16", "20260516T090000", stold(7, "2026-05-16"))
    put("2026-05-19", "20260519T090000", stold(7, "2026-05-19"))
    put("2026-05-20", "20260520T090000", stold(8, "2026-05-20"))
    assert run_export(storage.root, *update)[0] == 0
    left_out = sqlite3.connect(database).execute('SELECT * FROM "_export_left_out" ORDER BY 1, 2').fetchall()
    assert left_out == [(7, "2026-05-16"), (7, "2026-05-19"), (8, "2026-05-20")]
    put("2026-05-25", "20260525T090000", dated_event(7, "2026-05-25", "brand now"))
    put("2026-05-01", "20260526T090000", dated_event(2, "2026-05-01"))
    code, err = run_export(storage.root, *update)
    assert code == 0, err
    assert "updated: 2 of 5 days changed, 5 read; 2 events added, 0 changed, 0 removed; 4 events in all" in err, err
    events = sqlite3.connect(database).execute("SELECT id, summary, versions FROM events ORDER BY id").fetchall()
    assert events == [(1, "x", 1), (2, "x", 1), (7, "brand now", 3), (8, "x", 1)]
    assert dump(database) == whole_export(run_export, storage.root, tmp_path / "whole.db", "--type", "brand")


def test_an_update_killed_between_two_monthly_files_is_finished_by_the_next(tmp_path, run_export):
    """Event 7, dated 30 May, gets a version dated 1 June (an edit of its time): its row leaves May's file for
    June's. Killed (SIGKILL) after May's file is written, before June's: the next update reads again every
    day the killed one read, so event 7's row is made of both versions, as a whole export makes it (it was made
    of the 1 June version alone: 30 May was found by event 7's row in May, which the killed update had taken out)."""
    storage, months = LocalStorage(tmp_path / "data"), tmp_path / "months"
    for day in ("2026-05-20", "2026-05-30", "2026-06-01", "2026-06-20"):
        storage.put(run_object_name(day, f"{day.replace('-', '')}T080000.000Z-aaaaaa"),
                    encode_jsonl([dated_event(int(day[-2:]), day)]))
    storage.put(run_object_name("2026-05-30", "20260530T090000.000Z-aaaaaa"), encode_jsonl([dated_event(7, "2026-05-30")]))
    update = ["-o", str(months), "--format", "parquet", "--update"]
    assert run_export(storage.root, *update)[0] == 0
    storage.put(run_object_name("2026-06-01", "20260602T090000.000Z-aaaaaa"),
                encode_jsonl([dated_event(7, "2026-06-01", "moved")]))
    killed = Collector(tmp_path, "https://polisen.se/api/events").run(
        "--data-dir", str(storage.root), *update, script=KILL_SCRIPT, env={**POLISEN, "KILL_AFTER": "export_months._write_month"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert 7 not in {row["id"] for row in parquet_rows(months)}, "May's file written without it, June's not yet"
    code, err = run_export(storage.root, *update)
    assert code == 0, err
    rows = parquet_rows(months)
    assert [(row["local_date"], row["summary"], row["versions"]) for row in rows if row["id"] == 7] == [
        (date(2026, 6, 1), "moved", 2)]
    assert rows == whole_parquet(run_export, storage.root, tmp_path / "whole.parquet")


def test_an_id_split_in_two_rows_keeps_the_days_of_the_row_not_made_again(tmp_path, run_export):
    """Event 7's versions of 1 and 3 May are one row. A version dated 20 June is a row of its own, made by an
    update that reads May 1 and 3 too (event 7's days) without making their row again; an edit on 3 May later
    must still read 1 May (the days of the May row were forgotten: a row of two versions, not three)."""
    storage, months = LocalStorage(tmp_path / "data"), tmp_path / "months"
    update = ["-o", str(months), "--format", "parquet", "--update"]

    def put(day: str, run: str, *events: dict) -> None:
        storage.put(run_object_name(day, f"{run}.000Z-aaaaaa"), encode_jsonl(list(events)))

    put("2026-05-01", "20260501T090000", dated_event(7, "2026-05-01"), dated_event(1, "2026-05-01"))
    put("2026-05-03", "20260503T090000", dated_event(7, "2026-05-03"), dated_event(3, "2026-05-03"))
    assert run_export(storage.root, *update)[0] == 0
    put("2026-06-20", "20260620T090000", dated_event(7, "2026-06-20"))
    assert run_export(storage.root, *update)[0] == 0
    assert json.loads((months / "_export_state.json").read_text())["spread"] == {"7": ["2026-05-01", "2026-05-03"]}
    put("2026-05-03", "20260621T090000", dated_event(7, "2026-05-03", "edited"))
    assert run_export(storage.root, *update)[0] == 0
    rows = parquet_rows(months)
    assert [(row["local_date"], row["summary"], row["versions"]) for row in rows if row["id"] == 7] == [
        (date(2026, 5, 3), "edited", 3), (date(2026, 6, 20), "x", 1)]
    assert rows == whole_parquet(run_export, storage.root, tmp_path / "whole.parquet")


def test_an_id_in_two_rows_has_each_rows_own_withdrawal(tmp_path, run_export):
    """Event 7's versions are dated 1 and 20 May, too far apart to merge: two rows. Its 1 May version was
    withdrawn: that row says so, the 20 May row does not (it took every record of the id read before it),
    in a whole export and after an update that reads 20 May alone."""
    from datetime import UTC, datetime

    storage, months = LocalStorage(tmp_path / "data"), tmp_path / "months"
    for day in ("2026-05-01", "2026-05-20"):
        storage.put(run_object_name(day, f"{day.replace('-', '')}T090000.000Z-aaaaaa"),
                    encode_jsonl([dated_event(7, day), dated_event(int(day[-2:]), day)]))
    withdrawn = datetime(2026, 5, 2, 8, tzinfo=UTC)
    write_records(storage, "2026-05-01", [Record(7, WITHDRAWN, withdrawn, "2026-05-01")], "20260502T080000.000Z-aaaaaa")
    update = ["-o", str(months), "--format", "parquet", "--update"]
    assert run_export(storage.root, *update)[0] == 0
    storage.put(run_object_name("2026-05-20", "20260521T090000.000Z-aaaaaa"), encode_jsonl([dated_event(21, "2026-05-20")]))
    code, err = run_export(storage.root, *update)
    assert (code, " 1 of 2 days changed" in err) == (0, True), err
    rows = parquet_rows(months)
    assert [(row["local_date"], row["withdrawn_at"]) for row in rows if row["id"] == 7] == [
        (date(2026, 5, 1), withdrawn), (date(2026, 5, 20), None)]
    assert rows == whole_parquet(run_export, storage.root, tmp_path / "whole.parquet")


def test_a_day_compacted_again_between_two_updates_is_read_again(small_archive, tmp_path, run_export):
    """An edit of an old event and a late new one, merged into the compacted day before the next update:
    the day's compacted object gets a new name, so the update reads the day (it used to keep the old rows)."""
    storage, database, months = LocalStorage(small_archive), tmp_path / "events.db", tmp_path / "months"
    updates = (["-o", str(database), "--update"], ["-o", str(months), "--format", "parquet", "--update"])
    assert compact(storage, date(2026, 6, 10), 2).days_compacted == 1
    for update in updates:
        assert run_export(small_archive, *update)[0] == 0
    storage.put("events/2026/05/20/events-20260521T090000.000Z-bbbbbb.jsonl",
                encode_jsonl([{**event_line(1), "summary": "edited"}, event_line(3)]))
    assert compact(storage, date(2026, 6, 10), 2).days_compacted == 1
    for update in updates:
        code, err = run_export(small_archive, *update)
        assert (code, " 1 of 1 days changed" in err) == (0, True), err
    events = sqlite3.connect(database).execute("SELECT id, summary FROM events ORDER BY id").fetchall()
    assert events == [(1, "edited"), (2, "x"), (3, "x")]
    assert dump(database) == whole_export(run_export, small_archive, tmp_path / "whole.db")
    assert parquet_rows(months) == whole_parquet(run_export, small_archive, tmp_path / "whole.parquet")


def grow_at_random(storage: LocalStorage, rng, step: int, events: dict[int, tuple[date, str]]) -> None:
    """One half day of a made-up feed: new events dated today or a day or two back; edits that keep an event's
    date, move it a few days, or (rarely) more than a week, or change its type; now and then a withdrawal or
    a republication, a compaction, and a day compacted again later (today's, compacted at once)."""
    now = datetime(2026, 5, 20, 8, tzinfo=UTC) + timedelta(hours=12 * step)
    run = now.strftime("%Y%m%dT%H%M%S")
    written: dict[date, dict[int, dict]] = {}
    for _ in range(rng.randint(1, 3)):
        event_id = 1000 + len(events)
        events[event_id] = (now.date() - timedelta(days=rng.randint(0, 2)), rng.choice(["Brand", "Stöld"]))
        written.setdefault(events[event_id][0], {})[event_id] = {}
    for event_id in rng.sample(sorted(events), min(len(events), rng.randint(0, 3))):
        day, kind = events[event_id]
        day += timedelta(days=rng.choice([0, 0, 0, -3, -1, 1, 2, 3, -9, 8, 12]))
        events[event_id] = (day, rng.choice(["Brand", "Stöld"]) if rng.random() < 0.3 else kind)
        written.setdefault(day, {})[event_id] = {"summary": f"edited {step}"}
    for day, edits in written.items():
        storage.put(run_object_name(day.isoformat(), f"{run}.000Z-aaaaaa"), encode_jsonl(
            [{**dated_event(event_id, day.isoformat()), "type": events[event_id][1], **edit}
             for event_id, edit in edits.items()]))
    if rng.random() < 0.25:
        event_id = rng.choice(sorted(events))
        status = rng.choice([WITHDRAWN, REPUBLISHED])
        write_records(storage, events[event_id][0].isoformat(),
                      [Record(event_id, status, now + timedelta(seconds=1), events[event_id][0].isoformat())], run)
    if rng.random() < 0.2:
        compact(storage, now.date() + timedelta(days=1), rng.choice([0, 2]))


@pytest.mark.slow
def test_random_chains_of_updates_give_the_rows_of_whole_exports(tmp_path, run_export, seed=1):
    """An archive grown at random, half a day at a time (grow_at_random), updated after every step in SQLite
    and in monthly Parquet, with and without --type: after every step each update holds the rows a whole
    export of the same archive makes (what found the review's cases, and more, before they were fixed)."""
    import random

    rng, storage, events = random.Random(seed), LocalStorage(tmp_path / "data"), {}
    variants = [(kind, only) for kind in ("sqlite", "parquet") for only in ([], ["--type", "brand"])]
    for step in range(30):
        grow_at_random(storage, rng, step, events)
        for kind, only in variants:
            name = f"{kind}{len(only)}"
            output, whole = tmp_path / f"{name}{'.db' if kind == 'sqlite' else ''}", tmp_path / f"whole-{name}"
            code, err = run_export(storage.root, "-o", str(output), "--format", kind, "--update", *only)
            assert code == 0, err
            if kind == "sqlite":
                whole.unlink(missing_ok=True)
                assert dump(output) == whole_export(run_export, storage.root, whole, "--format", kind, *only), (
                    step, name, err)
            else:
                assert parquet_rows(output) == whole_parquet(run_export, storage.root, whole, "--format", kind,
                                                             *only), (step, name, err)


@pytest.mark.slow
def test_a_read_only_datasette_answers_through_each_update(half_grown, run_export, monkeypatch):
    """The site's way (docs/site.md): Datasette may not write the database's folder (a read-only bind mount,
    as polisen-site.service's ProtectSystem=strict makes it) and opens the database read-only, not
    immutable, while --update changes it in place. Every request answers, with the rows of before or
    after: one that comes while the update writes the database waits for its commit. The same process
    then answers with the new rows, and nothing is left beside the database."""
    import json
    import threading
    import time
    from urllib.request import urlopen

    from datasette_server import serving

    workspace, database, add_the_rest = half_grown
    assert [path.name for path in database.parent.iterdir() if path.name.startswith(database.name)] == [database.name]
    answers: list[tuple[float, int]] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def count(url: str) -> int:
        with urlopen(f"{url}/events/events.json?_size=0", timeout=30) as answer:
            return json.load(answer)["filtered_table_rows_count"]

    def keep_asking(url: str) -> None:
        while not done.is_set():
            started = time.monotonic()
            try:
                found = count(url)
            except BaseException as error:  # an HTTP error: the site failed a visitor
                failures.append(error)
                return
            answers.append((time.monotonic() - started, found))

    replace_rows = export_update._replace_rows

    def replace_then_linger(*args):
        changed = replace_rows(*args)
        time.sleep(1.5)  # the changes are in the database file, uncommitted: readers wait for the commit
        return changed

    # A page cache too small for the update's changes: it writes them to the database before it commits.
    monkeypatch.setattr(export_update, "UPDATE_CACHE_KIB", 64)
    monkeypatch.setattr(export_update, "_replace_rows", replace_then_linger)
    with serving(database.parent, [database.name], read_only_folder=database.parent) as (url, process):
        mounts = Path(f"/proc/{process.pid}/mountinfo").read_text().splitlines()
        assert any(line.split()[4] == str(database.parent) and line.split()[5].startswith("ro") for line in mounts)
        before = count(url)
        asking = threading.Thread(target=keep_asking, args=(url,))
        asking.start()
        add_the_rest()
        try:
            code, err = run_export(workspace.data_dir, "-o", str(database), "--update")
            time.sleep(0.5)
        finally:
            done.set()
            asking.join()
        assert code == 0, err
        assert (failures, before, count(url), process.poll()) == ([], 1447, 1722, None)
    counts = [found for _, found in answers]
    assert set(counts) == {1447, 1722} and counts == sorted(counts), "before, then after"
    assert max(waited for waited, _ in answers) > 0.5, "a request came while the update wrote, and waited"
    assert [path.name for path in database.parent.iterdir() if path.name.startswith(database.name)] == [database.name]


# -- the export's own bookkeeping read back (issue 22: the class of the poisoned records) ------------


def event_line(event_id: int) -> dict:
    return {"id": event_id, "datetime": "2026-05-20 9:38:09 +02:00", "name": f"20 maj 09.38, Brand, Lund {event_id}",
            "summary": "x", "url": f"/aktuellt/handelser/2026/maj/20/{event_id}", "type": "Brand",
            "location": {"name": "Lund", "gps": "55.70,13.19"}}


def add_run(data_dir: Path, run: str, *ids: int) -> None:
    LocalStorage(data_dir).put(f"events/2026/05/20/events-20260520T{run}.000Z-aaaaaa.jsonl",
                               "".join(json.dumps(event_line(n)) + "\n" for n in ids).encode())


@pytest.fixture
def small_archive(tmp_path) -> Path:
    """An archive of one day, two events: an update of it takes milliseconds."""
    add_run(tmp_path / "data", "080000", 1, 2)
    return tmp_path / "data"


def test_a_database_of_other_tables_is_not_rebuilt_over_them(small_archive, tmp_path, run_export, monkeypatch):
    """--update on a database that is not an export (no bookkeeping) rebuilt it in place, dropping the user's
    tables: refused, exit 2, the tables kept. An export made for another site (POLISEN_SITE_URL) is rebuilt,
    and the line says which setting changed."""
    # a table of the user's, and one of the export's name made by the user (as sqlite-utils would)
    for name, columns in (("mydata", "(x, my_notes)"), ("events", "(id INTEGER PRIMARY KEY, my_notes TEXT)")):
        database = tmp_path / f"mine-{name}.db"
        with sqlite3.connect(database) as connection:
            connection.execute(f"CREATE TABLE {name} {columns}")
            connection.execute(f"INSERT INTO {name} (my_notes) VALUES ('mine')")
        connection.close()
        code, err = run_export(small_archive, "-o", str(database), "--update")
        assert (code, err) == (2, f"error: {database} holds tables that are not the export's ({name}): not rebuilt in "
                                  "place (the database has no bookkeeping of an export); export to another file\n")
        assert sqlite3.connect(database).execute(f"SELECT my_notes FROM {name}").fetchall() == [("mine",)]

    assert run_export(small_archive, "-o", str(tmp_path / "events.db"), "--update")[0] == 0
    monkeypatch.setenv("POLISEN_SITE_URL", "https://example.org")
    code, err = run_export(small_archive, "-o", str(tmp_path / "events.db"), "--update")
    assert (code, err.splitlines()[0]) == (0, f"{tmp_path / 'events.db'} rebuilt in place: its options (the pages' "
                                              "site, POLISEN_SITE_URL or POLISEN_API_URL) changed")


@pytest.mark.parametrize(("poison", "reason"), [
    ('UPDATE "_export_days" SET "day" = \'garbage\'', "its bookkeeping is unreadable: day 'garbage' is not a date"),
    ('UPDATE "_export_days" SET "signature" = \'x\' || char(10) || \'y\'',
     "its bookkeeping is unreadable: the signature of 2026-05-20 is"),
    ('UPDATE "_export_state" SET "value" = \'' + "[" * 100_000 + '\' WHERE "key" = \'made_from\'',
     "its bookkeeping is unreadable"),
    ('UPDATE "versions" SET "local_date" = \'garbage\'', "a version's local_date is not the export's"),
])
def test_poisoned_bookkeeping_of_an_sqlite_export_is_rebuilt_in_place(small_archive, tmp_path, run_export, poison,
                                                                      reason):
    """Before issue 22 the tools died on a day that is not one (ValueError), a bookkeeping nested without end (RecursionError)."""
    database = tmp_path / "events.db"
    assert run_export(small_archive, "-o", str(database), "--update")[0] == 0
    with sqlite3.connect(database) as connection:
        connection.execute(poison)
    connection.close()
    add_run(small_archive, "083000", 3)  # a day that changed: its events are looked up by day
    code, err = run_export(small_archive, "-o", str(database), "--update")
    assert (code, err.splitlines()[0].startswith(f"{database} rebuilt in place: {reason}")) == (0, True), err
    assert dump(database) == whole_export(run_export, small_archive, tmp_path / "whole.db")


@pytest.mark.parametrize("state", ["a day that is not one", "no months", "[" * 100_000, "fifo"])
def test_a_poisoned_bookkeeping_of_a_parquet_folder_is_rebuilt(small_archive, tmp_path, run_export, state):
    """Before issue 22 the tools died on the day that is not one and on the nesting, and hung on the FIFO;
    a bookkeeping without its months was a KeyError traceback."""
    folder = tmp_path / "parquet"
    assert run_export(small_archive, "-o", str(folder), "--format", "parquet", "--update")[0] == 0
    rows = parquet_rows(folder)
    path = folder / "_export_state.json"
    if state == "a day that is not one":
        state = json.dumps({**json.loads(path.read_text()), "days": {"garbage": "x"}})
    elif state == "no months":
        state = json.dumps({key: value for key, value in json.loads(path.read_text()).items() if key != "months"})
    path.unlink()
    os.mkfifo(path) if state == "fifo" else path.write_text(state)
    code, err = run_export(small_archive, "-o", str(folder), "--format", "parquet", "--update")
    assert (code, "rebuilt (its bookkeeping is unreadable)" in err) == (0, True), err
    assert parquet_rows(folder) == rows and (folder / "_export_state.json").is_file()


def test_a_folder_of_an_older_version_is_made_again(small_archive, tmp_path, run_export):
    """Its state held a digest of each month's rows (format 1), its files the rows in the order they were read."""
    folder = tmp_path / "parquet"
    update = ["-o", str(folder), "--format", "parquet", "--update"]
    assert run_export(small_archive, *update)[0] == 0
    path = folder / "_export_state.json"
    state = json.loads(path.read_text())
    path.write_text(json.dumps({key: value for key, value in state.items() if key != "format"}
                               | {"months": {"2026-05": "0123456789abcdef0123456789abcdef"}}))
    code, err = run_export(small_archive, *update)
    assert (code, err) == (0, f"{folder} rebuilt (its bookkeeping is of an older version): 1 of 1 monthly files "
                              "written (2 rows)\n")
    assert json.loads(path.read_text()) == state


def test_a_parquet_file_of_the_users_in_the_folder_is_neither_owned_nor_deleted(small_archive, tmp_path, run_export):
    """Only events-YYYY-MM.parquet are the update's: an events-all.parquet (a single-file export put there)
    passed for one, and a rebuild deleted it; read_parquet('DIR/*.parquet') would read its rows twice. Put
    there after the folder was made, it is refused too (it was taken in: every row read twice), as any other
    file of the user's (pyarrow fails on a folder with a notes.txt)."""
    folder = tmp_path / "parquet"
    folder.mkdir()
    (folder / "events-all.parquet").write_bytes(b"the user's")
    code, err = run_export(small_archive, "-o", str(folder), "--format", "parquet", "--update")
    assert (code, err) == (2, f"error: {folder} holds files of its own (events-all.parquet): export to a new or "
                              "empty folder\n")
    assert sorted(path.name for path in folder.iterdir()) == [".export.lock", "events-all.parquet"]
    assert (folder / "events-all.parquet").read_bytes() == b"the user's"

    (folder / "events-all.parquet").rename(tmp_path / "events-all.parquet")
    assert run_export(small_archive, "-o", str(folder), "--format", "parquet", "--update")[0] == 0
    (folder / "notes.txt").write_text("mine")
    code, err = run_export(small_archive, "-o", str(folder), "--format", "parquet", "--update")
    assert (code, err) == (2, f"error: {folder} holds files of its own (notes.txt): move them out: the folder is the "
                              "export's\n")
    assert (folder / "notes.txt").read_text() == "mine"


def test_a_monthly_file_the_folder_does_not_list_has_it_made_again(small_archive, tmp_path, run_export):
    """A copy under a monthly name (a backup put back, a file of another folder) was neither refused nor removed,
    and `*.parquet` read its rows twice: the folder is made again without it. Through a link to a folder
    not made yet, the update makes that folder (it failed: File exists)."""
    folder = tmp_path / "parquet"
    (tmp_path / "link").symlink_to(folder)
    update = ["-o", str(tmp_path / "link"), "--format", "parquet", "--update"]
    assert run_export(small_archive, *update)[0] == 0
    rows = parquet_rows(folder)
    (folder / "events-2025-05.parquet").write_bytes((folder / "events-2026-05.parquet").read_bytes())
    code, err = run_export(small_archive, *update)
    assert (code, err) == (0, f"{tmp_path / 'link'} rebuilt (events-2025-05.parquet is not one of its files): 1 of 1 "
                              "monthly files written (2 rows)\n")
    assert (sorted(path.name for path in folder.glob("*.parquet")), parquet_rows(folder)) == (
        ["events-2026-05.parquet"], rows)


def test_a_broken_or_missing_monthly_file(small_archive, tmp_path, run_export):
    """A monthly file removed by hand, or overwritten by one that is not Parquet (the folder's own names), has the
    folder made again (the junk was left in place when its month did not change, and the folder could not be
    read); one that looks like Parquet but is not what the export writes is refused with the way out."""
    folder = tmp_path / "parquet"
    update = ["-o", str(folder), "--format", "parquet", "--update"]
    assert run_export(small_archive, *update)[0] == 0
    rows, month = parquet_rows(folder), folder / "events-2026-05.parquet"
    month.write_bytes(b"not parquet")
    code, err = run_export(small_archive, *update)
    assert (code, err) == (0, f"{folder} rebuilt (events-2026-05.parquet is not a Parquet file): 1 of 1 monthly "
                              "files written (2 rows)\n")
    assert parquet_rows(folder) == rows
    month.write_bytes(b"PAR1 but no Parquet inside PAR1")
    add_run(small_archive, "083000", 3)
    code, err = run_export(small_archive, *update)
    assert (code, err.startswith(f"error: {month} is not a monthly file as the export writes them")) == (2, True), err
    assert "remove it, and the next update makes the folder again" in err
    month.unlink()
    code, err = run_export(small_archive, *update)
    assert (code, err) == (0, f"{folder} rebuilt (events-2026-05.parquet is missing): 1 of 1 monthly files written "
                              "(3 rows)\n")
    assert [row["id"] for row in parquet_rows(folder)] == [*(row["id"] for row in rows), 3]


@pytest.mark.parametrize("target", ["database", "lock"])
def test_a_fifo_as_the_sqlite_export_or_the_parquet_lock_is_refused_not_a_hang(small_archive, tmp_path, run_export,
                                                                              target):
    if target == "database":
        os.mkfifo(tmp_path / "events.db")
        args, refused = ["-o", str(tmp_path / "events.db")], f"{tmp_path / 'events.db'} is a FIFO, not a regular file"
    else:
        (tmp_path / "parquet").mkdir()
        os.mkfifo(tmp_path / "parquet" / ".export.lock")
        args = ["-o", str(tmp_path / "parquet"), "--format", "parquet"]
        refused = f"{tmp_path / 'parquet' / '.export.lock'} is a FIFO, not a regular file"
    code, err = run_export(small_archive, *args, "--update")
    assert (code, err.startswith(f"error: {refused}")) == (2, True), err


def test_the_same_archive_named_by_another_path_is_updated_not_rebuilt(small_archive, tmp_path, run_export,
                                                                      monkeypatch):
    """The bookkeeping names the folder by its real path: named otherwise (relative, through a symbolic
    link), every update rebuilt every row."""
    database, folder = tmp_path / "events.db", tmp_path / "parquet"
    assert run_export(small_archive, "-o", str(database), "--update")[0] == 0
    assert run_export(small_archive, "-o", str(folder), "--format", "parquet", "--update")[0] == 0
    (tmp_path / "link").symlink_to(small_archive)
    monkeypatch.chdir(tmp_path)
    for other in (Path("data"), tmp_path / "link"):
        code, err = run_export(other, "-o", str(database), "--update")
        assert (code, err) == (0, f"{database} updated: 0 of 1 days changed, 0 read; 0 events added, 0 changed, "
                                  "0 removed; 2 events in all\n")
    code, err = run_export(tmp_path / "link", "-o", str(folder), "--format", "parquet", "--update")
    assert (code, err) == (0, f"{folder} updated: 0 of 1 days changed, 0 months read; 0 of 1 monthly files written "
                              "(0 rows)\n")
