"""The collector as cron runs it: partitions, edits, invalid events, state trouble, locks, config."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from archive_truth import archived_lines, archived_versions, versions_in_snapshots
from conftest import Collector
from fake_polisen import FakePolisenServer
from in_process import run_main

from polisen_collector.run.lock import RunLock


def event_lines(collector) -> int:
    return len(archived_lines(collector.data_dir))


def test_first_run_writes_one_object_per_local_date_and_the_state(collector, snapshot_bodies):
    result = collector.run()
    assert result.returncode == 0, result.log + result.stderr
    events = json.loads(snapshot_bodies[0])
    lines = archived_lines(collector.data_dir)
    assert sorted(json.dumps(e, sort_keys=True) for _, e in lines) == sorted(
        json.dumps(e, sort_keys=True) for e in events
    )
    for name, event in lines:
        local_day = event["datetime"].split(" ")[0]
        assert name.startswith("events/" + local_day.replace("-", "/") + "/events-"), (name, event["datetime"])
    raw_file = next((collector.data_dir / "events").rglob("*.jsonl")).read_text(encoding="utf-8")
    assert "ä" in raw_file or "ö" in raw_file or "å" in raw_file
    state = collector.state()
    assert state["format"] == 3
    assert set(map(int, state["seen"])) == {e["id"] for e in events}
    summary = result.log.strip().splitlines()[-1]
    assert "fetched 500, new 500, updated 0, unchanged 0, invalid 0" in summary
    assert (result.stdout, result.stderr) == ("", ""), "cron mails any output of a successful run"


def test_a_run_without_contact_email_warns_in_the_log_only(collector):
    result = collector.run(env={"API_CONTACT_EMAIL": ""})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert "WARNING polisen.collect: API_CONTACT_EMAIL is not set" in result.log


def test_same_answer_again_stores_nothing(collector, fake_api):
    assert collector.run().returncode == 0
    fake_api.state.support_etag = False
    second = collector.run()
    assert second.returncode == 0
    assert "new 0, updated 0, unchanged 500" in second.log
    assert event_lines(collector) == 500


def test_unchanged_feed_costs_one_conditional_request_and_no_write(collector, fake_api):
    assert collector.run().returncode == 0
    state_before = (collector.data_dir / "metadata" / "last_seen.json").stat().st_mtime_ns
    second = collector.run()
    assert second.returncode == 0
    assert "304 Not Modified" in second.log
    assert [r.status for r in fake_api.requests] == [200, 304]
    assert (collector.data_dir / "metadata" / "last_seen.json").stat().st_mtime_ns == state_before


def test_edited_event_is_stored_again_and_latest_version_wins(collector, fake_api, snapshot_bodies):
    for index in range(40, 50):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    archived = archived_versions(collector.data_dir)
    truth = versions_in_snapshots(snapshot_bodies[40:50])
    assert archived == truth
    edited = [event_id for event_id, versions in archived.items() if len(versions) > 1]
    assert 636277 in edited


def test_invalid_events_are_skipped_counted_and_logged(tmp_path, snapshot_bodies):
    events = json.loads(snapshot_bodies[0])[:5]
    broken = [
        {**events[0], "id": "abc"},
        {**events[1], "datetime": "igår"},
        "not an event",
        events[2], events[3], events[4],
    ]
    body = json.dumps(broken, ensure_ascii=False).encode()
    with FakePolisenServer([body]) as server:
        collector = Collector(tmp_path, server.url)
        result = collector.run()
    assert result.returncode == 0, result.log
    assert "fetched 6, new 3, updated 0, unchanged 0, invalid 3" in result.log
    assert f"id {events[1]['id']}: unparseable datetime 'igår'" in result.log
    assert sorted(e["id"] for _, e in archived_lines(collector.data_dir)) == sorted(e["id"] for e in events[2:5])


def test_one_digit_hours_are_archived_in_their_local_day(tmp_path):
    event = {"id": 7, "datetime": "2026-05-20 0:38:09 +02:00", "name": "n", "summary": "s", "url": "/u",
             "type": "Brand", "location": {"name": "Skåne län", "gps": "55.9,13.5"}}
    with FakePolisenServer([json.dumps([event]).encode()]) as server:
        collector = Collector(tmp_path, server.url)
        assert collector.run().returncode == 0
    assert [name for name, _ in archived_lines(collector.data_dir)][0].startswith("events/2026/05/20/")


def test_short_answer_does_not_shrink_the_state(collector, fake_api):
    assert collector.run().returncode == 0
    remembered = set(collector.state()["seen"])
    fake_api.state.support_etag = False
    fake_api.add_faults("short:60")
    assert collector.run().returncode == 0
    assert set(collector.state()["seen"]) == remembered
    assert collector.run().returncode == 0
    assert event_lines(collector) == 500


@pytest.mark.parametrize("damage", [b"{not json", b"", b'{"format": 1, "seen": {"1": "x"}}', b"[1, 2]"])
def test_corrupt_state_is_kept_and_rebuilt_from_the_archive(collector, fake_api, damage):
    for index in range(3):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    lines_before = event_lines(collector)
    state_path = collector.data_dir / "metadata" / "last_seen.json"
    good = collector.state()["seen"]
    state_path.write_bytes(damage)
    fake_api.serve(3)
    result = collector.run()
    assert result.returncode == 0, result.log
    assert "rebuilding the state from the archive" in result.log
    kept = list((collector.data_dir / "metadata").glob("last_seen.json.corrupt-*"))
    assert [path.read_bytes() for path in kept] == [damage]
    new_events = {e["id"] for e in fake_api.current_events()} - set(map(int, good))
    assert event_lines(collector) == lines_before + len(new_events)
    assert set(good) <= set(collector.state()["seen"])


def test_missing_state_with_an_archive_is_rebuilt_not_restarted(collector, fake_api):
    for index in range(2):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    lines_before = event_lines(collector)
    good = collector.state()["seen"]
    (collector.data_dir / "metadata" / "last_seen.json").unlink()
    result = collector.run()
    assert result.returncode == 0
    assert "is missing but the archive has events" in result.log
    assert event_lines(collector) == lines_before
    assert collector.state()["seen"] == good


def test_dry_run_fetches_and_reports_but_writes_nothing(collector):
    result = collector.run("--dry-run")
    assert result.returncode == 0, result.log
    assert "dry run: would store 500 new and 0 updated events" in result.log
    assert not (collector.data_dir / "events").exists()
    assert not (collector.data_dir / "metadata" / "last_seen.json").exists()
    assert collector.metrics_files() == []


def test_a_run_while_another_holds_the_lock_exits_3(collector, fake_api):
    collector.log_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(collector.log_dir / "collect_events.lock"):
        result = collector.run()
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("another run (pid ") and "holds" in line and "polisen-collector.log" in line
    assert result.stdout == ""
    assert fake_api.requests == []
    assert not (collector.data_dir / "events").exists()


def test_overlapping_cron_runs_store_each_event_once(collector, fake_api):
    fake_api.add_faults("slow:1.5")
    first = subprocess.Popen(collector.command(), cwd=collector.workdir, env=collector.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = collector.log_dir / "collect_events.lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text() == str(first.pid)):  # the first run holds the lock
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.02)
    second = collector.run()
    assert first.wait(timeout=30) == 0, first.stdout.read()
    first.stdout.close()
    assert second.returncode == 3
    assert event_lines(collector) == 500


@pytest.mark.parametrize("env,message", [
    ({"STORAGE": "s3"}, "STORAGE='s3' is invalid: must be one of local, oci"),
    ({"POLISEN_API_URL": "http://polisen.se/api/events"},
     "POLISEN_API_URL='http://polisen.se/api/events' is invalid: must use https"),
    ({"POLISEN_API_URL": "polisen.se"}, "POLISEN_API_URL='polisen.se' is invalid"),
    ({"API_READ_TIMEOUT": "soon"}, "API_READ_TIMEOUT='soon' is invalid"),
    ({"API_MAX_RETRIES": "-1"}, "API_MAX_RETRIES='-1' is invalid: must be a whole number from 0 to 10"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is invalid"),
    ({"API_RATE_LIMIT": "off", "POLISEN_API_URL": "https://polisen.se/api/events"}, "API_RATE_LIMIT=off is refused"),
    ({"STORAGE": "oci", "OCI_ENDPOINT": "http://objectstorage.example.com"},
     "OCI_ENDPOINT='http://objectstorage.example.com' is invalid: must use https"),
])
def test_bad_configuration_is_one_line_and_exit_2_before_any_request(collector, fake_api, env, message):
    result = collector.run(env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("configuration error: ")
    assert message in result.stderr
    assert fake_api.requests == []


def test_unwritable_data_dir_is_a_configuration_error(collector, fake_api):
    blocker = collector.workdir / "file"
    blocker.write_text("x")
    result = collector.run(env={"DATA_DIR": str(blocker / "data")})
    assert result.returncode == 2
    assert f"DATA_DIR='{blocker / 'data'}' is not a writable folder" in result.stderr
    assert fake_api.requests == []


def test_env_file_settings_are_read_and_flags_override_them(collector, fake_api, tmp_path):
    env_file = tmp_path / "settings.env"
    env_file.write_text(f"DATA_DIR={tmp_path / 'from-env-file'}\nLOG_LEVEL=DEBUG\n")
    env = {key: value for key, value in collector.env.items() if key != "DATA_DIR"}
    result = run_main("collect_events.py", ["--env-file", str(env_file)], env, collector.workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "from-env-file" / "metadata" / "last_seen.json").exists()
    flags = ["--env-file", str(env_file), "--data-dir", str(tmp_path / "flag")]
    flagged = run_main("collect_events.py", flags, env, collector.workdir)
    assert flagged.returncode == 0
    assert (tmp_path / "flag" / "metadata" / "last_seen.json").exists()


def test_log_file_rotates_at_its_size_limit_and_says_when_http_is_used(collector, fake_api):
    for _ in range(8):
        assert collector.run(env={"LOG_MAX_BYTES": "1000", "LOG_BACKUP_COUNT": "2"}).returncode == 0
    logs = sorted(path.name for path in collector.log_dir.glob("polisen-collector.log*"))
    assert logs == ["polisen-collector.log", "polisen-collector.log.1", "polisen-collector.log.2"]
    assert all((collector.log_dir / name).stat().st_size <= 1000 for name in logs)
    text = "".join((collector.log_dir / name).read_text() for name in logs)
    assert "using plain http for loopback API" in text


def test_a_failed_fetch_records_its_retries_in_the_metrics(collector, fake_api):
    fake_api.add_faults(*["status:503"] * 4)
    result = collector.run()
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("run failed: ") and "HTTP 503 Service Unavailable after 3 retries" in line
    assert line.endswith(f"(log: {collector.log_dir / 'polisen-collector.log'})")
    assert result.stdout == ""
    assert "API request failed (HTTP 503); retry 3 of 3" in result.log, "retries go to the log file, not stderr"
    [metrics_file] = collector.metrics_files()
    metrics = json.loads(metrics_file.read_text())
    assert metrics["outcome"] == "failed"
    assert (metrics["counts"]["retries"], metrics["counts"]["api_requests"]) == (3, 4)
    assert metrics["errors"][0]["type"] == "ApiError"


def test_a_configuration_error_with_a_failing_ping_is_still_one_stderr_line(collector, fake_api):
    result = collector.run(env={"STORAGE": "s3", "HEALTHCHECK_PING_URL": "http://127.0.0.1:9/ping"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["configuration error: STORAGE='s3' is invalid: must be one of local, oci"]
    assert collector.health()["error"]["type"] == "ConfigError"
