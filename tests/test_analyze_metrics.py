"""analyze_metrics.py over generated histories whose statistics are known."""

from __future__ import annotations

import json
import os
import re
import stat
import statistics
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO, SETTING_NAMES
from in_process import run_main

START = datetime(2026, 4, 20, 0, 0, tzinfo=UTC)
SLOTS = 6 * 7 * 48  # six weeks of runs every 30 minutes
MISSING = set(range(100, 105)) | set(range(1500, 1530))
DOCUMENTED_KEYS = {"metrics_dir", "since", "period", "files", "outcomes", "success_rate", "failure_rate",
                   "top_errors", "steps", "events", "bytes_wire", "schedule", "trends", "audit"}
STATS = {"count", "mean", "median", "p95", "min", "max", "stdev"}


def history() -> list[dict]:
    """Metrics documents in the collector's format, with outcomes, failures and gaps at known places."""
    runs = []
    for slot in range(SLOTS):
        if slot in MISSING:
            continue
        started = START + timedelta(minutes=30 * slot, seconds=slot % 7, milliseconds=slot % 997)
        run_id = f"{started:%Y%m%dT%H%M%S}.{started.microsecond // 1000:03d}Z-{slot:06x}"
        fetch = 0.4 + (slot % 13) / 100 + slot / SLOTS
        doc = {"run_id": run_id, "version": "1.0.0", "started_at": started.isoformat(),
               "finished_at": (started + timedelta(seconds=2)).isoformat(), "outcome": "success",
               "timings": {}, "counts": {}, "errors": []}
        if slot % 97 == 3:
            doc["outcome"] = "locked"
            doc["errors"] = [{"type": "LockHeld", "message": "another run holds the lock", "time": run_id}]
        elif slot % 50 == 7 or slot % 61 == 11:
            doc["outcome"] = "failed"
            message = "HTTP 503 (after 3 retries)" if slot % 50 == 7 else "empty body (after 3 retries)"
            doc["errors"] = [{"type": "ApiError", "message": message, "time": run_id, "step": "api_fetch"}]
            doc["timings"] = {"api_fetch": fetch + 7, "total": fetch + 7.01}
            doc["counts"] = {"retries": 3}
        else:
            doc["timings"] = {"metadata_fetch": 0.01 + (slot % 3) / 1000, "api_fetch": fetch,
                              "deduplication": 0.005, "save_events": 0.02 + (slot % 5) / 100,
                              "metadata_update": 0.03, "total": fetch + 0.2}
            doc["counts"] = {"http_status": 200, "bytes_wire": 20000 + (slot % 11) * 100, "bytes_decoded": 170000,
                             "retries": 0, "api_requests": 1, "api_events": 500, "new_events": slot % 5,
                             "updated_events": int(slot % 40 == 0), "unchanged_events": 490, "invalid_events": 0}
        runs.append(doc)
    return runs


def write_history(directory: Path, runs: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for doc in runs:
        (directory / f"run-{doc['run_id']}.json").write_text(json.dumps(doc, indent=2))


def analyze(metrics_dir: Path, *args: str, env: dict | None = None, process: bool = False) -> subprocess.CompletedProcess:
    """analyze_metrics.py's main() in-process; as a real process where the interpreter matters."""
    argv = ["--metrics-dir", str(metrics_dir), "--env-file", os.devnull, *args]
    env = {**{k: v for k, v in os.environ.items() if k not in SETTING_NAMES}, **(env or {})}
    if not process:
        return run_main("analyze_metrics.py", argv, env, metrics_dir.parent)
    return subprocess.run([sys.executable, str(REPO / "analyze_metrics.py"), *argv], capture_output=True, text=True,
                          timeout=60, cwd=metrics_dir.parent, check=False, env=env)


def expected_stats(values: list[float]) -> dict:
    return {"count": len(values), "mean": statistics.mean(values), "median": statistics.median(values),
            "p95": statistics.quantiles(values, n=20, method="inclusive")[18], "min": min(values),
            "max": max(values), "stdev": statistics.stdev(values)}


def started(doc: dict) -> datetime:
    return datetime.fromisoformat(doc["started_at"])


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, list[dict]]:
    runs = history()
    directory = tmp_path_factory.mktemp("analysis") / "metrics"
    write_history(directory, runs)
    return directory, runs


