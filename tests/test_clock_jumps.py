"""A clock that jumps a year ahead and back (issue 22, row 13): no metrics history deleted, a
future-dated run flagged and not taken as the last, the state's retention counted from the
newest event rather than from the clock."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from polisen_collector.analysis import load_runs
from polisen_collector.cli import analyze_metrics, performance_metrics
from polisen_collector.metrics.run_metrics import RunMetrics, prune_metrics

T0 = datetime(2026, 5, 20, 6, 0, tzinfo=UTC)
YEAR = timedelta(days=365)


def run_file(directory, moment: datetime, new_events: int = 1) -> str:
    run_id = f"{moment:%Y%m%dT%H%M%S}.000Z-{new_events:06x}"
    metrics = RunMetrics(run_id, now=lambda: moment)
    metrics.count(new_events=new_events, api_events=500)
    metrics.finish("success")
    return metrics.save(directory).name


def test_a_clock_jump_deletes_no_metrics_history(tmp_path):
    """Before issue 22 the tools deleted 14 files down to the 2 written while the clock was a year ahead."""
    history = [run_file(tmp_path, T0 + timedelta(minutes=30 * n)) for n in range(14)]
    ahead = T0 + YEAR
    for n, moment in enumerate((ahead, ahead + timedelta(minutes=30))):  # two runs while the clock is wrong
        run_file(tmp_path, moment, new_events=100 + n)
        assert prune_metrics(tmp_path, 90, now=moment) == 0
    back = T0 + timedelta(hours=7, minutes=30)
    run_file(tmp_path, back)
    assert prune_metrics(tmp_path, 90, now=back) == 0
    assert set(history) < {path.name for path in tmp_path.iterdir()}


def test_retention_still_counts_along_a_steady_history(tmp_path):
    """Runs every 6 hours for 100 days: the files more than 90 days older than the newest go."""
    newest = T0 + timedelta(days=100)
    names = {run_file(tmp_path, T0 + timedelta(hours=6 * n)): T0 + timedelta(hours=6 * n) for n in range(401)}
    (tmp_path / f".run-{T0 - timedelta(days=1):%Y%m%dT%H%M%S}.000Z-aaaaaa.json.k2j3.tmp").write_text("{")
    for other in ("notes.txt", "run-latest.json", "polisen_collector.prom"):
        (tmp_path / other).write_text("{}")
    deleted = prune_metrics(tmp_path, 90, now=newest + timedelta(days=3))  # relative to the newest file, not now
    expected = {name for name, moment in names.items() if newest - moment > timedelta(days=90)}
    assert deleted == len(expected) + 1, "and the temp file a killed write left"
    assert {path.name for path in tmp_path.iterdir()} == set(names) - expected | {
        "notes.txt", "run-latest.json", "polisen_collector.prom"}


def test_a_run_dated_in_the_future_is_flagged_not_taken_as_the_last(tmp_path, capsys, monkeypatch):
    from conftest import clear_settings

    clear_settings(monkeypatch)
    for n in range(3):
        run_file(tmp_path, datetime.now(UTC) - timedelta(hours=3 - n), new_events=n)
    future = run_file(tmp_path, datetime.now(UTC) + YEAR, new_events=99)
    loaded = load_runs(tmp_path)
    assert [run.counts["new_events"] for run in loaded.runs] == [0, 1, 2]
    assert loaded.skipped == [(future, "dated in the future (was the clock wrong when it ran?)")]

    assert performance_metrics.main(["--metrics-dir", str(tmp_path), "--env-file", "/dev/null", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["counts"]["new_events"] == 2
    assert err.splitlines() == [f"warning: 1 newer metrics files are dated in the future (was the clock wrong when "
                                f"they were written?), the newest {future}; showing the last run before now"]

    assert analyze_metrics.main(["--metrics-dir", str(tmp_path), "--env-file", "/dev/null", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["events"]["new"]["total"] == 3
    assert f"{future}: dated in the future" in err


def test_state_retention_counts_from_the_newest_event_not_the_clock(collector, fake_api, snapshot_bodies,
                                                                   monkeypatch):
    """Before issue 22 the tools pruned the state by its clock: a year ahead, every id not in the answer went (527 -> 500)."""
    from polisen_collector.archive import ingest
    from polisen_collector.run import feed

    fake_api.serve(0)
    assert collector.run().returncode == 0
    fake_api.serve(20)
    assert collector.run().returncode == 0
    remembered = set(collector.state()["seen"])
    answered = {str(event["id"]) for event in json.loads(snapshot_bodies[20])}
    assert len(remembered - answered) > 20, "ids the last answer no longer shows"

    ahead = date.today() + YEAR
    monkeypatch.setattr(ingest, "utc_today", lambda: ahead)
    monkeypatch.setattr(feed, "utc_today", lambda: ahead)
    fake_api.serve(21)  # a new answer (not a 304), so the state is written
    assert collector.run().returncode == 0
    assert set(collector.state()["seen"]) >= remembered
    monkeypatch.undo()
    fake_api.serve(22)
    assert collector.run().returncode == 0
    assert set(collector.state()["seen"]) >= remembered


def test_one_state_entry_dated_far_ahead_makes_the_state_forget_nothing_else():
    """Retention counts from the newest event, but never from beyond today: one poisoned entry
    dated 9999 would otherwise make the state forget every other id, and their events be stored
    again by the next run."""
    from polisen_collector.archive.state import prune

    today = date(2026, 5, 20)
    seen = {1: ("0123456789abcdef", "9999-12-31", "9999-12-31"), 2: ("0123456789abcdef", "2026-05-19", "2026-05-19"),
            3: ("0123456789abcdef", "2026-03-01", "2026-04-01")}
    assert prune(seen, today, 30) == {1: seen[1], 2: seen[2]}
