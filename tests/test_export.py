"""export_events.py and compaction, over an archive the real collector built from the 114 snapshots."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import sqlite3
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from archive_truth import archived_versions, versions_in_snapshots
from conftest import REPO, Collector, clear_settings, no_bad_line, words
from fake_polisen import FakePolisenServer

from polisen_collector.archive.events import content_hash, encode_jsonl, parse_event_datetime
from polisen_collector.archive.layout import run_object_name
from polisen_collector.cli import export_events
from polisen_collector.export import (
    COLUMNS,
    FTS_COLUMNS,
    LIST_COLUMNS,
    LIST_VIEW,
    SQLITE_INDEXES,
    ExportOptions,
    ExportSummary,
    iter_rows,
    latest_of_version_rows,
    latest_row,
    make_row,
    version_rows,
    write_jsonl,
)
from polisen_collector.geography import place_event
from polisen_collector.pages.columns import PAGE_COLUMNS
from polisen_collector.run.lock import RunLock
from polisen_collector.storage.local import LocalStorage

GEOGRAPHY_COLUMNS = ["location_level", "municipality_code", "municipality_name", "county_code", "county_name"]

TIME_COLUMNS = ("datetime", "local_date", "first_collected", "last_collected")

KILL_SCRIPT = "tests/crash_run.py"


def replay(server: FakePolisenServer, collector: Collector, indexes) -> None:
    for index in indexes:
        server.serve(index)
        result = collector.run()
        assert result.returncode in (0, 1), result.log[-500:]


@pytest.fixture(scope="module")
def archive(replayed_archive) -> Collector:
    """The collector's archive after a full replay; tests copy it before changing it."""
    assert {result.returncode for result in replayed_archive.results} <= {0, 1}
    return replayed_archive.collector


@pytest.fixture
def workspace(tmp_path, archive) -> Collector:
    """A private copy of the replayed archive."""
    return archive.copy_archive(tmp_path)


PAGES_OF_POLISEN = {"POLISEN_API_URL": "https://polisen.se/api/events", "API_RATE_LIMIT": "on"}


def export(collector: Collector, *args: str):
    """The export as its own process; page_url then starts with https://polisen.se."""
    return collector.run(*args, script="export_events.py", env=PAGES_OF_POLISEN)


