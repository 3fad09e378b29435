"""What polisen.se takes back: withdrawal records in the archive, and how the export shows them."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests
from conftest import clear_settings
from fake_polisen import FakePolisenServer
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_reading_examples import doc_blocks

from polisen_collector.api.client import ApiOptions, PolisenClient
from polisen_collector.archive.events import Event, encode_jsonl, validate_event
from polisen_collector.archive.layout import Version, run_object_name
from polisen_collector.archive.state import STATE_OBJECT, encode_state, read_state
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
from polisen_collector.config import load_settings
from polisen_collector.health.server import HealthCollector
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.recovery.audit import PROGRESS_OBJECT, Budget, read_progress, run_audit
from polisen_collector.recovery.backfill import DayAnswer, latest_versions
from polisen_collector.recovery.withdrawals import (
    CONFIRM_AFTER,
    HINTS_OBJECT,
    DayWithdrawals,
    Hints,
    confirm_day,
    dense_days,
    load_hints,
    note_answer,
    settle_day,
)
from polisen_collector.run.collection import run_once
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


# Deciding: suspicions from the feed, confirmation by the day's answer.

def events_of(*specs: tuple[int, str]) -> list[Event]:
    return [validate_event(event(event_id, when)) for event_id, when in specs]


def window(*extra: tuple[int, str]) -> list[Event]:
    """An answer covering 2026-05-20 to 2026-05-27 (its coverage starts on the 20th), with `extra`."""
    days = [f"2026-05-{day} 12:00:00 +02:00" for day in range(20, 28)]
    return events_of(*((100 + n, days[n % 8]) for n in range(60)), *extra)


def answered(events: list[Event]) -> tuple[list[Event], frozenset[int]]:
    """An answer's valid events and every id it holds (here the same)."""
    return events, frozenset(event.id for event in events)


def entry(day: str) -> tuple[str, str, str]:
    return ("hash", day, "2026-05-27")


def test_what_an_answer_lacks_inside_its_dense_days_is_suspected_and_ripens(tmp_path):
    host = LocalStorage(tmp_path)
    seen = {1: entry("2026-05-23"), 2: entry("2026-05-20"), 3: entry("2026-05-26"), 4: entry("2026-03-02")}
    answer = window()
    assert dense_days(answer) == ("2026-05-22", "2026-05-27"), "the coverage start's day and the next are not dense"
    assert note_answer(host, *answered(answer), seen, T1) == 2, "1 and 3: 2 may have scrolled out, 4 is months old"
    hints = load_hints(host)
    assert hints.absent == {1: ("2026-05-23", T1.isoformat(), 1), 3: ("2026-05-26", T1.isoformat(), 1)}
    assert hints.suspect_days() == [], "one answer's absence asks for nothing"
    assert note_answer(host, *answered(window((3, "2026-05-26 12:00:00 +02:00"))), seen, T2) == 1, "3 came back"
    hints = load_hints(host)
    assert hints.absent == {1: ("2026-05-23", T1.isoformat(), 2)} and hints.suspect_days() == ["2026-05-23"]
    stored = host.get(HINTS_OBJECT)
    note_answer(host, *answered(window((1, "2026-05-23 12:00:00 +02:00"), (3, "2026-05-26 12:00:00 +02:00"))), seen,
                T2)
    assert load_hints(host).absent == {} and host.get(HINTS_OBJECT) != stored


def test_a_withdrawn_event_the_feed_shows_again_is_suspected_of_a_return(tmp_path):
    host = LocalStorage(tmp_path)
    settle_day(host, DayWithdrawals("2026-05-23", withdrawn=[1], in_force={1}), T1)
    assert load_hints(host).withdrawn == {1: "2026-05-23"}
    assert note_answer(host, *answered(window()), {1: entry("2026-05-23")}, T1) == 0, "known to be withdrawn: no suspicion"
    note_answer(host, *answered(window((1, "2026-05-23 12:00:00 +02:00"))), {1: entry("2026-05-23")}, T2)
    assert load_hints(host).returned == {1: ("2026-05-23", T2.isoformat())}
    assert load_hints(host).suspect_days() == ["2026-05-23"], "a return asks for the day's audit at once"
    settle_day(host, DayWithdrawals("2026-05-23", republished=[1]), T2)
    assert load_hints(host) == Hints(), "the audit settled it"