def test_json_report_holds_exactly_the_statistics_of_the_history(generated):
    directory, runs = generated
    done = analyze(directory, "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    doc = json.loads(done.stdout)
    assert set(doc) == DOCUMENTED_KEYS

    collecting = [r for r in runs if r["outcome"] != "locked"]
    successful = [r for r in runs if r["outcome"] == "success"]
    assert doc["period"] == {"runs": len(runs), "first_run": runs[0]["started_at"], "last_run": runs[-1]["started_at"]}
    assert doc["files"] == {"read": len(runs), "skipped": 0, "skipped_files": []}
    outcomes = Counter(r["outcome"] for r in runs)
    assert doc["outcomes"] == dict(outcomes)
    assert doc["success_rate"] == pytest.approx(outcomes["success"] / len(runs), rel=1e-12)
    assert doc["failure_rate"] == pytest.approx(outcomes["failed"] / len(runs), rel=1e-12)
    errors = Counter(f"{e['type']}: {e['message']}" for r in runs for e in r["errors"])
    assert doc["top_errors"] == [{"error": text, "count": n} for text, n in errors.most_common(5)]

    assert list(doc["steps"]) == ["api_fetch", "metadata_fetch", "deduplication", "save_events",
                                  "metadata_update", "total"]
    for step, stats in doc["steps"].items():
        assert set(stats) == STATS
        assert stats == pytest.approx(expected_stats([r["timings"][step] for r in collecting if step in r["timings"]]),
                                      rel=1e-12), step
    for kind in ("new", "updated"):
        values = [r["counts"][f"{kind}_events"] for r in successful]
        assert doc["events"][kind] == pytest.approx({**expected_stats(values), "total": sum(values)}, rel=1e-12)

    wire = [r for r in runs if "bytes_wire" in r["counts"]]
    assert doc["bytes_wire"]["per_run"] == pytest.approx(expected_stats([r["counts"]["bytes_wire"] for r in wire]))
    assert doc["bytes_wire"]["total"] == sum(r["counts"]["bytes_wire"] for r in wire)
    months = {}
    for r in wire:
        month = months.setdefault(r["started_at"][:7], {"runs": 0, "bytes": 0})
        month["runs"] += 1
        month["bytes"] += r["counts"]["bytes_wire"]
    assert doc["bytes_wire"]["per_month"] == months and list(months) == ["2026-04", "2026-05"]

    schedule = doc["schedule"]
    assert schedule["interval_minutes"] == 30
    assert schedule["expected_runs"] == SLOTS
    assert schedule["missed_runs"] == len(MISSING)
    assert [(g["after"], g["before"], g["missed_runs"]) for g in schedule["gaps"]] == [
        (runs[99]["started_at"], runs[100]["started_at"], 5),
        (runs[1494]["started_at"], runs[1495]["started_at"], 30),
    ]


def test_trends_compare_this_week_with_the_four_weeks_before(generated):
    directory, runs = generated
    doc = json.loads(analyze(directory, "--json").stdout)
    newest = started(runs[-1])

    def week(doc_run: dict) -> int:
        return int((newest - started(doc_run)) / timedelta(days=7))

    def api_fetch_mean(weeks: range) -> float:
        return statistics.mean(r["timings"]["api_fetch"] for r in runs
                               if r["outcome"] != "locked" and week(r) in weeks)

    trend = doc["trends"]["api_fetch_seconds"]
    assert trend["this_week"] == pytest.approx(api_fetch_mean(range(1)), rel=1e-12)
    assert trend["weeks_before"] == pytest.approx(api_fetch_mean(range(1, 5)), rel=1e-12)
    assert trend["change"] == pytest.approx(trend["this_week"] / trend["weeks_before"] - 1, rel=1e-12)
    weekly = [None] * 6 + [api_fetch_mean(range(w, w + 1)) for w in range(5, -1, -1)]
    assert [value is None for value in trend["weekly"]] == [value is None for value in weekly]
    assert [v for v in trend["weekly"] if v is not None] == pytest.approx([v for v in weekly if v is not None], rel=1e-12)
    bars = trend["sparkline"]
    assert bars[:6] == " " * 6 and bars[6] == "▁" and bars[-1] == "█", bars
    assert list(bars[6:]) == sorted(bars[6:]), "api_fetch grows steadily in the history"
    runs_per_week = Counter(week(r) for r in runs)
    assert doc["trends"]["runs"]["weekly"] == [0] * 6 + [runs_per_week[w] for w in range(5, -1, -1)]
    success = doc["trends"]["success_rate"]
    this_week = [r for r in runs if week(r) == 0]
    assert success["this_week"] == pytest.approx(sum(r["outcome"] == "success" for r in this_week) / len(this_week))


def test_text_report_shows_each_section(generated):
    directory, runs = generated
    done = analyze(directory)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"{len(runs):,} runs in {directory} from 2026-04-20 00:00 to ")
    for expected in ("Step timings (s)", "  api_fetch ", "Events per successful run", "  new ", "  updated ",
                     "Most common errors:", "ApiError: HTTP 503 (after 3 retries)", "Bytes on the wire per run",
                     "  2026-04 ", "  2026-05 ", f"{len(MISSING)} missed in 2 gaps", "This week: success rate"):
        assert expected in out, expected


