"""What polisen.se takes back: withdrawal records in the archive, and how the export shows them."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from conftest import clear_settings
from test_reading_examples import doc_blocks

from polisen_collector.archive.events import encode_jsonl
from polisen_collector.archive.layout import run_object_name
from polisen_collector.archive.withdrawals import (
    REPUBLISHED,
    WITHDRAWN,
    Record,
    histories,
    read_day_records,
    record_object_name,
    withdrawn_at,
    write_records,
)
from polisen_collector.cli import export_events
from polisen_collector.storage.local import LocalStorage

T1 = datetime(2026, 5, 21, 8, 22, 10, tzinfo=UTC)
T2 = datetime(2026, 5, 22, 9, 22, 31, tzinfo=UTC)
SUSPECTED = datetime(2026, 5, 20, 21, 37, 2, tzinfo=UTC)


def event(event_id: int, when: str, **fields) -> dict:
    return {"id": event_id, "datetime": when, "name": f"{when[:10]}, Brand, Kävlinge", "summary": "Brand i skog.",
            "url": f"/aktuellt/handelser/{event_id}/", "type": "Brand",
            "location": {"name": "Kävlinge", "gps": "55.793637,13.113398"}, **fields}


@pytest.fixture
def archive(tmp_path) -> Path:
    """Three events of 2026-05-20 (the second edited): the first withdrawn (and recorded twice, as two
    hosts would), the second withdrawn and republished, the third never touched."""
    data = tmp_path / "data"
    storage = LocalStorage(data)
    first, second, third = (event(n, f"2026-05-20 1{n}:00:00 +02:00") for n in (1, 2, 3))
    storage.put(run_object_name("2026-05-20", "20260520T120000.000Z-aaaaaa"), encode_jsonl([first, second, third]))
    storage.put(run_object_name("2026-05-20", "20260520T180000.000Z-bbbbbb"),
                encode_jsonl([{**second, "summary": "Brand i skog. Uppdaterad."}]))
    storage.put(run_object_name("2026-05-21", "20260521T120000.000Z-cccccc"),
                encode_jsonl([event(4, "2026-05-21 9:00:00 +02:00")]))
    day = "2026-05-20"
    write_records(storage, day, [Record(1, WITHDRAWN, T1, day, "h1", SUSPECTED), Record(2, WITHDRAWN, T1, day, "h2")],
                  "20260521T082201.000Z-111111")
    write_records(storage, day, [Record(1, WITHDRAWN, T2, day, "h1"), Record(2, REPUBLISHED, T2, day, "h2")],
                  "20260522T092201.000Z-222222")
    return data


def export(data: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    clear_settings(monkeypatch, POLISEN_API_URL="https://polisen.se/api/events")
    code = export_events.main(["--env-file", os.devnull, "--data-dir", str(data), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_events_history_keeps_the_records_that_change_its_status(archive):
    records = read_day_records(LocalStorage(archive), "2026-05-20")
    assert [(r.id, r.status, r.confirmed_at) for r in records] == [
        (1, WITHDRAWN, T1), (2, WITHDRAWN, T1), (1, WITHDRAWN, T2), (2, REPUBLISHED, T2)]
    changes = histories(records)
    assert {event_id: [(r.status, r.confirmed_at) for r in history] for event_id, history in changes.items()} == {
        1: [(WITHDRAWN, T1)], 2: [(WITHDRAWN, T1), (REPUBLISHED, T2)]}
    assert withdrawn_at(changes[1]) == T1 and withdrawn_at(changes[2]) is None and withdrawn_at([]) is None
    assert histories([Record(5, REPUBLISHED, T1, "2026-05-20")]) == {}, "a return without a withdrawal changes nothing"
    assert record_object_name("2026-05-20", "run") == "withdrawals/2026/05/20/withdrawals-run.jsonl"


def test_withdrawn_at_in_every_row_and_every_version(archive, monkeypatch, capsys):
    code, out, err = export(archive, monkeypatch, capsys)
    assert code == 0, err
    rows = {row["id"]: row for row in map(json.loads, out.splitlines())}
    assert {event_id: row["withdrawn_at"] for event_id, row in rows.items()} == {
        1: "2026-05-21T08:22:10.000+00:00", 2: None, 3: None, 4: None}
    assert "exported 4 rows from 2 days; 1 older versions dropped" in err and "; 1 events withdrawn" in err
    code, out, err = export(archive, monkeypatch, capsys, "--all-versions")
    assert code == 0, err
    assert [(row["id"], row["withdrawn_at"]) for row in map(json.loads, out.splitlines())] == [
        (1, "2026-05-21T08:22:10.000+00:00"), (2, None), (2, None), (3, None), (4, None)]


def test_sqlite_holds_the_whole_history(archive, tmp_path, monkeypatch, capsys):
    code, _, err = export(archive, monkeypatch, capsys, "-o", str(tmp_path / "events.db"))
    assert code == 0, err
    with sqlite3.connect(tmp_path / "events.db") as connection:
        history = connection.execute('SELECT id, status, "confirmed_at", suspected_at, content_hash FROM withdrawals '
                                     'ORDER BY id, confirmed_at').fetchall()
        withdrawn = connection.execute("SELECT id, withdrawn_at FROM events WHERE withdrawn_at IS NOT NULL").fetchall()
        versions = connection.execute("SELECT DISTINCT withdrawn_at FROM versions WHERE id = 1").fetchall()
        joined = connection.execute('SELECT e.name, w.status FROM withdrawals w JOIN events e USING (id) '
                                    'WHERE w.id = 2 ORDER BY w.confirmed_at').fetchall()
    assert history == [
        (1, "withdrawn", "2026-05-21T08:22:10.000+00:00", "2026-05-20T21:37:02.000+00:00", "h1"),
        (2, "withdrawn", "2026-05-21T08:22:10.000+00:00", None, "h2"),
        (2, "republished", "2026-05-22T09:22:31.000+00:00", None, "h2"),
    ]
    assert withdrawn == [(1, "2026-05-21T08:22:10.000+00:00")] and versions == [("2026-05-21T08:22:10.000+00:00",)]
    assert joined == [("2026-05-20, Brand, Kävlinge", "withdrawn"), ("2026-05-20, Brand, Kävlinge", "republished")]


def test_the_withdrawal_history_in_jsonl_csv_and_parquet(archive, tmp_path, monkeypatch, capsys):
    code, out, err = export(archive, monkeypatch, capsys, "--withdrawals")
    assert code == 0, err
    assert [(row["id"], row["status"], row["confirmed_at"], row["name"]) for row in map(json.loads, out.splitlines())] == [
        (1, "withdrawn", "2026-05-21T08:22:10.000+00:00", "2026-05-20, Brand, Kävlinge"),
        (2, "withdrawn", "2026-05-21T08:22:10.000+00:00", "2026-05-20, Brand, Kävlinge"),
        (2, "republished", "2026-05-22T09:22:31.000+00:00", "2026-05-20, Brand, Kävlinge"),
    ]
    assert "exported 3 withdrawals and republications of 2 events from 2 days" in err
    for name in ("history.csv", "history.parquet"):
        code, _, err = export(archive, monkeypatch, capsys, "--withdrawals", "-o", str(tmp_path / name))
        assert code == 0, err
    header = next(csv.reader(io.StringIO((tmp_path / "history.csv").read_text())))
    assert header == ["id", "datetime", "local_date", "name", "type", "location_name", "page_url", "status",
                      "confirmed_at", "suspected_at", "content_hash"]
    for source in (f"read_csv('{tmp_path / 'history.csv'}')", f"'{tmp_path / 'history.parquet'}'"):
        relation = duckdb.sql(f'SELECT id, status, confirmed_at, suspected_at FROM {source} ORDER BY id, confirmed_at')
        assert [str(t) for t in relation.types] == ["BIGINT", "VARCHAR", "TIMESTAMP WITH TIME ZONE",
                                                    "TIMESTAMP WITH TIME ZONE"], source
        assert [(i, s, a.astimezone(UTC)) for i, s, a, _ in relation.fetchall()] == [
            (1, "withdrawn", T1), (2, "withdrawn", T1), (2, "republished", T2)], source
    code, _, err = export(archive, monkeypatch, capsys, "--withdrawals", "--all-versions")
    assert code == 2 and "--withdrawals is a table of its own" in err


def test_a_bad_record_line_is_reported_and_skipped(archive, monkeypatch, capsys):
    name = record_object_name("2026-05-20", "20260523T000000.000Z-333333")
    (archive / name).write_text(
        '{"id": 3, "status": "gone", "confirmed_at": "2026-05-23T00:00:00+00:00", "event_date": "2026-05-20"}\n'
        "not json\n"
        '{"id": 3, "status": "withdrawn", "confirmed_at": "2026-05-23", "event_date": "2026-05-20"}\n')
    code, out, err = export(archive, monkeypatch, capsys)
    assert code == 0, err
    assert {row["id"]: row["withdrawn_at"] for row in map(json.loads, out.splitlines())}[3] is None
    assert f"{name} line 1: invalid withdrawal record: status 'gone' is not one of withdrawn, republished" in err
    assert f"{name} line 2: invalid JSON" in err
    assert f"{name} line 3: invalid withdrawal record: confirmed_at '2026-05-23' is not a time with its offset" in err
    assert "3 bad lines skipped" in err


def test_the_documented_duckdb_query_gives_the_events_withdrawn_now(archive, monkeypatch):
    [query] = [block for block in doc_blocks("storage.md", "sql") if "withdrawals/" in block]
    monkeypatch.chdir(archive.parent)
    assert duckdb.sql(query.strip().rstrip(";")).fetchall() == [(1, datetime(2026, 5, 20).date(), T1)]