DAY = "2026-05-23"
FIRST = T2 - timedelta(hours=1)
"""When a first answer of the day lacked events, an hour before the one at T2."""


def archive_day(storage: LocalStorage, ids: range, day: str = DAY) -> dict[int, Version]:
    """The day's events `ids` archived by one run; their latest versions, as the audit reads them."""
    storage.put(run_object_name(day, "20260521T000000.000Z-aaaaaa"),
                encode_jsonl([event(n, f"{day} 12:00:00 +02:00") for n in ids]))
    return latest_versions(storage, day)


def day_answer(events: list[Event], archived: dict[int, Version], fetched: int | None = None,
               served: datetime = T2) -> DayAnswer:
    return DayAnswer(DAY, len(events) if fetched is None else fetched, 0, 0, events, served, archived, {},
                     frozenset(event.id for event in events))


@pytest.mark.parametrize(("answer", "fetched", "doubt"), [
    ([], 0, "the answer is empty (a glitch, or a day older than the API serves)"),
    (list(range(12, 20)), 500, "the answer holds 500 events, the API's cap: it may be cut"),
    ([12, 13], 2, "the answer lacks 8 of the day's 10 events: cut short?"),
])
def test_a_days_answer_that_cannot_prove_an_absence_confirms_none(tmp_path, caplog, answer, fetched, doubt):
    storage = LocalStorage(tmp_path)
    archived = archive_day(storage, range(12, 22))
    events = events_of(*((n, f"{DAY} 12:00:00 +02:00") for n in answer))
    before = {21: FIRST.isoformat(), 12: FIRST.isoformat()}
    found = confirm_day(storage, day_answer(events, archived, fetched), Hints(), "run", T2, absent=before)
    assert (found.withdrawn, found.doubt, found.in_force, found.absent) == ([], doubt, set(), {}), \
        "what an earlier answer lacked must be seen lacking by two usable answers again"
    assert [name for name in storage.list("withdrawals/")] == []
    assert f"audit {DAY}: not confirming the withdrawal of {10 - len(answer)} events: {doubt}" in caplog.text


def test_two_answers_of_the_day_half_an_hour_apart_confirm_a_withdrawal_one_only_suspects_it(tmp_path):
    storage = LocalStorage(tmp_path)
    write_records(storage, DAY, [Record(5, WITHDRAWN, T1, DAY, "h5")], "20260521T000000.000Z-aaaaaa")
    archived = archive_day(storage, range(1, 8))
    present = events_of(*((n, f"{DAY} 12:00:00 +02:00") for n in (2, 3, 5, 6)))
    hints = Hints(absent={1: (DAY, SUSPECTED.isoformat(), 2)})
    first = confirm_day(storage, day_answer(present, archived, served=FIRST), hints, "20260522T082231.000Z-bbbbbb",
                        T1, absent={})
    assert (first.withdrawn, first.republished, first.absent) == ([], [5], {n: FIRST.isoformat() for n in (1, 4, 7)})
    soon = confirm_day(storage, day_answer(present, archived, served=FIRST + timedelta(minutes=10)), hints,
                       "20260522T083231.000Z-cccccc", T1, absent=first.absent)
    assert (soon.withdrawn, soon.absent) == ([], first.absent), "ten minutes later: the same glitch, maybe"
    back = present + events_of((7, f"{DAY} 12:00:00 +02:00"))
    found = confirm_day(storage, day_answer(back, archived), hints, "20260522T092231.000Z-dddddd", T1,
                        absent=first.absent)
    assert (found.withdrawn, found.republished, found.in_force, found.absent, found.doubt) == (
        [1, 4], [], {1, 4}, {}, None), "7 came back: never marked"
    records = [json.loads(line) for name in storage.list("withdrawals/") if "dddddd" in name
               for line in storage.get(name).data.splitlines()]
    assert records == [
        {"id": 1, "status": "withdrawn", "confirmed_at": "2026-05-22T09:22:31+00:00", "event_date": DAY,
         "content_hash": archived[1].event.hash, "suspected_at": "2026-05-20T21:37:02+00:00"},
        {"id": 4, "status": "withdrawn", "confirmed_at": "2026-05-22T09:22:31+00:00", "event_date": DAY,
         "content_hash": archived[4].event.hash, "suspected_at": "2026-05-22T08:22:31+00:00"},
    ], "suspected_at: the first answer known to lack it, the feed's (the hints) or the day's"
    [republished] = [json.loads(storage.get(name).data) for name in storage.list("withdrawals/") if "bbbbbb" in name]
    assert (republished["id"], republished["status"], republished["content_hash"]) == (5, "republished", present[2].hash)
    again = confirm_day(storage, day_answer(back, archived), hints, "20260522T100000.000Z-eeeeee", T1, absent={})
    assert (again.withdrawn, again.republished, again.in_force) == ([], [], {1, 4}), "nothing recorded twice"
    assert len(list(storage.list("withdrawals/"))) == 3