def test_the_bytes_sparkline_lines_up_with_the_events_table(generated):
    directory, _ = generated
    lines = analyze(directory).stdout.splitlines()
    events = lines.index(next(line for line in lines if line.startswith("Events per successful run")))
    wire = lines.index(next(line for line in lines if line.startswith("Bytes on the wire per run")))
    assert lines[wire][len("Bytes on the wire per run"):] == lines[events][len("Events per successful run"):]
    column = lines[events].index("12 weeks")
    assert lines[wire + 1].startswith("  all runs ")
    for line in (lines[events + 1], lines[wire + 1]):  # 12 weeks of bars (blank before the history), the change
        assert re.fullmatch(r" *[\u2581-\u2588]+  [+-]\d+\.\d%", line[column:]) and len(line[column:].split()[0]) <= 12, line
        assert line[column - 2:column] == "  " and line[column + 12:column + 14] == "  ", line
    assert lines[wire + 2].startswith("  2026-04 (") and lines[wire + 2].split()[-1] == "MB"


def test_one_run_is_one_run(generated, tmp_path):
    _, runs = generated
    directory = tmp_path / "metrics"
    write_history(directory, runs[:1])
    out = analyze(directory).stdout
    assert out.startswith(f"1 run in {directory} from ")
    assert "Schedule (every 30 min): 1 run expected, 0 missed in 0 gaps\n" in out
    assert "  2026-04 (1 run)  " in out


def test_since_and_days_read_only_recent_runs(generated, tmp_path):
    directory, runs = generated
    since = datetime(2026, 5, 25, tzinfo=UTC)
    doc = json.loads(analyze(directory, "--json", "--since", "2026-05-25").stdout)
    assert doc["period"]["runs"] == sum(started(r) >= since for r in runs)
    assert doc["since"] == since.isoformat()

    recent = tmp_path / "metrics"
    now = datetime.now(UTC)
    shifted = []
    for hours in (1, 30, 50, 24 * 3 + 1, 24 * 8):
        moment = now - timedelta(hours=hours)
        shifted.append({**runs[10], "run_id": f"{moment:%Y%m%dT%H%M%S}.000Z-{hours:06d}",
                        "started_at": moment.isoformat()})
    write_history(recent, shifted)
    assert json.loads(analyze(recent, "--json", "--days", "3").stdout)["period"]["runs"] == 3
    done = analyze(recent, "--days", "0")
    assert done.returncode == 2 and "--days" in done.stderr