def export_rows(collector: Collector, *args: str) -> list[dict]:
    result = export(collector, *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def export_in_process(data_dir: Path, all_versions: bool = False) -> str:
    out = io.StringIO()
    write_jsonl(iter_rows(LocalStorage(data_dir), ExportOptions(all_versions=all_versions), ExportSummary(),
                          on_bad=no_bad_line), out)
    return out.getvalue()


def expected_row(content: str, versions: int) -> dict:
    event = json.loads(content)
    latitude, longitude = (float(x) for x in event["location"]["gps"].split(","))
    when = parse_event_datetime(event["datetime"])
    return {
        "id": event["id"], "datetime": when.isoformat(), "local_date": event["datetime"][:10],
        "name": event["name"], "summary": event["summary"], "url": event["url"],
        "page_url": "https://polisen.se" + event["url"], "type": event["type"],
        "location_name": event["location"]["name"], "latitude": latitude, "longitude": longitude,
        "versions": versions, "withdrawn_at": None, "withdrawn_local_date": None, **no_page_and_place(event),
    }


def no_page_and_place(event: dict) -> dict:
    """The page columns of an archive without pages, and the event's place (tests/test_pages.py has both)."""
    place = place_event(event["location"]["name"], event["name"])
    return {
        **dict.fromkeys(PAGE_COLUMNS), "page_url": "https://polisen.se" + event["url"],
        "location_level": place.location_level, "municipality_code": place.municipality_code,
        "municipality_name": place.municipality_name, "county_code": place.county_code,
        "county_name": place.county_name,
    }


def without_collected(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in ("first_collected", "last_collected")}


def test_export_has_one_row_per_id_with_the_latest_version(archive, snapshot_bodies):
    result = export(archive)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    truth = versions_in_snapshots(snapshot_bodies)

    assert sorted(row["id"] for row in rows) == sorted(truth)
    assert [without_collected(row) for row in sorted(rows, key=lambda r: r["id"])] == [
        expected_row(truth[event_id][-1], len(truth[event_id])) for event_id in sorted(truth)
    ]
    for row in rows:
        first, last = (datetime.fromisoformat(row[key]) for key in ("first_collected", "last_collected"))
        assert (first < last) == (row["versions"] > 1), row
    assert f"exported {len(truth)} rows from 28 days; 13 older versions dropped" in result.stderr


def test_all_versions_keeps_every_version_in_collection_order(archive, snapshot_bodies):
    rows = export_rows(archive, "--all-versions")
    truth = versions_in_snapshots(snapshot_bodies)

    by_id: dict[int, list[dict]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    assert {event_id: [without_collected(r) for r in versions] for event_id, versions in by_id.items()} == {
        event_id: [expected_row(content, len(contents)) for content in contents]
        for event_id, contents in truth.items()
    }
    edited = [versions for versions in by_id.values() if len(versions) > 1]
    assert len(edited) == 13
    for old, new in edited:
        assert old["last_collected"] < new["first_collected"]


def test_csv_and_parquet_read_back_with_types(archive, tmp_path):
    reference = export_rows(archive)
    for name in ("events.csv", "events.parquet"):
        result = export(archive, "-o", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""

    codes_as_text = "types = {'municipality_code': 'VARCHAR', 'county_code': 'VARCHAR'}"
    for source in (f"read_csv('{tmp_path / 'events.csv'}', {codes_as_text})", f"'{tmp_path / 'events.parquet'}'"):
        relation = duckdb.sql(f"SELECT * FROM {source} ORDER BY id, last_collected")
        types = dict(zip(relation.columns, map(str, relation.types), strict=True))
        # the withdrawal columns are empty throughout here (a CSV reader sees text): test_withdrawals.py reads them
        # with values
        withdrawal = ["withdrawn_at", "withdrawn_local_date"]
        assert {k: v for k, v in types.items() if k not in [*PAGE_COLUMNS, *GEOGRAPHY_COLUMNS, *withdrawal]} == {
            "id": "BIGINT", "datetime": "TIMESTAMP WITH TIME ZONE", "local_date": "DATE", "name": "VARCHAR", "summary": "VARCHAR",
            "url": "VARCHAR", "page_url": "VARCHAR", "type": "VARCHAR", "location_name": "VARCHAR", "latitude": "DOUBLE",
            "longitude": "DOUBLE", "first_collected": "TIMESTAMP WITH TIME ZONE",
            "last_collected": "TIMESTAMP WITH TIME ZONE", "versions": "BIGINT",
        }, source
        read_back = [dict(zip(relation.columns, values, strict=True)) for values in relation.fetchall()]
        expected = sorted(reference, key=lambda r: (r["id"], r["last_collected"]))
        assert len(read_back) == len(expected)
        for got, want in zip(read_back, expected, strict=True):
            for key in ("datetime", "first_collected", "last_collected"):
                assert got[key] == datetime.fromisoformat(want[key]), (key, got, want)
            assert got["local_date"] == date.fromisoformat(want["local_date"])
            assert {k: v for k, v in got.items() if k not in TIME_COLUMNS} == \
                {k: v for k, v in want.items() if k not in TIME_COLUMNS}

    schema = pq.read_schema(tmp_path / "events.parquet")
    assert str(schema.field("datetime").type) == "timestamp[ms, tz=Europe/Stockholm]"
    assert str(schema.field("local_date").type) == "date32[day]"
    assert str(schema.field("id").type) == "int64"
    assert str(schema.field("latitude").type) == "double"
    assert str(schema.field("page_published").type) == "timestamp[ms, tz=Europe/Stockholm]"
    assert str(schema.field("page_fetched").type) == "timestamp[ms, tz=UTC]"
    assert {str(schema.field(name).type) for name in GEOGRAPHY_COLUMNS} == {"string"}


def test_filters_by_date_type_and_location(archive):
    everything = export_rows(archive)

    def local_day(row: dict) -> str:
        return row["datetime"][:10]

    assert export_rows(archive, "--from", "2026-05-25", "--to", "2026-05-27") == [
        row for row in everything if "2026-05-25" <= local_day(row) <= "2026-05-27"
    ]
    chosen = export_rows(archive, "--type", "brand;STÖLD", "--location", "Stockholms län", "--location", "Skåne län")
    assert chosen == [
        row for row in everything
        if row["type"] in ("Brand", "Stöld") and row["location_name"] in ("Stockholms län", "Skåne län")
    ]
    assert len(chosen) > 10


def test_bad_lines_are_reported_with_object_and_line_and_skipped(workspace):
    before = export_rows(workspace)
    objects = sorted((workspace.data_dir / "events" / "2026" / "05" / "25").glob("events-*.jsonl"))
    with objects[0].open("a", encoding="utf-8") as handle:
        handle.write('{"id": 1, "datetime": "2026-05-25 1\n[1, 2]\n{"id": "x", "datetime": "2026-05-25 10:00:00 +02:00"}\n')
    lines = objects[0].read_text().count("\n")
    name = objects[0].relative_to(workspace.data_dir).as_posix()

    result = export(workspace)
    assert result.returncode == 0
    assert [json.loads(line) for line in result.stdout.splitlines()] == before
    assert f"{name} line {lines - 2}: invalid JSON" in result.stderr
    assert f"{name} line {lines - 1}: not an object but list" in result.stderr
    assert f"{name} line {lines}: invalid event: id 'x' is not a positive integer" in result.stderr
    assert "3 bad lines skipped" in result.stderr


def test_parquet_needs_a_file_and_pyarrow(workspace, tmp_path):
    result = export(workspace, "--format", "parquet")
    assert (result.returncode, result.stderr.strip()) == (2, "error: Parquet output needs -o FILE")

    blocker = tmp_path / "no-pyarrow" / "pyarrow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('pyarrow is not installed')\n")
    result = workspace.run("-o", str(tmp_path / "out.parquet"), script="export_events.py",
                           env={"PYTHONPATH": str(blocker.parent)}, process=True)  # an interpreter without pyarrow
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: Parquet output needs pyarrow, the optional extra 'parquet': "
                                     f"{sys.executable} -m pip install -c {REPO / 'requirements-lock.txt'} pyarrow")
    assert not (tmp_path / "out.parquet").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.fixture
def run_export(monkeypatch, capsys, tmp_path):
    """export_events.main in this process, with no settings from the environment but the API URL."""
    clear_settings(monkeypatch, POLISEN_API_URL="https://polisen.se/api/events")

    def run(data_dir: Path, *args: str) -> tuple[int, str, str]:
        code = export_events.main(["--env-file", os.devnull, "--data-dir", str(data_dir), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def sqlite_rows(path: Path, query: str, *params) -> list[dict]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(query, params)]


def test_sqlite_has_events_versions_and_a_full_text_index(archive, snapshot_bodies, run_export, tmp_path):
    truth = versions_in_snapshots(snapshot_bodies)
    reference = {row["id"]: row for row in map(json.loads, export_in_process(archive.data_dir).splitlines())}
    code, out, err = run_export(archive.data_dir, "-o", str(tmp_path / "events.db"))
    assert (code, out) == (0, "")
    versions_total = sum(map(len, truth.values()))
    assert err.splitlines()[-1] == (f"exported {len(truth)} events and {versions_total} versions from 28 days; "
                                    "0 identical copies dropped, 0 rows filtered out, 0 bad lines skipped")
    db = tmp_path / "events.db"

    events = sqlite_rows(db, "SELECT * FROM events ORDER BY id")
    assert events == [reference[event_id] for event_id in sorted(truth)]
    assert [without_collected(row) for row in events] == [
        expected_row(truth[event_id][-1], len(truth[event_id])) for event_id in sorted(truth)
    ]
    versions = sqlite_rows(db, "SELECT * FROM versions ORDER BY id, first_collected")
    assert [without_collected({k: v for k, v in row.items() if k != "content_hash"}) for row in versions] == [
        expected_row(content, len(truth[event_id])) for event_id in sorted(truth) for content in truth[event_id]
    ]
    assert [row["content_hash"] for row in versions] == [
        content_hash(json.loads(content)) for event_id in sorted(truth) for content in truth[event_id]
    ]
    assert sqlite_rows(db, "SELECT name, type FROM pragma_table_info('events')") == [
        {"name": name, "type": {"integer": "INTEGER", "real": "REAL"}.get(kind, "TEXT")} for name, kind in COLUMNS.items()
    ]
    assert sqlite_rows(db, "SELECT name, pk FROM pragma_table_info('events') WHERE pk") == [{"name": "id", "pk": 1}]

    # Full-text search over name and summary, as Datasette's ?_search= runs it.
    matched = sqlite_rows(db, "SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid", "trafikolycka")
    expected = [event_id for event_id in sorted(truth)
                if "trafikolycka" in words(f"{reference[event_id]['name']} {reference[event_id]['summary']}")]
    assert [row["rowid"] for row in matched] == expected
    assert len(expected) > 20
    # The shape Datasette detects (content="events") and sqlite-utils' triggers keep the index in step.
    fts_sql = sqlite_rows(db, "SELECT sql FROM sqlite_master WHERE name = 'events_fts'")[0]["sql"]
    assert 'USING FTS5' in fts_sql and 'content="events"' in fts_sql
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE events SET summary = 'Zebrakorsning blockerad' WHERE id = ?", (expected[0],))
    assert sqlite_rows(db, "SELECT rowid FROM events_fts WHERE events_fts MATCH 'zebrakorsning'") == [
        {"rowid": expected[0]}
    ]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    # The list view and the indexes a Datasette site sorts and facets by.
    assert sqlite_rows(db, f"SELECT * FROM {LIST_VIEW} ORDER BY id") == [
        {name: row[name] for name in LIST_COLUMNS} for row in sqlite_rows(db, "SELECT * FROM events ORDER BY id")
    ]
    for column in SQLITE_INDEXES:
        plan = sqlite_rows(db, f"EXPLAIN QUERY PLAN SELECT {column}, count(*) FROM events GROUP BY {column}")
        assert [row["detail"] for row in plan] == [f"SCAN events USING COVERING INDEX idx_events_{column}"]
    plan = sqlite_rows(db, f"EXPLAIN QUERY PLAN SELECT * FROM {LIST_VIEW} ORDER BY datetime DESC LIMIT 10")
    assert [row["detail"] for row in plan] == ["SCAN events USING INDEX idx_events_datetime"]


def write_objects(data_dir: Path, objects: dict[str, list[dict]]) -> None:
    for name, events in objects.items():
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_jsonl(events))


def event(event_id: int, when: str, **fields) -> dict:
    return {"id": event_id, "datetime": when, "name": f"{when[:10]}, Brand, Kävlinge", "summary": "Brand i skog.",
            "url": f"/aktuellt/handelser/{event_id}/", "type": "Brand",
            "location": {"name": "Kävlinge", "gps": "55.793637,13.113398"}, **fields}


def test_csv_cells_that_look_like_formulas_are_neutralised_unless_raw(tmp_path, run_export):
    hostile = event(7, "2026-05-20 10:00:00 +02:00", name="=HYPERLINK(\"http://x\")", summary="+46 70 123",
                    type="-1+2", location={"name": "@SUM(A1)", "gps": "-12.5,-45.25"}, url="\t/x")
    tame = event(8, "2026-05-20 11:00:00 +02:00", name="a=b, -ok", summary="\rcr")
    write_objects(tmp_path / "data", {run_object_name("2026-05-20", "20260520T090000.000Z-aaaaaa"): [hostile, tame]})

    code, _, err = run_export(tmp_path / "data", "-o", str(tmp_path / "safe.csv"))
    assert code == 0, err
    code, _, err = run_export(tmp_path / "data", "-o", str(tmp_path / "raw.csv"), "--csv-raw")
    assert code == 0, err

    def cells(name: str) -> list[dict]:
        with (tmp_path / name).open(newline="", encoding="utf-8") as handle:
            return [{k: row[k] for k in ("name", "summary", "url", "page_url", "type", "location_name", "latitude",
                                         "longitude")} for row in csv.DictReader(handle)]

    assert cells("safe.csv") == [
        {"name": "'=HYPERLINK(\"http://x\")", "summary": "'+46 70 123", "url": "'\t/x", "page_url": "",
         "type": "'-1+2", "location_name": "'@SUM(A1)", "latitude": "-12.5", "longitude": "-45.25"},
        {"name": "a=b, -ok", "summary": "'\rcr", "url": "/aktuellt/handelser/8/",
         "page_url": "https://polisen.se/aktuellt/handelser/8/", "type": "Brand", "location_name": "Kävlinge",
         "latitude": "55.793637", "longitude": "13.113398"},
    ]
    assert cells("raw.csv") == [
        {"name": "=HYPERLINK(\"http://x\")", "summary": "+46 70 123", "url": "\t/x", "page_url": "",
         "type": "-1+2", "location_name": "@SUM(A1)", "latitude": "-12.5", "longitude": "-45.25"},
        {"name": "a=b, -ok", "summary": "\rcr", "url": "/aktuellt/handelser/8/",
         "page_url": "https://polisen.se/aktuellt/handelser/8/", "type": "Brand", "location_name": "Kävlinge",
         "latitude": "55.793637", "longitude": "13.113398"},
    ]


@pytest.mark.parametrize(("args", "line"), [
    (["-o", "events.txt"], "error: cannot tell the format from the name {out}/events.txt: "
                           "use --format jsonl|csv|parquet|sqlite"),
    (["-o", "events"], "error: cannot tell the format from the name {out}/events: use --format jsonl|csv|parquet|sqlite"),
    (["--format", "sqlite"], "error: SQLite output needs -o FILE"),
    (["--csv-raw", "-o", "events.jsonl"], "error: --csv-raw applies only to CSV output"),
])
def test_format_errors_are_one_line_and_write_nothing(tmp_path, run_export, args, line):
    out = tmp_path / "out"
    out.mkdir()
    args = [str(out / arg) if arg.startswith("events") else arg for arg in args]
    code, stdout, err = run_export(tmp_path, *args)
    assert (code, stdout, err) == (2, "", line.format(out=out) + "\n")
    assert list(out.iterdir()) == []


def test_format_from_extension_or_flag(tmp_path, run_export):
    write_objects(tmp_path / "data", {
        run_object_name("2026-05-20", "20260520T090000.000Z-aaaaaa"): [event(7, "2026-05-20 10:00:00 +02:00")],
    })
    for name in ("a.db", "b.sqlite", "c.SQLITE3"):
        assert run_export(tmp_path / "data", "-o", str(tmp_path / name))[0] == 0
        assert sqlite_rows(tmp_path / name, "SELECT id FROM events") == [{"id": 7}]
    assert run_export(tmp_path / "data", "--format", "csv", "-o", str(tmp_path / "d.txt"))[0] == 0
    assert (tmp_path / "d.txt").read_text().startswith("id,datetime,")


def test_an_output_that_cannot_be_written_fails_with_one_line_and_leaves_no_temp_file(tmp_path, run_export):
    write_objects(tmp_path / "data", {
        run_object_name("2026-05-20", "20260520T090000.000Z-aaaaaa"): [event(7, "2026-05-20 10:00:00 +02:00")],
    })
    (tmp_path / "out" / "events.db").mkdir(parents=True)  # a folder where the file should go
    code, _, err = run_export(tmp_path / "data", "-o", str(tmp_path / "out" / "events.db"))
    assert (code, err) == (2, f"error: {tmp_path / 'out' / 'events.db'} is a folder, not a regular file: SQLite is "
                              "written to a file, renamed into place when complete\n")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["events.db"]


def test_page_url_origin_comes_from_the_api_url(tmp_path, run_export, monkeypatch):
    write_objects(tmp_path / "data", {
        run_object_name("2026-05-20", "20260520T090000.000Z-aaaaaa"): [event(7, "2026-05-20 10:00:00 +02:00")],
    })
    monkeypatch.setenv("POLISEN_API_URL", "http://127.0.0.1:8080/api/events")
    code, out, _ = run_export(tmp_path / "data")
    assert code == 0
    assert json.loads(out)["page_url"] == "http://127.0.0.1:8080/aktuellt/handelser/7/"


def test_page_url_only_for_a_path_on_the_site(tmp_path, run_export):
    """page_url is built as the page fetcher builds it (urls.site_url): before, any url starting with
    a slash was glued to the origin, another host's (//evil.example/x) too."""
    urls = ["/aktuellt/handelser/2026/maj/20/7/", "//evil.example/x", "https://evil.example/x", "aktuellt/x",
            "/aktuellt/a b", "/a\\b", "/a\tb", "/a\u00a0b", "/a\u3000b", "/a\u2028b"]
    write_objects(tmp_path / "data", {run_object_name("2026-05-20", "20260520T090000.000Z-aaaaaa"): [
        event(number, "2026-05-20 10:00:00 +02:00", url=url) for number, url in enumerate(urls, start=1)]})
    code, out, _ = run_export(tmp_path / "data")
    assert code == 0
    # JSON Lines are split at "\n" alone: str.splitlines would split a line at the raw U+2028 inside a url.
    assert [json.loads(line)["page_url"] for line in out.removesuffix("\n").split("\n")] == [
        "https://polisen.se/aktuellt/handelser/2026/maj/20/7/", *[None] * 9]


@pytest.mark.parametrize("fmt", ["jsonl", "sqlite"])
def test_a_page_stored_under_an_earlier_date_of_the_event_is_found(tmp_path, run_export, fmt):
    """An edit moved the event past midnight: its page, fetched for the first version, is stored under
    the first date. Before, the export looked for pages on the latest version's date only (no page)."""
    from polisen_collector.pages.parse import ParsedPage
    from polisen_collector.pages.store import write_page_version

    write_objects(tmp_path / "data", {
        run_object_name("2026-05-20", "20260520T220000.000Z-aaaaaa"): [event(7, "2026-05-20 23:50:00 +02:00")],
        run_object_name("2026-05-21", "20260520T223000.000Z-bbbbbb"): [event(7, "2026-05-21 00:10:00 +02:00")],
    })
    page = ParsedPage(title="Brand i skog", preamble="Brand.", body="Släckt.", author="Polisen Syd",
                      published="2026-05-20T23:55:00+02:00")
    write_page_version(LocalStorage(tmp_path / "data"), "2026-05-20", 7, fetched=datetime(2026, 5, 20, 22, 1, tzinfo=UTC),
                       fingerprint="0" * 64, html=b"<html>...</html>", page=page)
    if fmt == "jsonl":
        code, out, _ = run_export(tmp_path / "data")
        rows = [json.loads(line) for line in out.splitlines()]
    else:
        code, _, _ = run_export(tmp_path / "data", "-o", str(tmp_path / "events.db"))
        with sqlite3.connect(tmp_path / "events.db") as connection:
            connection.row_factory = sqlite3.Row
            rows = [dict(row) for row in connection.execute("SELECT * FROM versions ORDER BY datetime")]
        connection.close()
    dates = ["2026-05-21"] if fmt == "jsonl" else ["2026-05-20", "2026-05-21"]  # SQLite: every version's row
    assert code == 0
    assert [(row["datetime"][:10], row["page_title"], row["page_fetched"]) for row in rows] == [
        (day, "Brand i skog", "2026-05-20T22:01:00.000+00:00") for day in dates]


def two_days_of_runs(data_dir: Path) -> None:
    """Two days, each of two per-run objects (an event edited in the second run): old enough to compact."""
    write_objects(data_dir, {
        run_object_name(day, f"{day.replace('-', '')}T{hour}0000.000Z-aaaaaa"): [
            event(number, f"{day} 08:00:00 +02:00", summary=f"Brand {hour}.")] + [
            event(number + 1, f"{day} {hour}:00:00 +02:00")] * (hour == "09")
        for number, day in ((1, "2026-05-19"), (3, "2026-05-20")) for hour in ("09", "10")})


def test_a_compaction_during_a_plain_export_loses_no_row(tmp_path, run_export, monkeypatch):
    """A compaction that merges and deletes a day's objects after the export listed them: the day is
    listed and read again (before, the objects gone were skipped, and their rows with them)."""
    from polisen_collector.archive import layout
    from polisen_collector.archive.compaction import compact

    two_days_of_runs(tmp_path / "data")
    expected = run_export(tmp_path / "data")
    read_versions = layout.read_versions
    compacted: list = []

    def compacting_first(storage, names):
        if not compacted:
            compacted.append(compact(LocalStorage(tmp_path / "data"), date(2026, 6, 1), 2))
        return read_versions(storage, names)

    monkeypatch.setattr(layout, "read_versions", compacting_first)
    assert run_export(tmp_path / "data") == expected
    assert compacted[0].days_compacted == 2
    assert [json.loads(line)["summary"] for line in expected[1].splitlines()] == ["Brand 10.", "Brand i skog."] * 2


def test_a_day_read_while_another_compaction_compacts_it_again_is_read_whole(tmp_path):
    """The audit, the backfill and the page step read a day with archive.read_day. A compaction elsewhere that
    compacts the day again (a late version) right after their listing deletes the compacted object they
    listed: the day is listed and read again, every version in (it was read empty, and the audit took
    an event an edit had moved there for absent). The compaction that finds an object gone leaves the day."""
    from polisen_collector.archive.compaction import CompactionReport, compact, compact_day
    from polisen_collector.archive.layout import list_event_objects, read_day

    storage = LocalStorage(tmp_path / "data")
    day = "2026-05-10"
    storage.put(run_object_name(day, "20260510T080000.000Z-aaaaaa"), encode_jsonl([event(1, f"{day} 10:00:00 +02:00"),
                                                                                  event(2, f"{day} 11:00:00 +02:00")]))
    assert compact(storage, date(2026, 6, 1), 3).days_compacted == 1
    storage.put(run_object_name(day, "20260520T080000.000Z-aaaaaa"), encode_jsonl([event(3, f"{day} 12:00:00 +02:00")]))
    listed = list_event_objects(storage, "events/2026/05/10/")

    class CompactedAfterTheListing:
        """The store as a reader sees it while another host compacts the day right after the reader listed it."""

        def __init__(self) -> None:
            self.compacted = False

        def get(self, name: str):
            if not self.compacted:
                self.compacted = True
                assert compact(storage, date(2026, 6, 1), 3).days_compacted == 1
            return storage.get(name)

        def list(self, prefix: str):
            return storage.list(prefix)

    found = read_day(CompactedAfterTheListing(), day, listed)
    assert ([version.event.id for version in found.versions], found.bad) == ([1, 2, 3], [])
    report = CompactionReport()
    compact_day(storage, date(2026, 5, 10), listed, report)  # the listing of before: its objects are gone
    assert (report.days_compacted, report.days_skipped) == (0, 1)
    assert [name.rsplit("-", 1)[0] for name in list_event_objects(storage, "events/2026/05/10/")] == [
        "events/2026/05/10/compacted-20260510"]


def test_a_compacted_object_left_without_its_sidecar_by_racing_compactions(tmp_path):
    """Three compactions of one day on several hosts can leave a compacted object whose sidecar another one
    deleted. When every version in it is in another object of the day, with its times, it is no bad line and
    the next compaction merges it away (it refused the day for ever); with a version of its own, it is."""
    from polisen_collector.archive.compaction import compact
    from polisen_collector.archive.layout import collected_times_name, list_event_objects, read_day

    storage = LocalStorage(tmp_path / "data")
    day = "2026-05-10"
    storage.put(run_object_name(day, "20260510T080000.000Z-aaaaaa"), encode_jsonl([event(1, f"{day} 10:00:00 +02:00")]))
    assert compact(storage, date(2026, 6, 1), 3).days_compacted == 1
    [first] = list_event_objects(storage, "events/2026/05/10/")
    orphan = first.replace("compacted-20260510-", "compacted-20260510-0")  # sorts first: read before the other
    storage.put(orphan, storage.get(first).data)
    assert read_day(storage, day).bad == []
    assert compact(storage, date(2026, 6, 1), 3).days_compacted == 1
    assert list_event_objects(storage, "events/2026/05/10/") == [first]

    storage.put(orphan, encode_jsonl([event(2, f"{day} 11:00:00 +02:00")]))
    assert [str(line) for line in read_day(storage, day).bad] == [
        f"{orphan}: {collected_times_name(orphan)} is missing or unreadable: collection times unknown"]
    assert compact(storage, date(2026, 6, 1), 3).days_skipped == 1


def test_the_output_in_place_of_a_link_a_fifo_or_a_folder(tmp_path, run_export):
    """-o through a symbolic link replaces the link's target and keeps the link; a FIFO is written into as it
    is (a reader at its other end gets the rows; `-o /dev/stdout` works the same), never replaced by a file
    (a device given to -o was: /dev/full became a regular file); SQLite and Parquet, written to a file and
    renamed into place, refuse a FIFO, and every format a folder: exit 2, one line."""
    import threading

    two_days_of_runs(tmp_path / "data")
    expected = run_export(tmp_path / "data")[1]
    target, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    target.write_text("old\n")
    link.symlink_to(target)
    assert run_export(tmp_path / "data", "-o", str(link))[0] == 0
    assert (link.is_symlink(), target.read_text()) == (True, expected)

    fifo, received = tmp_path / "rows.jsonl", []
    os.mkfifo(fifo)
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)  # never a hung worker
    reader.start()
    code, out, err = run_export(tmp_path / "data", "-o", str(fifo))
    reader.join(10)
    assert (code, received, fifo.is_fifo()) == (0, [expected], True), err

    for output, what in ((fifo.with_suffix(".db"), "SQLite"), (fifo.with_suffix(".parquet"), "Parquet")):
        os.mkfifo(output)
        code, out, err = run_export(tmp_path / "data", "-o", str(output))
        assert (code, err, output.is_fifo()) == (
            2, f"error: {output} is a FIFO, not a regular file: {what} is written to a file, renamed into place "
               "when complete\n", True)
    (tmp_path / "folder.csv").mkdir()
    code, out, err = run_export(tmp_path / "data", "-o", str(tmp_path / "folder.csv"))
    assert (code, err) == (2, f"error: {tmp_path / 'folder.csv'} is a folder, not a regular file: the export is "
                              "written to a file, renamed into place when complete\n")


