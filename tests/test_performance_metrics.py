"""RunMetrics, metrics retention and the node_exporter textfile; end to end with real collector runs."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from archive_truth import archived_lines
from prometheus_client.parser import text_string_to_metric_families

from polisen_collector.metrics.prometheus import write_prometheus_textfile
from polisen_collector.metrics.run_metrics import STEPS, RunMetrics

T0 = datetime(2026, 5, 20, 5, 49, 43, tzinfo=UTC)


class FakeClock:
    """perf_counter and UTC now that move only when told."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def perf(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds - 100.0)


def test_steps_counts_and_errors_are_recorded_and_saved(tmp_path):
    clock = FakeClock()
    metrics = RunMetrics("20260520T054943.000Z-abcdef", clock=clock.perf, now=clock.now)
    with metrics.step("api_fetch"):
        clock.seconds += 1.25
    with pytest.raises(ConnectionError, match="peer hung up"), metrics.step("save_events"):
        clock.seconds += 0.5
        raise ConnectionError("peer hung up")
    metrics.count(new_events=3, api_events=500)
    metrics.add("state_conflicts", 1)
    metrics.add("state_conflicts", 1)
    clock.seconds += 0.25
    metrics.finish("failed")

    path = metrics.save(tmp_path)
    assert path == tmp_path / "run-20260520T054943.000Z-abcdef.json"
    assert json.loads(path.read_text()) == {
        "run_id": "20260520T054943.000Z-abcdef",
        "version": "1.0.0",
        "started_at": "2026-05-20T05:49:43+00:00",
        "finished_at": "2026-05-20T05:49:45+00:00",
        "outcome": "failed",
        "timings": {"api_fetch": 1.25, "save_events": 0.5, "total": 2.0},
        "counts": {"new_events": 3, "api_events": 500, "state_conflicts": 2},
        "errors": [{"type": "ConnectionError", "message": "peer hung up",
                    "time": "2026-05-20T05:49:44.750000+00:00", "step": "save_events"}],
    }
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left behind"
    assert metrics.summary() == (
        "run 20260520T054943.000Z-abcdef failed: fetched 500, new 3, updated 0, unchanged 0, invalid 0, "
        "0 bytes on the wire (0 decoded), 0 retries, 2.00 s"
    )


def test_the_same_error_recorded_twice_is_kept_once():
    metrics = RunMetrics("x")
    error = TimeoutError("read timed out")
    with pytest.raises(TimeoutError), metrics.step("api_fetch"):
        raise error
    metrics.record_error(error)
    assert [(e["type"], e["message"], e.get("step")) for e in metrics.errors] == [
        ("TimeoutError", "read timed out", "api_fetch")]


def families(path) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(path.read_text())}


def test_textfile_keeps_counters_and_last_success_across_runs(tmp_path, caplog):
    first = RunMetrics("a", now=lambda: T0)
    first.count(new_events=4, bytes_wire=26111, http_status=200)
    first.timings["api_fetch"] = 0.5
    first.finish("success")
    path = write_prometheus_textfile(tmp_path, first)
    second = RunMetrics("b", now=lambda: T0 + timedelta(minutes=30))
    second.record_error(RuntimeError("boom"))
    second.finish("failed")
    write_prometheus_textfile(tmp_path, second)

    parsed = families(path)
    assert {s.labels["outcome"]: s.value for s in parsed["polisen_collector_runs"]} == {"success": 1, "failed": 1}
    assert parsed["polisen_collector_last_success_timestamp_seconds"][0].value == T0.timestamp()
    assert parsed["polisen_collector_last_run_timestamp_seconds"][0].value == (T0 + timedelta(minutes=30)).timestamp()
    assert parsed["polisen_collector_last_run_success"][0].value == 0
    assert parsed["polisen_collector_last_run_errors"][0].value == 1
    assert "polisen_collector_last_run_new_events" not in parsed, "a failed run reports no counts it did not make"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["polisen_collector.prom"]

    path.write_text("this is { not prometheus\n")
    write_prometheus_textfile(tmp_path, first)
    assert "counters restart" in caplog.text
    parsed = families(path)
    assert {s.labels["outcome"]: s.value for s in parsed["polisen_collector_runs"]} == {"success": 1}
    assert parsed["polisen_collector_last_run_new_events"][0].value == 4
    assert parsed["polisen_collector_last_run_wire_bytes"][0].value == 26111
    assert {s.labels["step"]: s.value for s in parsed["polisen_collector_last_run_step_seconds"]}.keys() == {
        "api_fetch"}, "the total is a gauge of its own: a sum() over the steps counts nothing twice"
    assert parsed["polisen_collector_last_run_duration_seconds"][0].value == first.timings["total"]