def test_an_event_whose_newest_version_is_on_another_day_is_not_withdrawn_from_its_old_one(tmp_path):
    storage = LocalStorage(tmp_path)
    archived = archive_day(storage, range(1, 8))
    moved = {**event(3, "2026-05-16 12:00:00 +02:00"), "summary": "Datum rättat."}
    storage.put(run_object_name("2026-05-16", "20260522T000000.000Z-ffffff"), encode_jsonl([moved]))
    present = events_of(*((n, f"{DAY} 12:00:00 +02:00") for n in (1, 4, 5, 6, 7)))
    found = confirm_day(storage, day_answer(present, archived, served=FIRST), Hints(), "run", T1, absent={})
    assert found.absent == {2: FIRST.isoformat()}, "3 lives on 2026-05-16 now, 7 days back: the state knows nothing"
    storage.put(run_object_name(DAY, "20260522T120000.000Z-aaaaaa"), encode_jsonl([event(3, f"{DAY} 9:00:00 +02:00")]))
    archived = latest_versions(storage, DAY)
    found = confirm_day(storage, day_answer(present, archived, served=FIRST), Hints(), "run", T1, absent={})
    assert found.absent == {2: FIRST.isoformat(), 3: FIRST.isoformat()}, "an edit brought 3 back to the day later"


# The proof on the recorded snapshots: feed runs and hourly-ish audit ticks on the recorded calendar.

RECORDED_WITHDRAWALS = {636465: 52, 639763: 67}
"""Ids the recorded answers dropped for good while their day was well inside the answers' range,
with the first answer that lacked them (test_the_recorded_answers_withdrew_two_events checks it)."""
BACK_AND_FORTH = 635550
"""The one id the recorded answers dropped (answers 47 to 54) and served again."""
TICK = Budget(horizon_days=7, per_tick=4, per_day=96)
EMPTY_ANSWER = 53
"""The recorded empty body: that run fails, and loses nothing."""


def answers(bodies: list[bytes]) -> list[list[dict]]:
    return [json.loads(body) if body.strip() else [] for body in bodies]


def test_the_recorded_answers_withdrew_two_events_and_dropped_one_for_a_while(snapshot_bodies):
    served = answers(snapshot_bodies)
    for event_id, since in RECORDED_WITHDRAWALS.items():
        day = next(raw["datetime"][:10] for raw in served[since - 1] if raw["id"] == event_id)
        later = [answer for answer in served[since:] if answer]
        assert all(event_id not in {raw["id"] for raw in answer} for answer in later)
        for answer in later[:30]:  # a day and more later, the answers still cover its day in full
            assert sum(raw["datetime"][:10] < day for raw in answer) > 50, (event_id, day)
    holes = [index for index, answer in enumerate(served) if answer and BACK_AND_FORTH not in {r["id"] for r in answer}]
    assert [index for index in holes if 40 < index < 60] == [47, 48, 49, 50, 51, 52, 54]
    assert any(BACK_AND_FORTH in {r["id"] for r in answer} for answer in served[55:])


