"""export_events.py and compaction, over an archive the real collector built from the 114 snapshots."""

from __future__ import annotations

import io
import json
import shutil
import signal
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from archive_truth import archived_versions, versions_in_snapshots
from conftest import Collector
from fake_polisen import FakePolisenServer

from polisen_collector.archive.events import content_hash, parse_event_datetime
from polisen_collector.export import ExportOptions, ExportSummary, iter_rows, write_jsonl
from polisen_collector.geography import place_event
from polisen_collector.pages.columns import GEOGRAPHY_COLUMNS, PAGE_COLUMNS
from polisen_collector.run.lock import RunLock
from polisen_collector.storage.local import LocalStorage

KILL_SCRIPT = "tests/compact_with_kill.py"


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
    copy = Collector(tmp_path, "http://127.0.0.1:9/api/events")
    shutil.copytree(archive.data_dir, copy.data_dir)
    return copy


def export(collector: Collector, *args: str):
    return collector.run(*args, script="export_events.py")


def export_rows(collector: Collector, *args: str) -> list[dict]:
    result = export(collector, *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def export_in_process(data_dir: Path, all_versions: bool = False) -> str:
    out = io.StringIO()
    write_jsonl(iter_rows(LocalStorage(data_dir), ExportOptions(all_versions=all_versions), ExportSummary(),
                          on_bad=lambda line: pytest.fail(f"bad line {line}")), out)
    return out.getvalue()


def expected_row(content: str, versions: int) -> dict:
    event = json.loads(content)
    latitude, longitude = (float(x) for x in event["location"]["gps"].split(","))
    return {
        "id": event["id"], "datetime": parse_event_datetime(event["datetime"]).isoformat(),
        "name": event["name"], "summary": event["summary"], "url": event["url"], "type": event["type"],
        "location_name": event["location"]["name"], "latitude": latitude, "longitude": longitude,
        "versions": versions, **no_page_and_place(event),
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
        assert {k: v for k, v in types.items() if k not in PAGE_COLUMNS + GEOGRAPHY_COLUMNS} == {
            "id": "BIGINT", "datetime": "TIMESTAMP WITH TIME ZONE", "name": "VARCHAR", "summary": "VARCHAR",
            "url": "VARCHAR", "type": "VARCHAR", "location_name": "VARCHAR", "latitude": "DOUBLE",
            "longitude": "DOUBLE", "first_collected": "TIMESTAMP WITH TIME ZONE",
            "last_collected": "TIMESTAMP WITH TIME ZONE", "versions": "BIGINT",
        }, source
        read_back = [dict(zip(relation.columns, values, strict=True)) for values in relation.fetchall()]
        expected = sorted(reference, key=lambda r: (r["id"], r["last_collected"]))
        assert len(read_back) == len(expected)
        for got, want in zip(read_back, expected, strict=True):
            for key in ("datetime", "first_collected", "last_collected"):
                assert got[key] == datetime.fromisoformat(want[key]), (key, got, want)
            assert {k: v for k, v in got.items() if k not in ("datetime", "first_collected", "last_collected")} == \
                {k: v for k, v in want.items() if k not in ("datetime", "first_collected", "last_collected")}

    schema = pq.read_schema(tmp_path / "events.parquet")
    assert str(schema.field("datetime").type) == "timestamp[ms, tz=Europe/Stockholm]"
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
    assert "Parquet output needs pyarrow: python3 -m pip install -r requirements-extras.txt" in result.stderr
    assert not (tmp_path / "out.parquet").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def compact(collector: Collector, kill_at: int = 0, calls_file: Path | None = None):
    env = {"KILL_AT_CALL": str(kill_at), "STORE_CALLS_FILE": str(calls_file or "")}
    return collector.run("--compact", script=KILL_SCRIPT, env=env)


def layout(data_dir: Path) -> dict[str, list[str]]:
    folders = sorted({p.parent for p in (data_dir / "events").rglob("*") if p.is_file()})
    return {f.relative_to(data_dir).as_posix(): sorted(p.name for p in f.iterdir()) for f in folders}


# Kill points: the first days (one per-run object each: sidecar, compacted, delete), the start
# and middle of 2026-05-20 (8 per-run objects, calls 34..43), and the last call.
KILL_POINTS = [1, 2, 3, 4, 5, 34, 35, 36, 37, 40, 180]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_compaction_killed_at_a_step_then_rerun_exports_the_same(workspace, kill_at, tmp_path):
    latest, every = export_in_process(workspace.data_dir), export_in_process(workspace.data_dir, True)

    for step in (kill_at, 2):  # the rerun is killed too, after merging into an existing compacted object
        result = compact(workspace, kill_at=step)
        assert result.returncode == -signal.SIGKILL, result.log[-500:]
        assert export_in_process(workspace.data_dir) == latest
        assert export_in_process(workspace.data_dir, True) == every

    assert compact(workspace).returncode == 0
    assert export_in_process(workspace.data_dir) == latest
    assert export_in_process(workspace.data_dir, True) == every
    after = layout(workspace.data_dir)
    assert len(after) == 28
    for folder, names in after.items():
        day = folder.removeprefix("events/").replace("/", "")
        assert names == [f"compacted-{day}.collected.json", f"compacted-{day}.jsonl"], folder

    calls_file = tmp_path / "calls.json"
    result = compact(workspace, calls_file=calls_file)
    assert result.returncode == 0
    assert "compaction: 0 days compacted" in result.log
    assert json.loads(calls_file.read_text()) == {"list": 1}
    assert layout(workspace.data_dir) == after


def test_uninterrupted_compaction_takes_180_store_writes(workspace, tmp_path):
    """Pins the numbering KILL_POINTS relies on: 28 days x 2 puts + 124 per-run objects deleted."""
    calls_file = tmp_path / "calls.json"
    assert compact(workspace, calls_file=calls_file).returncode == 0
    calls = json.loads(calls_file.read_text())
    assert (calls["put"], calls["delete"]) == (56, 124)


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