def test_the_output_named_by_an_open_descriptor_is_written_as_it_is_open(tmp_path):
    """`export_events.py -o /dev/stdout >> export.log` under cron appends to the log: the descriptor is written
    as it is open (it was followed to the log file, which a new file replaced, its lines lost). A loop of
    links is one line, exit 2 (it was a traceback)."""
    import subprocess

    two_days_of_runs(tmp_path / "data")
    log = tmp_path / "export.log"
    log.write_text("earlier\n")
    inode = log.stat().st_ino
    command = [sys.executable, str(REPO / "export_events.py"), "--env-file", os.devnull, "--data-dir",
               str(tmp_path / "data")]
    env = {**os.environ, "POLISEN_API_URL": "https://polisen.se/api/events"}
    with log.open("a") as appended:
        done = subprocess.run([*command, "-o", "/dev/stdout", "--format", "jsonl"], stdout=appended,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    assert (log.stat().st_ino, lines[0], len(lines)) == (inode, "earlier", 5)
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    done = subprocess.run([*command, "-o", str(tmp_path / "loop.jsonl")], capture_output=True, text=True, env=env,
                          timeout=60)
    assert (done.returncode, done.stderr.count("\n"), "Traceback" in done.stderr) == (2, 1, False), done.stderr


def test_compaction_leaves_an_object_outside_its_days_folder_as_the_export_does(tmp_path, run_export):
    """The export reports and skips events/2026/5/20/x.jsonl (not the day's folder events/2026/05/20/);
    compaction merged it into the day, so its rows appeared in the export once compacted. It is left now."""
    from polisen_collector.archive.compaction import compact

    stray = "events/2026/5/20/events-20260520T100000.000Z-cccccc.jsonl"
    write_objects(tmp_path / "data", {
        run_object_name("2026-05-20", "20260520T090000.000Z-aaaaaa"): [event(7, "2026-05-20 10:00:00 +02:00")],
        stray: [event(8, "2026-05-20 11:00:00 +02:00")],
    })
    before = run_export(tmp_path / "data")
    assert compact(LocalStorage(tmp_path / "data"), date(2026, 6, 1), 2).days_compacted == 1
    assert (tmp_path / "data" / stray).exists()
    assert run_export(tmp_path / "data") == before
    assert f"skipping bad archive line: {stray}: not in the folder of its day" in before[2]


def test_an_archive_that_keeps_changing_under_a_plain_export_fails_it(tmp_path, run_export, monkeypatch):
    """Objects listed but gone each time the day is read: an error, never a day read short."""
    from polisen_collector import export
    from polisen_collector.archive import layout

    two_days_of_runs(tmp_path / "data")
    listing, gone = layout.list_event_objects, tmp_path / "data" / run_object_name("2026-05-20", "20260520T090000.000Z-aaaaaa")
    stale = listing(LocalStorage(tmp_path / "data"), "events/2026/05/20/")
    gone.unlink()
    monkeypatch.setattr(layout, "list_event_objects",
                        lambda storage, prefix: stale if prefix == "events/2026/05/20/" else listing(storage, prefix))
    monkeypatch.setattr(export, "iter_days", lambda storage, options, on_bad: iter([(date(2026, 5, 20), stale)]))
    code, out, err = run_export(tmp_path / "data", "-o", str(tmp_path / "events.jsonl"))
    assert (code, out) == (1, "")  # the store failed the export, as an unreachable one does: not a usage error
    assert err == (f"export failed: {run_object_name('2026-05-20', '20260520T090000.000Z-aaaaaa')} was listed but "
                   "gone when read, 3 times: the archive kept changing (a compaction?)\n")
    assert not (tmp_path / "events.jsonl").exists()


def test_versions_dated_far_apart_are_merged_in_sqlite_and_reported(tmp_path, run_export):
    """An edit that moved an event's date by weeks (never seen in real data) and a stray folder."""
    first = event(7, "2026-05-01 10:00:00 +02:00")
    moved = event(7, "2026-05-20 10:00:00 +02:00", summary="Brand i skog, datum rättat.")
    other = event(8, "2026-05-20 11:00:00 +02:00")
    write_objects(tmp_path / "data", {
        run_object_name("2026-05-01", "20260501T090000.000Z-aaaaaa"): [first],
        run_object_name("2026-05-10", "20260510T090000.000Z-aaaaaa"): [event(6, "2026-05-10 10:00:00 +02:00")],
        run_object_name("2026-05-20", "20260520T090000.000Z-bbbbbb"): [moved, other],
        "events/2026/5/20/events-20260520T100000.000Z-cccccc.jsonl": [other],
    })

    code, out, err = run_export(tmp_path / "data")
    assert code == 0
    assert [(row["id"], row["summary"]) for row in map(json.loads, out.splitlines())] == [
        (7, "Brand i skog."), (6, "Brand i skog."), (7, "Brand i skog, datum rättat."), (8, "Brand i skog."),
    ]
    assert err.splitlines() == [
        "skipping bad archive line: events/2026/5/20/events-20260520T100000.000Z-cccccc.jsonl: "
        "not in the folder of its day events/2026/05/20/: skipped",
        "warning: event 7 has versions dated on days more than a week apart; exported once per date",
        "exported 4 rows from 3 days; 0 older versions dropped, 0 identical copies dropped, "
        "0 rows filtered out, 1 bad lines skipped; 1 ids dated on days too far apart to merge",
    ]

    code, _, err = run_export(tmp_path / "data", "-o", str(tmp_path / "events.db"))
    assert code == 0
    assert "warning: event 7 has versions dated on days more than a week apart; merged into one row of events" in err
    db = tmp_path / "events.db"
    assert sqlite_rows(db, "SELECT id, datetime, summary, first_collected, last_collected, versions FROM events"
                           " WHERE id != 6") == [
        {"id": 7, "datetime": "2026-05-20T10:00:00+02:00", "summary": "Brand i skog, datum rättat.",
         "first_collected": "2026-05-01T09:00:00.000+00:00", "last_collected": "2026-05-20T09:00:00.000+00:00", "versions": 2},
        {"id": 8, "datetime": "2026-05-20T11:00:00+02:00", "summary": "Brand i skog.",
         "first_collected": "2026-05-20T09:00:00.000+00:00", "last_collected": "2026-05-20T09:00:00.000+00:00", "versions": 1},
    ]
    assert sqlite_rows(db, "SELECT id, summary FROM versions ORDER BY id, first_collected") == [
        {"id": 6, "summary": "Brand i skog."},
        {"id": 7, "summary": "Brand i skog."}, {"id": 7, "summary": "Brand i skog, datum rättat."},
        {"id": 8, "summary": "Brand i skog."},
    ]
    assert sqlite_rows(db, "SELECT rowid FROM events_fts WHERE events_fts MATCH 'rättat'") == [{"rowid": 7}]


def test_every_column_is_built_in_one_place(tmp_path):
    """make_row fills the feed's columns, PageColumns.add the page's and the place's: together, COLUMNS."""
    from polisen_collector.archive.events import validate_event
    from polisen_collector.archive.layout import Version
    from polisen_collector.pages.columns import PageColumns
    from polisen_collector.storage.local import LocalStorage

    version = Version(validate_event(event(7, "2026-05-20 10:00:00 +02:00")), "", "")
    row = make_row(version, "", "", 1, "https://polisen.se")
    assert [*row, *PAGE_COLUMNS, *GEOGRAPHY_COLUMNS] == list(COLUMNS)
    [completed] = PageColumns(LocalStorage(tmp_path)).add([row], all_versions=False, days=["2026-05-20"])
    assert list(completed) == list(COLUMNS)


def test_the_latest_row_taken_from_the_version_rows_is_latest_row():
    """SQLite's export takes an event's row from its version rows, made once: the row latest_row makes,
    the version stored last (not the one collected first or last) with the first collection of any."""
    from polisen_collector.archive.events import validate_event
    from polisen_collector.archive.layout import Version

    first, edited, earlier = (validate_event(event(7, f"2026-05-{day} 10:00:00 +02:00", summary=text))
                              for day, text in (("20", "a"), ("21", "b"), ("19", "c")))
    versions = [Version(edited, "20260520T100000.000Z-bbbbbb", "20260522T100000.000Z-dddddd"),
                Version(first, "20260520T090000.000Z-aaaaaa", "20260520T093000.000Z-aaaaaa"),
                Version(earlier, "20260521T090000.000Z-cccccc", "20260521T090000.000Z-cccccc")]
    rows = [row for _, row in version_rows(versions, "https://polisen.se")]
    latest = latest_of_version_rows(versions, rows)
    assert latest == latest_row(versions, "https://polisen.se")
    assert (latest["summary"], latest["first_collected"]) == ("b", datetime(2026, 5, 20, 9, tzinfo=UTC))


def compact(collector: Collector, kill_at: int = 0, calls_file: Path | None = None):
    env = {"CRASH_POINT": "before-change", "CRASH_AT": str(kill_at), "STORE_CALLS_FILE": str(calls_file or "")}
    return collector.run("--compact", script=KILL_SCRIPT, env=env)


def layout(data_dir: Path) -> dict[str, list[str]]:
    folders = sorted({p.parent for p in (data_dir / "events").rglob("*") if p.is_file()})
    return {f.relative_to(data_dir).as_posix(): sorted(p.name for p in f.iterdir()) for f in folders}


# Kill points: the first day (one per-run object: sidecar, compacted, delete), the start and
# middle of 2026-05-20 (8 per-run objects, calls 34..43), and the last call.
KILL_POINTS = [1, 2, 3, 34, 35, 36, 40, 180]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_compaction_killed_at_a_step_then_rerun_exports_the_same(workspace, kill_at, tmp_path):
    latest, every = export_in_process(workspace.data_dir), export_in_process(workspace.data_dir, True)

    # The rerun is killed too, at its second write or delete; killed at the last call, the first run left one
    # object to delete, which the rerun does (a day's compacted object, named by its content, is not written twice).
    for step, killed in ((kill_at, True), (2, kill_at != KILL_POINTS[-1])):
        result = compact(workspace, kill_at=step)
        assert result.returncode == (-signal.SIGKILL if killed else 0), result.log[-500:]
        assert export_in_process(workspace.data_dir) == latest
        assert export_in_process(workspace.data_dir, True) == every

    assert compact(workspace).returncode == 0
    assert export_in_process(workspace.data_dir) == latest
    assert export_in_process(workspace.data_dir, True) == every
    after = layout(workspace.data_dir)
    assert len(after) == 28
    for folder, names in after.items():
        day = folder.removeprefix("events/").replace("/", "")
        assert re.fullmatch(rf"compacted-{day}-[0-9a-f]{{16}}\.jsonl", names[1]), names
        assert names == [names[1].removesuffix(".jsonl") + ".collected.json", names[1]], folder

    calls_file = tmp_path / "calls.json"
    result = compact(workspace, calls_file=calls_file)
    assert result.returncode == 0
    assert "compaction: 0 days compacted" in result.log
    assert json.loads(calls_file.read_text()) == {"list": 2}, "one listing of the events, one of the pages' parses"
    assert layout(workspace.data_dir) == after


def test_uninterrupted_compaction_takes_180_store_writes(workspace, tmp_path):
    """Pins the numbering KILL_POINTS relies on: 28 days x 2 puts + 124 per-run objects deleted."""
    calls_file = tmp_path / "calls.json"
    assert compact(workspace, calls_file=calls_file).returncode == 0
    calls = json.loads(calls_file.read_text())
    assert (calls["put"], calls["delete"]) == (56, 124)


def test_merging_into_a_compacted_day_reads_each_object_once(workspace, tmp_path):
    """The compacted object, its sidecar and the late object are read once each; the day's new compacted
    object gets a new name (export --update tells changes by names) and the older one goes, sidecar too."""
    assert compact(workspace).returncode == 0
    day = workspace.data_dir / "events/2026/05/20"
    [compacted] = day.glob("compacted-*.jsonl")
    late = compacted.read_text().splitlines()[0] + "\n"  # a copy of a version, as a late run would store it
    (day / "events-20260601T000000.000000Z-late.jsonl").write_text(late)
    calls_file = tmp_path / "calls.json"
    result = compact(workspace, calls_file=calls_file)
    assert result.returncode == 0 and "compaction: 1 days compacted" in result.log, result.log[-500:]
    # the sidecar, the compacted object and the late object, each once, and two reads by the local store's
    # conditional writes of the new sidecar and compacted object (each written only if absent)
    assert json.loads(calls_file.read_text())["get"] == 3 + 2
    [again] = day.glob("compacted-*.jsonl")
    assert again != compacted, "the late copy changed the day's last collection: another content, another name"
    assert sorted(p.name for p in day.iterdir()) == [again.name.removesuffix(".jsonl") + ".collected.json", again.name]


def test_a_compaction_killed_before_it_deleted_the_older_compacted_object_is_finished_by_the_next(
        workspace, tmp_path):
    """Killed after writing a day's new compacted object, before deleting anything: the day has two compacted
    objects, reads the same, and the next compaction merges them into one."""
    assert compact(workspace).returncode == 0
    day = workspace.data_dir / "events/2026/05/20"
    [compacted] = day.glob("compacted-*.jsonl")
    lines = compacted.read_text().splitlines()
    edited = json.loads(lines[0]) | {"summary": "Uppdaterad sammanfattning."}
    (day / "events-20260601T000000.000000Z-late.jsonl").write_text(json.dumps(edited) + "\n")
    latest, every = export_in_process(workspace.data_dir), export_in_process(workspace.data_dir, True)
    result = compact(workspace, kill_at=3)  # the sidecar and the object written, killed before the first delete
    assert result.returncode == -signal.SIGKILL, result.log[-500:]
    assert len(list(day.glob("compacted-*.jsonl"))) == 2
    assert (export_in_process(workspace.data_dir), export_in_process(workspace.data_dir, True)) == (latest, every)

    result = compact(workspace)
    assert result.returncode == 0 and "compaction: 1 days compacted, 2 objects merged and removed" in result.log
    [merged] = day.glob("compacted-*.jsonl")
    assert sorted(merged.read_text().splitlines()) == sorted([*lines, json.dumps(edited, ensure_ascii=False)])
    assert sorted(p.name for p in day.iterdir()) == [merged.name.removesuffix(".jsonl") + ".collected.json", merged.name]
    assert (export_in_process(workspace.data_dir), export_in_process(workspace.data_dir, True)) == (latest, every)


@pytest.mark.slow
def test_collecting_into_compacted_days_and_rebuilding_the_state(tmp_path, snapshot_bodies):
    """Every other snapshot, compacting halfway: later versions land in compacted days and merge."""
    bodies = snapshot_bodies[::2]
    truth = versions_in_snapshots(bodies)
    assert sum(len(contents) > 1 for contents in truth.values()) >= 5
    with FakePolisenServer(bodies) as server:
        collector = Collector(tmp_path, server.url)
        replay(server, collector, range(len(bodies) // 2))
        assert compact(collector).returncode == 0
        replay(server, collector, range(len(bodies) // 2, len(bodies)))
        assert compact(collector).returncode == 0

        assert archived_versions(collector.data_dir) == truth
        assert [without_collected(r) for r in export_rows(collector, "--all-versions")] == [
            expected_row(content, len(truth[event_id]))
            for event_id in sorted(truth, key=lambda i: (json.loads(truth[i][0])["datetime"][:10], i))
            for content in truth[event_id]
        ]

        (collector.data_dir / "metadata" / "last_seen.json").unlink()
        result = collector.run()
    assert result.returncode == 0, result.log[-500:]
    assert f"rebuilt the state from the archive: {len(truth)} ids" in result.log
    assert archived_versions(collector.data_dir) == truth
    assert {int(k): v[0] for k, v in collector.state()["seen"].items()} == {
        event_id: content_hash(json.loads(contents[-1])) for event_id, contents in truth.items()
    }


def test_compaction_leaves_a_day_with_an_unreadable_line_and_waits_for_the_lock(workspace):
    folder = workspace.data_dir / "events" / "2026" / "05" / "25"
    before = sorted(p.name for p in folder.iterdir())
    with (folder / before[0]).open("a", encoding="utf-8") as handle:
        handle.write('{"id": 636277, "datetime": "2026-05-25 11\n')

    workspace.log_dir.mkdir()
    with RunLock(workspace.log_dir / "collect_events.lock"):
        locked = compact(workspace)
    assert locked.returncode == 3
    assert sorted(p.name for p in folder.iterdir()) == before

    result = compact(workspace)
    assert result.returncode == 0, result.log[-500:]
    assert f"not compacting 2026-05-25: unreadable line events/2026/05/25/{before[0]} line" in result.log
    assert "27 days compacted" in result.log
    assert sorted(p.name for p in folder.iterdir()) == before


def test_the_export_docs_list_every_column_and_what_the_full_text_index_covers():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "export.md").read_text()
    table = docs.split("**Columns**", 1)[1].split("\n\n", 2)[1]
    listed = [name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])]
    assert sorted(listed) == sorted(COLUMNS)
    fts_row = next(line for line in docs.splitlines() if line.startswith("| `events_fts` |"))
    assert re.findall(r"`events\.(\w+)`", fts_row) == list(FTS_COLUMNS)


def test_a_misplaced_object_that_sorts_early_does_not_end_a_dated_export(tmp_path, run_export):
    """`events/2026/001/20/` reads as 2026-01-20 but lists before `events/2026/01/05/`: it is
    reported and skipped before --to is applied, which it would otherwise end at once."""
    write_objects(tmp_path / "data", {
        "events/2026/001/20/events-20260120T090000.000Z-aaaaaa.jsonl": [event(1, "2026-01-20 10:00:00 +01:00")],
        run_object_name("2026-01-05", "20260105T090000.000Z-bbbbbb"): [event(2, "2026-01-05 10:00:00 +01:00")],
    })
    code, out, err = run_export(tmp_path / "data", "--to", "2026-01-10")
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [2]
    assert "events/2026/001/20/events-20260120T090000.000Z-aaaaaa.jsonl: not in the folder of its day " \
           "events/2026/01/20/: skipped" in err