class Timeline:
    """Feed runs (run_once, as cron calls it) and audit ticks half an hour after each, on the snapshots' calendar."""

    def __init__(self, workdir: Path, api: FakePolisenServer, times: list[float], budget: Budget = TICK) -> None:
        (workdir / "logs").mkdir()
        self.settings = load_settings(environ={
            "POLISEN_API_URL": api.url, "DATA_DIR": str(workdir / "data"), "LOG_DIR": str(workdir / "logs"),
            "METRICS_DIR": str(workdir / "metrics"), "API_RATE_LIMIT": "off", "API_BACKOFF_FACTOR": "0",
            "PAGES_PER_RUN": "0",
        }, env_file=None)
        self.api, self.times, self.budget = api, times, budget
        self.storage = LocalStorage(self.settings.data_dir)
        self.host = LocalStorage(self.settings.log_dir)
        api.follow_snapshots(times)

    def feed_and_audit(self, index: int):
        self.api.serve(index)
        assert run_once(self.settings) == (1 if index == EMPTY_ANSWER else 0), index
        return self.audit(index)

    def audit(self, index: int):
        """An audit tick half an hour after snapshot `index`, which the fake serves (with no feed run)."""
        self.api.serve(index)
        client = PolisenClient(ApiOptions(url=self.api.url, backoff_factor=0))
        try:
            return run_audit(self.storage, client, RunMetrics(f"tick-{index}"), budget=self.budget, retention_days=30,
                             now=datetime.fromtimestamp(self.times[index], UTC) + timedelta(minutes=30), host=self.host)
        finally:
            client.close()

    def audits_of(self, day: str, after: int) -> list[datetime]:
        """When the API answered each audit of `day` from snapshot `after` on."""
        return [datetime.fromtimestamp(r.time, UTC) for r in self.api.requests
                if r.query.get("DateTime") == [day] and r.time >= self.times[after]]

    def records(self) -> dict[int, list[tuple[str, datetime]]]:
        from polisen_collector.archive.withdrawals import list_record_objects, read_records

        found: dict[int, list[tuple[str, datetime]]] = {}
        for record in read_records(self.storage, list_record_objects(self.storage)):
            found.setdefault(record.id, []).append((record.status, record.confirmed_at))
        return found


def event_day(bodies: list[bytes], event_id: int) -> str:
    return next(raw["datetime"][:10] for answer in answers(bodies) for raw in answer if raw["id"] == event_id)


WITHDRAWN_BY_THE_FAKE = (636194, 56, 63)
"""An event of 2026-05-24 the fake withdraws from snapshot 56 and serves again from 63."""
JITTER = (636217, 58, 60)
"""An event of 2026-05-24 the feed leaves out of answers 58 and 59 (two: the audit looks), ?DateTime= never."""


def replay_with_withdrawals(tmp_path, bodies, times, indexes) -> Timeline:
    withdrawn, gone_at, back_at = WITHDRAWN_BY_THE_FAKE
    jittery, dropped_at, jitter_back_at = JITTER
    with FakePolisenServer(bodies) as api:
        timeline = Timeline(tmp_path, api, times)
        for event_id, since in RECORDED_WITHDRAWALS.items():
            api.withdraw(event_id, since=since)  # ?DateTime= no longer serves them either
        for index in indexes:
            if index == gone_at:
                api.withdraw(withdrawn)
            if index == back_at:
                api.restore(withdrawn)
            if index == dropped_at:
                api.drop_from_feed(jittery)
            if index == jitter_back_at:
                api.restore(jittery)
            report = timeline.feed_and_audit(index)
            assert not report.failed and not report.doubted(), index
    return timeline


def assert_the_withdrawals(timeline: Timeline, bodies: list[bytes], indexes: range) -> None:
    withdrawn, gone_at, back_at = WITHDRAWN_BY_THE_FAKE
    records = timeline.records()
    recorded = {event_id: since for event_id, since in RECORDED_WITHDRAWALS.items() if since - 1 in indexes}
    assert set(records) == {*recorded, withdrawn}, "the jitter and the ids that came back: never marked"
    for event_id, since in recorded.items():
        assert records[event_id] == [("withdrawn", confirming(timeline.audits_of(event_day(bodies, event_id), since)))]
    day = event_day(bodies, withdrawn)
    assert records[withdrawn] == [("withdrawn", confirming(timeline.audits_of(day, gone_at))),
                                  ("republished", timeline.audits_of(day, back_at)[0])], \
        "marked at the second audit of its day after the withdrawal, cleared at the first after its return"
    assert timeline.audits_of(day, back_at)[0] - timeline.audits_of(day, gone_at)[0] < timedelta(days=2)


def confirming(audits: list[datetime]) -> datetime:
    """The audit that confirms a withdrawal: the first CONFIRM_AFTER or more after the first that lacked the event."""
    return next(when for when in audits if when - audits[0] >= CONFIRM_AFTER)


@pytest.mark.parametrize("indexes", [pytest.param(range(50, 64), id="snapshots 50-63"),
                                     pytest.param(range(114), id="all snapshots", marks=pytest.mark.slow)])