def test_unreadable_and_partial_files_are_skipped_counted_and_named(generated, tmp_path):
    _, runs = generated
    directory = tmp_path / "metrics"
    write_history(directory, runs[:20])
    good = json.dumps(runs[20], indent=2)
    bad = {
        "run-20260601T000000.000Z-000001.json": good[: len(good) // 2],
        "run-20260601T000000.000Z-000002.json": "",
        "run-20260601T000000.000Z-000003.json": "[1, 2]",
        "run-20260601T000000.000Z-000004.json": json.dumps({**runs[20], "counts": None}),
        "run-20260601T000000.000Z-000005.json": json.dumps({k: v for k, v in runs[20].items() if k != "outcome"}),
        "run-20260601T000000.000Z-000006.json": json.dumps({**runs[20], "timings": {"total": "slow"}}),
        "run-20260601T000000.000Z-000007.json": json.dumps({**runs[20], "started_at": "yesterday"}),
    }
    for name, text in bad.items():
        (directory / name).write_text(text)
    (directory / "run-20260601T000000.000Z-000008.json").write_bytes(b"\xff\xfe{")

    done = analyze(directory, "--json")
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    assert doc["files"]["read"] == 20 and doc["period"]["runs"] == 20
    assert doc["files"]["skipped"] == 8
    assert [f["file"] for f in doc["files"]["skipped_files"]] == sorted([*bad, "run-20260601T000000.000Z-000008.json"])
    assert "warning: skipped 8 unreadable, partial or future-dated metrics files" in done.stderr
    assert "run-20260601T000000.000Z-000001.json: not valid JSON" in done.stderr
    assert "... and 3 more" in done.stderr
    assert "Traceback" not in done.stderr

    text = analyze(directory)
    assert text.returncode == 0 and text.stdout.startswith("20 runs in ")


def test_no_metrics_yet_is_a_friendly_exit_0(tmp_path):
    missing = tmp_path / "metrics"
    done = analyze(missing)
    assert done.returncode == 0
    assert done.stdout.startswith(f"No metrics yet in {missing}")
    doc = json.loads(analyze(missing, "--json").stdout)
    assert set(doc) == DOCUMENTED_KEYS
    assert doc["period"] == {"runs": 0, "first_run": None, "last_run": None}
    assert doc["steps"] == {} and doc["trends"] == {} and doc["events"]["new"]["count"] == 0


def test_interval_comes_from_the_setting(generated):
    directory, runs = generated
    doc = json.loads(analyze(directory, "--json", env={"RUN_INTERVAL_MINUTES": "15"}).stdout)
    assert doc["schedule"]["interval_minutes"] == 15
    ordinary_pairs = len(runs) - 1 - 2
    assert doc["schedule"]["missed_runs"] == ordinary_pairs * 1 + (2 * 5 + 1) + (2 * 30 + 1)
    bad = analyze(directory, env={"RUN_INTERVAL_MINUTES": "soon"})
    assert bad.returncode == 2 and bad.stderr.startswith("configuration error: RUN_INTERVAL_MINUTES=")


def test_plot_writes_a_png_replacing_the_file_whole_following_the_umask(generated, tmp_path):
    """Written beside and renamed over: a reader of the old picture (here a second link to it) keeps it
    whole; the new one has the umask's mode, as the other files the tools write."""
    directory, _ = generated
    picture = tmp_path / "trends.png"
    picture.write_bytes(b"the old picture")
    os.link(picture, tmp_path / "served.png")
    saved = os.umask(0o027)
    try:
        done = analyze(directory, "--plot", str(picture))
    finally:
        os.umask(saved)
    assert done.returncode == 0, done.stderr
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    assert (tmp_path / "served.png").read_bytes() == b"the old picture"
    assert stat.S_IMODE(picture.stat().st_mode) == 0o640
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == [], "no temp file left"


def test_plot_without_matplotlib_says_how_to_install_it(generated, tmp_path):
    directory, _ = generated
    stub = tmp_path / "stub" / "matplotlib"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    done = analyze(directory, "--plot", str(tmp_path / "x.png"), env={"PYTHONPATH": str(stub.parent)},
                   process=True)  # an interpreter without matplotlib
    assert done.returncode == 2
    assert done.stderr.strip() == (  # a checkout: the locked version (tests/test_installation.py for pip, pipx)
        f"--plot needs matplotlib, the optional extra 'plots': {sys.executable} -m pip install "
        f"-c {REPO / 'requirements-lock.txt'} matplotlib")
    assert not (tmp_path / "x.png").exists()


def test_the_audit_ticks_withdrawals_are_a_weekly_trend(generated, tmp_path):
    """audit-*.json files beside the runs: what the audit found, and withdrawals and returns per week."""
    _, runs = generated
    directory = tmp_path / "metrics"
    write_history(directory, runs[-48 * 21:])  # the last three weeks of runs
    anchor = started(runs[-1])
    withdrawn = {0: 3, 1: 1, 2: 0}  # weeks back from the newest run -> withdrawals confirmed that week
    for week, count in withdrawn.items():
        for tick in range(24 * 7):
            at = anchor - timedelta(weeks=week, hours=tick, minutes=15)
            counts = {"audit_requests": 4, "audit_days": 4, "audit_new": int(tick == 5), "audit_updated": 0,
                      "audit_withdrawn": int(tick < count), "audit_republished": int(week == 1 and tick == 9),
                      "audit_doubted_days": int(week == 2 and tick == 0)}
            (directory / f"audit-{at:%Y%m%dT%H%M%S}.000Z-{week}{tick:05x}.json").write_text(json.dumps({
                "run_id": f"{at:%Y%m%dT%H%M%S}.000Z", "started_at": at.isoformat(), "outcome": "success",
                "timings": {"audit": 40.0}, "counts": counts, "errors": []}))
    done = analyze(directory, "--json")
    assert done.returncode == 0, done.stderr
    audit = json.loads(done.stdout)["audit"]
    assert {key: audit[key] for key in ("ticks", "withdrawn", "republished", "found_missing", "doubted_days")} == {
        "ticks": 3 * 24 * 7, "withdrawn": 4, "republished": 1, "found_missing": 3, "doubted_days": 1}
    assert audit["trends"]["withdrawn_per_week"]["weekly"][-3:] == [0, 1, 3]
    assert audit["trends"]["republished_per_week"]["weekly"][-3:] == [0, 1, 0]
    assert json.loads(done.stdout)["period"]["runs"] == 48 * 21, "the runs' statistics stay the runs'"
    lines = analyze(directory).stdout.splitlines()
    assert "Audit: 504 ticks, 3 missing and 0 edited events found; 1 day answers could not confirm an absence" in lines
    header = next(index for index, line in enumerate(lines) if line.startswith("Withdrawals (from the audit)"))
    events = next(line for line in lines if line.startswith("Events per successful run"))
    assert lines[header].index("12 weeks") == events.index("12 weeks"), "lined up with the tables above"
    assert lines[header + 1].split()[:2] == ["withdrawn", "4"] and lines[header + 2].split()[:2] == ["republished", "1"]


def test_the_plot_draws_the_withdrawals_per_day_when_there_are_audit_ticks(generated):
    import matplotlib.pyplot as plt
    from matplotlib.dates import num2date

    from polisen_collector.analysis import Run, parse_run, trend_figure

    _, runs = generated
    history = [parse_run(json.dumps(doc).encode()) for doc in runs[-48 * 7:]]
    day = started(runs[-1]).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    ticks = [Run(f"tick-{hour}", day + timedelta(hours=hour, minutes=22), "success", {"audit": 40.0},
                 {"audit_withdrawn": int(hour in (3, 9)), "audit_republished": int(hour == 30)}, []) for hour in range(48)]
    figure = trend_figure(history, 30, ticks)
    try:
        assert len(figure.axes) == 5 and figure.axes[4].get_title() == "Withdrawals the audit confirmed"
        [bars] = figure.axes[4].containers
        assert [(num2date(bar.get_x() + bar.get_width() / 2).date(), bar.get_height()) for bar in bars] == [
            (day.date(), 2), ((day + timedelta(days=1)).date(), 0)]
        assert list(figure.axes[4].lines[0].get_ydata()) == [0, 1]
    finally:
        plt.close(figure)
    assert len(trend_figure(history, 30).axes) == 4, "no audit ticks, no fifth panel"
    plt.close("all")