def test_real_runs_leave_metrics_that_match_the_archive(collector, fake_api, tmp_path):
    prom_dir = tmp_path / "prom"
    ancient = collector.metrics_dir / "run-20200101T000000.000Z-000000.json"
    ancient.parent.mkdir(parents=True)
    ancient.write_text("{}")
    # A pause ages the files before it by a week at most (a clock jump must delete no history):
    # a day's retention lets the run delete the file of 2020.
    env = {"PROMETHEUS_TEXTFILE_DIR": str(prom_dir), "METRICS_RETENTION_DAYS": "1"}
    served = []
    for index in (0, 5, 9):
        fake_api.serve(index)
        served.append(len(fake_api.current_events()))
        assert collector.run(env=env).returncode == 0
    fake_api.add_faults(*["status:503"] * 4)
    failed = collector.run(env=env)
    assert failed.returncode == 1

    assert not ancient.exists(), "retention deleted the old metrics file"
    files = collector.metrics_files()
    runs = [json.loads(p.read_text()) for p in files]
    assert [p.name for p in files] == [f"run-{run['run_id']}.json" for run in runs]
    assert [run["outcome"] for run in runs] == ["success", "success", "success", "failed"]

    stored_by_run = Counter(name.rsplit("events-", 1)[1].removesuffix(".jsonl")
                            for name, _ in archived_lines(collector.data_dir))
    objects_by_run = Counter(p.name.removeprefix("events-").removesuffix(".jsonl")
                             for p in (collector.data_dir / "events").rglob("*.jsonl"))
    for run, events_served in zip(runs[:3], served, strict=True):
        counts = run["counts"]
        assert set(STEPS) <= set(run["timings"]), run["timings"]
        assert counts["api_events"] == events_served
        assert counts["new_events"] + counts["updated_events"] == stored_by_run[run["run_id"]]
        assert counts["new_events"] + counts["updated_events"] + counts["unchanged_events"] == events_served
        assert counts["objects_written"] == objects_by_run[run["run_id"]]
        assert counts["http_status"] == 200 and counts["retries"] == 0 and counts["invalid_events"] == 0
        assert 0 < counts["bytes_wire"] < counts["bytes_decoded"]
    assert runs[0]["counts"]["seen_ids"] == 0 and runs[0]["counts"]["new_events"] == served[0]
    assert runs[2]["counts"]["state_ids"] == len({e["id"] for _, e in archived_lines(collector.data_dir)})
    assert sum(stored_by_run.values()) == sum(r["counts"]["new_events"] + r["counts"]["updated_events"]
                                               for r in runs[:3])
    assert runs[3]["errors"][0]["type"] == "ApiError" and "503" in runs[3]["errors"][0]["message"]

    parsed = families(prom_dir / "polisen_collector.prom")
    assert {s.labels["outcome"]: s.value for s in parsed["polisen_collector_runs"]} == {"success": 3, "failed": 1}
    assert parsed["polisen_collector_last_run_success"][0].value == 0
    assert parsed["polisen_collector_last_success_timestamp_seconds"][0].value == pytest.approx(
        datetime.fromisoformat(runs[2]["finished_at"]).timestamp())


def test_performance_metrics_before_the_first_run_says_so_and_exits_0(tmp_path, monkeypatch, capsys):
    from polisen_collector.cli import performance_metrics

    monkeypatch.delenv("METRICS_DIR", raising=False)
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (tmp_path / "missing", empty):
        argv = ["--env-file", str(env_file), "--metrics-dir", str(folder)]
        assert performance_metrics.main(argv) == 0
        assert capsys.readouterr() == (
            f"no metrics yet in {folder}: every run of collect_events.py leaves one run-*.json file there.\n", "")
        assert performance_metrics.main([*argv, "--json"]) == 0
        assert capsys.readouterr() == ("null\n", "")

    (empty / "run-20260520T054943.000Z-abcdef.json").write_text('{"run_id": ')
    assert performance_metrics.main(["--env-file", str(env_file), "--metrics-dir", str(empty)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"{empty / 'run-20260520T054943.000Z-abcdef.json'} is unreadable: ")
    (empty / "run-20260520T054943.000Z-abcdef.json").write_text('{"counts": [1]}')  # JSON, not a run's metrics
    assert performance_metrics.main(["--env-file", str(env_file), "--metrics-dir", str(empty)]) == 1
    assert capsys.readouterr() == ("", f"{empty / 'run-20260520T054943.000Z-abcdef.json'} is unreadable: "
                                       "lacks run_id, started_at or outcome\n")