def test_withdrawals_are_confirmed_by_the_day_never_by_one_answer(tmp_path, snapshot_bodies, snapshot_times,
                                                                  monkeypatch, capsys, indexes):
    timeline = replay_with_withdrawals(tmp_path, snapshot_bodies, snapshot_times, indexes)
    assert_the_withdrawals(timeline, snapshot_bodies, indexes)
    code, out, err = export(timeline.settings.data_dir, monkeypatch, capsys)
    assert code == 0, err
    withdrawn = {row["id"] for row in map(json.loads, out.splitlines()) if row["withdrawn_at"]}
    assert withdrawn == {event_id for event_id, since in RECORDED_WITHDRAWALS.items() if since - 1 in indexes}, \
        "the fake's withdrawal was cleared by its return"
    assert BACK_AND_FORTH not in timeline.records()


# What is not a withdrawal: an event an edit moved to another day, one present but invalid, one a cut answer lacks.

RECENT_ONLY = Budget(horizon_days=7, per_tick=2, per_day=96)
"""Ticks that audit yesterday and the day before (where the day in question is) and little else: cheap."""
MOVED = (635695, "2026-05-19 21:47:19 +02:00", "2026-05-18 21:47:19 +02:00")
"""An event of 2026-05-19 in the first recorded answers, whose date an edit changes to the 18th from answer 1 on."""
INVALID = (635694, "2026-05-19T21:47:06")
"""An event of 2026-05-19 whose datetime loses its offset from answer 1 on: present in every answer, but invalid."""


def day_ids(api: FakePolisenServer, day: str) -> set[int]:
    return {event["id"] for event in requests.get(api.url, params={"DateTime": day}, timeout=10).json()}


def forget(storage: LocalStorage, event_id: int) -> None:
    """The state forgets an id, as its retention does STATE_RETENTION_DAYS after the last answer that held it."""
    state = read_state(storage.get(STATE_OBJECT), storage)
    seen = {known: entry for known, entry in state.seen.items() if known != event_id}
    storage.put(STATE_OBJECT, encode_state(seen, "forgetting", state.last_answer_at, storage=storage, base=state.base))


def test_an_event_an_edit_moved_to_another_day_is_not_withdrawn_from_its_old_day(tmp_path, snapshot_bodies,
                                                                                 snapshot_times, monkeypatch, capsys):
    moved, old, new = MOVED
    with FakePolisenServer(snapshot_bodies) as api:
        api.edit(moved, since=1, datetime=new)
        timeline = Timeline(tmp_path, api, snapshot_times, RECENT_ONLY)
        for index in (0, 1):
            assert not timeline.feed_and_audit(index).failed
        assert moved not in day_ids(api, old[:10]) and moved in day_ids(api, new[:10]), \
            "the API serves an edited event on its new date only"
        forget(timeline.storage, moved)
        for index in (3, 5):  # both audit 2026-05-19, yesterday, more than CONFIRM_AFTER apart
            report = timeline.audit(index)
            assert "2026-05-19" in [day.day for day in report.audited] and not report.doubted(), index
        assert not (list(timeline.storage.list("withdrawals/")) or read_progress(
            timeline.storage.get(PROGRESS_OBJECT)).absent), "its newest version is on the 18th: moved, not gone"
    code, out, err = export(timeline.settings.data_dir, monkeypatch, capsys, "--all-versions")
    assert code == 0, err
    assert [(row["datetime"], row["withdrawn_at"]) for row in map(json.loads, out.splitlines()) if row["id"] == moved] \
        == [(old.replace(" 21:", "T21:").replace(" +", "+"), None), (new.replace(" 21:", "T21:").replace(" +", "+"), None)]


BACK_ON_ANOTHER_DAY = (635693, "2026-05-19 21:39:52 +02:00", "2026-05-18 21:39:52 +02:00")
"""An event of 2026-05-19 the fake withdraws from answer 1 on and serves again from answer 4, dated the 18th."""


def test_a_withdrawn_event_republished_on_another_day_is_cleared(tmp_path, snapshot_bodies, snapshot_times,
                                                                  monkeypatch, capsys):
    event_id, old, new = BACK_ON_ANOTHER_DAY
    with FakePolisenServer(snapshot_bodies) as api:
        api.edit(event_id, since=4, datetime=new)
        timeline = Timeline(tmp_path, api, snapshot_times, RECENT_ONLY)
        api.withdraw(event_id, since=1)
        for index in (0, 1, 2):  # the audits of 2026-05-19 after answers 1 and 2 lack it: withdrawn
            timeline.feed_and_audit(index)
        assert [status for status, _ in timeline.records()[event_id]] == ["withdrawn"]
        api.restore(event_id)
        report = timeline.feed_and_audit(4)  # the feed shows it again, dated the 18th: the audit looks at the 19th
        assert report.withdrawals() == {"2026-05-19": {"withdrawn": [], "republished": [event_id]}}
    assert timeline.records()[event_id] == [("withdrawn", confirming(timeline.audits_of(old[:10], 1))),
                                            ("republished", timeline.audits_of(old[:10], 4)[0])]
    code, out, err = export(timeline.settings.data_dir, monkeypatch, capsys)
    assert code == 0, err
    [row] = [row for row in map(json.loads, out.splitlines()) if row["id"] == event_id]
    assert (row["local_date"], row["withdrawn_at"]) == (new[:10], None)


def test_an_event_present_but_invalid_is_neither_suspected_nor_withdrawn(tmp_path, snapshot_bodies, snapshot_times):
    invalid, broken = INVALID
    with FakePolisenServer(snapshot_bodies) as api:
        api.edit(invalid, since=1, datetime=broken)
        timeline = Timeline(tmp_path, api, snapshot_times, RECENT_ONLY)
        for index in (0, 1, 2):  # two answers in a row would have made it ripe
            assert not timeline.feed_and_audit(index).failed
            assert invalid not in load_hints(timeline.host).absent, index
        for index in (3, 5):
            assert not timeline.audit(index).failed
        assert invalid in day_ids(api, "2026-05-19")
        assert len(timeline.audits_of("2026-05-19", 1)) >= 2
    assert invalid not in read_progress(timeline.storage.get(PROGRESS_OBJECT)).absent.get("2026-05-19", {})
    assert timeline.records() == {}, "skipped as invalid, yet in the answers: not withdrawn"


def test_a_days_answer_cut_short_marks_nothing_when_the_next_holds_the_events(tmp_path, snapshot_bodies,
                                                                             snapshot_times):
    with FakePolisenServer(snapshot_bodies) as api:
        timeline = Timeline(tmp_path, api, snapshot_times, RECENT_ONLY)
        for index in (0, 1):
            timeline.feed_and_audit(index)
        api.serve(3)
        whole = sorted(day_ids(api, "2026-05-19"))
        api.add_faults(f"short:{len(whole) - 3}")  # the tick's first request, yesterday: its 3 oldest ids cut off
        report = timeline.audit(3)
        assert report.audited[0].day == "2026-05-19" and report.withdrawn == 0 and not report.doubted()
        assert set(read_progress(timeline.storage.get(PROGRESS_OBJECT)).absent["2026-05-19"]) == set(whole[:3])
        report = timeline.audit(5)
        assert "2026-05-19" in [day.day for day in report.audited]
    assert read_progress(timeline.storage.get(PROGRESS_OBJECT)).absent == {}
    assert timeline.records() == {}, "one answer lacking them proves nothing: the next held them"


# The tick as cron runs it: its metrics and health, and kill -9 at each of its writes.

WITHDRAWN_IN_ANSWER_1 = 635380
"""Dated 2026-05-17, inside the dense range of recorded answers 1 and 2."""


def withdraw_before_the_tick(collector, fake_api) -> None:
    """Three feed runs; the fake withdraws the event from answer 1 on, so two answers lack it; then a
    tick whose answer of the day, served an hour ago, is the first to lack it: absent, not yet withdrawn."""
    collector.env.update({"AUDIT_HORIZON_DAYS": "3660", "AUDIT_REQUESTS_PER_TICK": "4"})
    fake_api.withdraw(WITHDRAWN_IN_ANSWER_1, since=1)
    for index in (0, 1, 2):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    fake_api.state.clock = lambda: time.time() - 3600
    try:
        first = collector.run("--audit")
    finally:
        fake_api.state.clock = time.time
    assert first.returncode == 0, first.log[-800:]
    assert ("audit 2026-05-17: 1 events absent (635380), withdrawn if an answer 30 min later lacks them too"
            in first.log)
    assert raw_records(collector.data_dir) == []


def raw_records(data_dir: Path) -> list[tuple[int, str]]:
    return [(record["id"], record["status"]) for path in sorted((data_dir / "withdrawals").rglob("*.jsonl"))
            for record in map(json.loads, path.read_text().splitlines())]


def test_the_tick_counts_what_it_found_in_its_metrics_health_and_textfile(collector, fake_api, tmp_path):
    withdraw_before_the_tick(collector, fake_api)
    suspected = [json.loads(path.read_text())["counts"].get("suspected_withdrawals") for path in collector.metrics_files()]
    assert suspected == [0, 1, 1]
    prom = tmp_path / "prom"
    prom.mkdir()
    result = collector.run("--audit", env={"PROMETHEUS_TEXTFILE_DIR": str(prom)})
    assert result.returncode == 0, result.log[-800:]
    assert "audit 2026-05-17 (confirm): 51 events" in result.log, "the day is due again for the confirmation"
    assert "audit 2026-05-17: 1 withdrawn (635380), 0 republished" in result.log
    health = json.loads((collector.log_dir / "health-audit.json").read_text())
    assert (health["audit_withdrawn"], health["audit_republished"]) == (1, 0)
    assert health["withdrawals"] == {"2026-05-17": {"withdrawn": [WITHDRAWN_IN_ANSWER_1], "republished": []}}
    assert health["withdrawals_doubted"] == {}
    tick = sorted(collector.metrics_dir.glob("audit-*.json"))[-1]
    counts = json.loads(tick.read_text())["counts"]
    assert (counts["audit_withdrawn"], counts["audit_republished"], counts["audit_doubted_days"]) == (1, 0, 0)
    assert raw_records(collector.data_dir) == [(WITHDRAWN_IN_ANSWER_1, "withdrawn")]
    gauges = HealthCollector(collector.log_dir / "health.json", timedelta(minutes=45))
    scraped = {sample.name: sample.value for family in text_string_to_metric_families(generate_latest(gauges).decode())
               for sample in family.samples}
    assert scraped["polisen_health_audit_last_tick_withdrawn_events"] == 1
    assert scraped["polisen_health_audit_last_tick_republished_events"] == 0

    fake_api.restore(WITHDRAWN_IN_ANSWER_1)
    fake_api.serve(3)
    assert collector.run().returncode == 0
    assert collector.run("--audit", env={"PROMETHEUS_TEXTFILE_DIR": str(prom)}).returncode == 0
    assert raw_records(collector.data_dir) == [(WITHDRAWN_IN_ANSWER_1, "withdrawn"), (WITHDRAWN_IN_ANSWER_1, "republished")]
    textfile = {sample.name: sample.value for family in text_string_to_metric_families(
        (prom / "polisen_collector_audit.prom").read_text()) for sample in family.samples}
    assert {name: value for name, value in textfile.items() if "withdrawn" in name or "republished" in name} == {
        "polisen_collector_audit_last_tick_withdrawn_events": 0, "polisen_collector_audit_last_tick_republished_events": 1,
        "polisen_collector_audit_withdrawn_events_total": 1, "polisen_collector_audit_republished_events_total": 1}
    assert textfile["polisen_collector_audit_last_tick_success"] == 1
    assert sorted(path.name for path in prom.iterdir()) == ["polisen_collector_audit.prom"], "the runs' file is theirs"


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-put", "mid-put", "after-put"])
def test_kill_at_each_write_of_a_tick_loses_no_record_and_repeats_none(collector, fake_api, tmp_path, point):
    withdraw_before_the_tick(collector, fake_api)
    restore = collector.checkpoint()
    killed: list[str] = []
    nth = 1
    while True:
        restore()
        writes = tmp_path / f"writes-{nth}"
        crashed = collector.run("--audit", script="tests/crash_run.py",
                                env={"CRASH_POINT": point, "CRASH_AT": str(nth), "CRASH_LOG": str(writes)})
        if crashed.returncode != -signal.SIGKILL:
            assert crashed.returncode == 0, crashed.log[-800:] + crashed.stderr[-800:]
            break
        killed.append(writes.read_text().splitlines()[-1].split(" ", 1)[1])
        rerun = collector.run("--audit")
        assert rerun.returncode == 0, rerun.log[-800:]
        assert raw_records(collector.data_dir) == [(WITHDRAWN_IN_ANSWER_1, "withdrawn")], killed[-1]
        nth += 1
    assert raw_records(collector.data_dir) == [(WITHDRAWN_IN_ANSWER_1, "withdrawn")]
    assert any(name.startswith("withdrawals/") for name in killed), killed
    assert {"withdrawal-hints.json", "metadata/audit.json"} <= set(killed), killed
