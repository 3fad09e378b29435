"""Hostile answers, odd values and a clock that jumps (issue 12): one clear line, nothing lost, nothing stuck.

Each hostile answer is replayed by the fake API (tests/fake_polisen.py, `faults`) to the
collector run in-process; the test checks the exit code, the line the operator sees, and
that a later normal run leaves the archive complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from archive_truth import assert_archive_complete
from conftest import Collector, clear_settings
from fake_clock import FakeClock

from polisen_collector.api.client import ApiOptions, PolisenClient
from polisen_collector.cli import health_check


class Workspace:
    """The conftest's collector workspace (collect_events.main() in-process), seen as the exit
    code and everything a run printed followed by what it added to its log file."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.root, self.data_dir, self.log_dir = collector.workdir, collector.data_dir, collector.log_dir
        self.env = collector.env

    def run(self, *args: str, **env: str) -> tuple[int, str]:
        """`env` holds settings for this run only, on top of the workspace's own."""
        result = self.collector.run(*args, env=env)
        return result.returncode, result.stdout + result.stderr + result.log

    def health(self) -> dict:
        return self.collector.health()


@pytest.fixture
def workspace(collector) -> Workspace:
    return Workspace(collector)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if " ERROR " in line]


def assert_failed_with(workspace: Workspace, code: int, output: str, text: str) -> None:
    """Exit 1, one ERROR line saying `text`, and a failed health file saying the same."""
    assert code == 1, output
    lines = error_lines(output)
    assert len(lines) == 1 and text in lines[0], output
    health = workspace.health()
    assert health["status"] == "failed"
    assert text in health["error"]["message"]


def assert_recovers(workspace: Workspace, bodies: list[bytes]) -> None:
    """The next normal run succeeds and the archive holds every version of the answer served."""
    code, output = workspace.run()
    assert code == 0, output
    assert workspace.health()["status"] == "success"
    assert_archive_complete(workspace.data_dir, bodies, copies_allowed=False)


# -- the API client ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["badutf8", "gzip-unlabelled", "mislabelled:gzip", "mislabelled:deflate"])
def test_a_body_that_is_not_utf8_json_is_retried_like_a_truncated_one(workspace, fake_api, snapshot_bodies, fault):
    fake_api.add_faults(fault)
    code, output = workspace.run()
    assert code == 0, output
    assert "API response unusable" in output and "retry 1 of 3" in output
    assert len(fake_api.requests) == 2
    assert_archive_complete(workspace.data_dir, snapshot_bodies[:1], copies_allowed=False)


def test_a_body_cut_inside_a_character_every_time_fails_with_one_line(workspace, fake_api, snapshot_bodies):
    fake_api.add_faults(*["badutf8"] * 4)
    code, output = workspace.run()
    assert_failed_with(workspace, code, output, "body is not UTF-8 text (unexpected end of data")
    assert "after 3 retries" in error_lines(output)[0]
    assert_recovers(workspace, snapshot_bodies[:1])


@pytest.mark.parametrize("fault", ["status:503", "reset"])
def test_retries_wait_1_2_4_seconds(fake_api, snapshot_bodies, fault):
    slept: list[float] = []
    client = PolisenClient(ApiOptions(url=fake_api.url, backoff_factor=1.0), sleep=slept.append)
    fake_api.add_faults(fault, fault, fault)
    result = client.fetch_events()
    assert slept == [1.0, 2.0, 4.0]
    assert result.events == json.loads(snapshot_bodies[0])


def test_body_failures_and_transport_failures_share_one_backoff_sequence(fake_api):
    slept: list[float] = []
    client = PolisenClient(ApiOptions(url=fake_api.url, backoff_factor=0.5), sleep=slept.append)
    fake_api.add_faults("empty", "status:503", "truncated")
    assert client.fetch_events().retries == 3
    assert slept == [0.5, 1.0, 2.0]


def test_a_trickling_body_meets_the_whole_request_deadline(workspace, fake_api, snapshot_bodies):
    fake_api.add_faults("trickle:0.2")
    code, output = workspace.run(API_CONNECT_TIMEOUT="0.5", API_READ_TIMEOUT="0.5")
    assert_failed_with(workspace, code, output, "the answer took longer than 1.5 s (API_CONNECT_TIMEOUT + 2 x")
    assert_recovers(workspace, snapshot_bodies[:1])


@pytest.mark.slow
def test_trickling_headers_meet_the_deadline_too(workspace, fake_api, snapshot_bodies):
    fake_api.add_faults("trickle-headers:0.2")
    code, output = workspace.run(API_CONNECT_TIMEOUT="0.5", API_READ_TIMEOUT="0.5", API_MAX_RETRIES="1")
    assert_failed_with(workspace, code, output, "the answer took longer than 1.5 s (API_CONNECT_TIMEOUT + 2 x "
                                                "API_READ_TIMEOUT; its headers were not complete)")
    assert len(fake_api.requests) == 1, "one deadline for the request and its retries: none is left for a retry"
    assert_recovers(workspace, snapshot_bodies[:1])


@pytest.mark.slow  # 2 s of real waits
def test_the_deadline_counts_from_each_request_not_from_the_waits_before_it(fake_api, snapshot_bodies):
    fake_api.add_faults("status:503")
    options = ApiOptions(url=fake_api.url, backoff_factor=2.0, connect_timeout=0.5, read_timeout=0.5)
    result = PolisenClient(options).fetch_events()  # a real 2 s wait, longer than the 1.5 s deadline
    assert (result.retries, result.events) == (1, json.loads(snapshot_bodies[0]))


def test_a_redirect_to_plain_http_on_a_remote_host_is_refused(workspace, fake_api, snapshot_bodies):
    fake_api.add_faults("redirect:http://collector-test.invalid/api/events")
    code, output = workspace.run()
    assert_failed_with(workspace, code, output,
                       "refused to follow a redirect to http://collector-test.invalid/api/events")
    assert not (workspace.data_dir / "events").exists()
    assert_recovers(workspace, snapshot_bodies[:1])


def test_a_redirect_to_a_loopback_address_is_followed(workspace, fake_api, snapshot_bodies):
    fake_api.add_faults(f"redirect:{fake_api.url}?moved=1")
    code, output = workspace.run()
    assert code == 0, output
    assert [request.query for request in fake_api.requests] == [{}, {"moved": ["1"]}]
    assert_archive_complete(workspace.data_dir, snapshot_bodies[:1], copies_allowed=False)


def test_a_304_to_a_request_without_validators_is_a_bad_answer(workspace, fake_api, snapshot_bodies):
    fake_api.add_faults("304")
    code, output = workspace.run()
    assert code == 0, output
    assert "HTTP 304 Not Modified to a request that sent no validators" in output
    assert_archive_complete(workspace.data_dir, snapshot_bodies[:1], copies_allowed=False)
    fake_api.add_faults(*["304"] * 4)
    (workspace.log_dir / "api-cache.json").unlink()
    code, output = workspace.run()
    assert_failed_with(workspace, code, output, "HTTP 304 Not Modified to a request that sent no validators")


def test_a_reason_phrase_with_a_pipe_does_not_split_the_nagios_line(workspace, fake_api, capsys):
    fake_api.add_faults(*["reason:Busy | try later"] * 4)
    code, output = workspace.run()
    assert_failed_with(workspace, code, output, "HTTP 503 Busy | try later")
    assert health_check.main(["--nagios", "--health-file", str(workspace.log_dir / "health.json")]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("POLISEN_COLLECTOR WARNING: last run")  # one failure: WARNING (docs/monitoring.md)
    assert "HTTP 503 Busy / try later" in line
    text, perfdata = line.split(" | ")
    assert perfdata.startswith("age=") and "|" not in text


# -- the rate-limit ledger ---------------------------------------------------------------------------


@pytest.fixture
def clock(workspace, fake_api, monkeypatch) -> FakeClock:
    """Runs with the rate limit on, on a fake clock."""
    from polisen_collector import parts
    from polisen_collector.api.rate_limit import RateLimiter
    from polisen_collector.storage.local import LocalStorage

    fake = FakeClock(1_780_000_000.0)
    fake_api.state.clock = fake
    monkeypatch.setattr(parts, "rate_limiter",
                        lambda settings: RateLimiter(LocalStorage(settings.log_dir), clock=fake, sleep=fake.sleep))
    workspace.env["API_RATE_LIMIT"] = "on"
    return fake


def ledger(workspace: Workspace) -> dict:
    return json.loads((workspace.log_dir / "api-requests.json").read_text())


def test_a_huge_retry_after_is_kept_in_the_ledger_and_honoured_by_later_runs(workspace, fake_api, clock,
                                                                             snapshot_bodies):
    from polisen_collector.api.rate_limit import MAX_RETRY_AFTER

    fake_api.add_faults("429:100000")
    code, output = workspace.run()
    assert_failed_with(workspace, code, output, "the API asked us to wait (Retry-After); "
                                                f"the next request is allowed in {MAX_RETRY_AFTER:.0f} s")
    assert "asked us to wait 100000 s (Retry-After); waiting the maximum, 3600 s" in output
    assert ledger(workspace)["not_before"] == clock.now + MAX_RETRY_AFTER
    clock.now += 1800
    code, output = workspace.run()
    assert_failed_with(workspace, code, output, "the next request is allowed in 1800 s")
    assert len(fake_api.requests) == 1
    clock.now += 1800
    assert_recovers(workspace, snapshot_bodies[:1])


def test_ledger_times_in_the_future_are_read_as_now(workspace, fake_api, clock, snapshot_bodies):
    workspace.log_dir.mkdir()
    future = clock.now + 86400
    (workspace.log_dir / "api-requests.json").write_text(
        json.dumps({"format": 1, "not_before": future, "requests": [future - 10, future]}))
    start = clock.now
    code, output = workspace.run()
    assert code == 0, output
    assert "api-requests.json holds times up to 86400 s in the future (was the clock stepped back?)" in output
    assert fake_api.requests[0].time == start + 10  # the rules still hold: 10 s after the entries read as now
    assert max(ledger(workspace)["requests"]) == fake_api.requests[0].time
    assert_archive_complete(workspace.data_dir, snapshot_bodies[:1], copies_allowed=False)


def test_a_ledger_of_nan_values_is_read_on_the_strict_side_and_written_back_clean(workspace, fake_api, clock,
                                                                                caplog):
    """Before issue 22 the tools read `nan` as a time no comparison holds for: 4 runs in 0.5 s, and NaN written back."""
    workspace.log_dir.mkdir()
    planted = workspace.log_dir / "api-requests.json"
    planted.write_text('{"format": 1, "not_before": NaN, "requests": [NaN, "nan", 1780000000.0]}')
    for _ in range(3):
        assert workspace.run()[0] == 0
    sent = [request.time for request in fake_api.requests]
    assert all(later - earlier >= 10 for earlier, later in zip(sent, sent[1:], strict=False)), sent
    assert sent[0] >= 1_780_000_010, "the unreadable values count as requests made now: 10 s first"
    clean = json.loads(planted.read_text(), parse_constant=lambda name: pytest.fail(f"{name} written back"))
    assert all(isinstance(value, float) for value in clean["requests"])
    assert "api-requests.json holds 3 values that are not times (first: nan); reading them as now" in caplog.text


# -- the events of an answer -------------------------------------------------------------------------


def answer_file(tmp_path: Path, events: list, name: str = "answer.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(events, ensure_ascii=False), encoding="utf-8")
    return path


def test_the_same_id_twice_with_different_content_is_stored_once_per_version(workspace, fake_api, tmp_path,
                                                                            snapshot_bodies):
    events = json.loads(snapshot_bodies[0])
    twin = {**events[0], "summary": events[0]["summary"] + " (twin)"}
    answer = answer_file(tmp_path, [*events, twin])
    for _ in range(3):
        fake_api.add_faults(f"replace:{answer}")
        code, output = workspace.run()
        assert code == 0, output
    assert_archive_complete(workspace.data_dir, [answer.read_bytes()], copies_allowed=False)
    fake_api.add_faults(f"replace:{answer}")
    code, output = workspace.run()
    assert "new 0, updated 0, unchanged 501" in output, output
    code, output = workspace.run()  # the plain answer: only the first version, nothing to store
    assert "new 0, updated 0, unchanged 500" in output, output
    fake_api.add_faults(f"replace:{answer_file(tmp_path, [twin, *events[1:]], 'back.json')}")
    code, output = workspace.run()  # back to the twin alone: an edit again, stored
    assert "new 0, updated 1, unchanged 499" in output, output


def test_ids_beyond_2_53_and_absurd_dates_are_invalid_events(workspace, fake_api, tmp_path, snapshot_bodies):
    events = json.loads(snapshot_bodies[0])
    hostile = [{**events[0], "id": 2**63}, {**events[1], "id": 2**53 + 1},
               {**events[2], "id": 7, "datetime": "0001-01-01 0:00:00 +02:00"},
               {**events[3], "id": 8, "datetime": "9999-12-31 23:59:59 +01:00"}]
    fake_api.add_faults(f"replace:{answer_file(tmp_path, [*events, *hostile])}")
    code, output = workspace.run()
    assert code == 0, output
    assert f"skipping invalid event: id {2**63} is not a positive integer up to 2**53" in output
    assert "id 7: datetime '0001-01-01 0:00:00 +02:00' is not between 2000-01-01 and two days from now" in output
    assert "id 8: datetime '9999-12-31 23:59:59 +01:00' is not between" in output
    assert "invalid 4" in output
    health = workspace.health()
    assert (health["status"], health["gap"]) == ("success", None)
    assert_archive_complete(workspace.data_dir, snapshot_bodies[:1], copies_allowed=False)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_skips_stored_lines_with_huge_ids_or_absurd_dates(workspace, fake_api, tmp_path, snapshot_bodies,
                                                                 capsys, monkeypatch, fmt):
    """Lines an older collector stored before these checks existed are skipped and counted, never a crash."""
    from polisen_collector.cli import export_events

    code, output = workspace.run()
    assert code == 0, output
    sample = json.loads(snapshot_bodies[0])[0]
    old = {"events/2026/05/20/20260520T000000.000Z-aaaaaa.jsonl": {**sample, "id": 2**64},
           "events/0001/01/01/20260520T000000.000Z-aaaaaa.jsonl": {**sample, "id": 9, "datetime": "0001-01-01 0:00:00 +02:00"},
           "events/9999/12/31/20260520T000000.000Z-aaaaaa.jsonl": {**sample, "id": 10, "datetime": "9999-12-31 23:00:00 +01:00"}}
    for name, event in old.items():
        (workspace.data_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace.data_dir / name).write_text(json.dumps(event) + "\n")
    capsys.readouterr()
    clear_settings(monkeypatch)  # the developer's own STORAGE=oci must not reach the export
    out = tmp_path / f"export.{fmt}"
    assert export_events.main(["--data-dir", str(workspace.data_dir), "--env-file", os.devnull,
                                "--format", fmt, "-o", str(out)]) == 0
    stderr = capsys.readouterr().err
    assert f"exported {len(json.loads(snapshot_bodies[0]))} rows" in stderr
    assert "3 bad lines skipped" in stderr
    assert out.stat().st_size > 0


def test_invalid_events_are_summarised_not_each_logged_in_full(workspace, fake_api, tmp_path, snapshot_bodies):
    events = json.loads(snapshot_bodies[0])
    hostile = [{**event, "id": str(index) * 30_000} for index, event in enumerate(events[:200])]
    fake_api.add_faults(f"replace:{answer_file(tmp_path, hostile + events[200:])}")
    code, output = workspace.run()
    assert code == 0, output
    warnings = [line for line in output.splitlines() if "invalid event" in line]
    assert len(warnings) == 6 and all(len(line) < 400 for line in warnings), warnings
    assert "skipping 195 more invalid events (200 of 500 in this answer)" in warnings[-1]
    assert (workspace.log_dir / "polisen-collector.log").stat().st_size < 10_000
    assert_archive_complete(workspace.data_dir, [json.dumps(events[200:]).encode()], copies_allowed=False)


@pytest.mark.parametrize("broken", [500, 251])
def test_an_answer_of_mostly_invalid_events_fails_the_run(workspace, fake_api, tmp_path, snapshot_bodies, broken):
    """A schema change (every id a string) is not "success, 0 new" (issue 11, item 4)."""
    events = json.loads(snapshot_bodies[0])
    changed = [{**event, "id": str(event["id"])} for event in events[:broken]] + events[broken:]
    fake_api.add_faults(f"replace:{answer_file(tmp_path, changed)}")
    code, output = workspace.run()
    assert_failed_with(workspace, code, output,
                       f"{broken} of 500 events in the API's answer are invalid (first: id '{events[0]['id']}' is "
                       "not a positive integer up to 2**53); has the API changed its format? nothing was stored")
    assert not (workspace.data_dir / "events").exists()
    assert_recovers(workspace, snapshot_bodies[:1])


# -- settings ----------------------------------------------------------------------------------------

NOT_EMPTY = "must not be empty (name a folder; ./ for the working directory)"
ASCII = "must be printable ASCII (no line breaks or accented letters): it goes into an HTTP header"


@pytest.mark.parametrize("name,value,allowed", [
    ("API_CONNECT_TIMEOUT", "inf", "must be a number of seconds above 0 and at most 300"),
    ("API_READ_TIMEOUT", "nan", "must be a number of seconds above 0 and at most 300"),
    ("API_READ_TIMEOUT", "0", "must be a number of seconds above 0 and at most 300"),
    ("API_RETRY_AFTER_MAX", "nan", "must be a number of seconds from 0 to 3600"),
    ("API_BACKOFF_FACTOR", "1e12", "must be a number of seconds from 0 to 60"),
    ("API_MAX_RETRIES", "1e3", "must be a whole number from 0 to 10"),
    ("STATE_RETENTION_DAYS", "999999", "must be a whole number from 1 to 3650"),
    ("METRICS_RETENTION_DAYS", "1e9", "must be a whole number from 1 to 3650"),
    ("COMPACT_AFTER_DAYS", "1e9", "must be a whole number from 1 to 3650"),
    ("DATA_DIR", "", NOT_EMPTY),
    ("METRICS_DIR", " ", NOT_EMPTY),
    ("API_CONTACT_EMAIL", "ops@example.org\r\nX-Injected: 1", ASCII),
    ("API_CONTACT_EMAIL", "drift@exempel.se (Åsa)", ASCII),
    ("POLISEN_API_URL", "https://polisen.se:99999/api/events", "its port must be from 1 to 65535"),
    ("OCI_ENDPOINT", "https://objectstorage.example:0", "its port must be from 1 to 65535"),
])
def test_an_odd_setting_is_one_line_and_exit_2_before_any_request(workspace, fake_api, snapshot_bodies,
                                                                   name, value, allowed):
    code, output = workspace.run(**{name: value})
    assert code == 2, output
    assert output.splitlines() == [f"configuration error: {name}={value!r} is invalid: {allowed}"]
    assert fake_api.requests == []
    assert_recovers(workspace, snapshot_bodies[:1])


def test_an_empty_log_dir_is_refused_and_health_check_says_why(workspace, fake_api, capsys, monkeypatch):
    code, output = workspace.run(LOG_DIR="")
    assert code == 2
    assert output.splitlines() == ["configuration error: LOG_DIR='' is invalid: must not be empty "
                                   "(name a folder; ./ for the working directory)"]
    assert not any(workspace.root.iterdir()) and fake_api.requests == []
    clear_settings(monkeypatch, LOG_DIR="")
    assert health_check.main(["--env-file", os.devnull]) == 1
    assert capsys.readouterr().out.startswith("UNHEALTHY: cannot tell where the health file is: LOG_DIR='' is invalid")


def test_a_huge_bad_value_is_cut_in_the_error_line(workspace):
    code, output = workspace.run(API_READ_TIMEOUT="9" * 30_000)
    assert code == 2
    assert len(output) < 300 and "is invalid: must be a number of seconds above 0 and at most 300" in output


# -- files in LOG_DIR --------------------------------------------------------------------------------


def test_a_symlinked_lock_file_is_refused_and_its_target_left_alone(workspace, fake_api, tmp_path, snapshot_bodies):
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate me")
    workspace.log_dir.mkdir()
    (workspace.log_dir / "collect_events.lock").symlink_to(precious)
    code, output = workspace.run()
    assert_failed_with(workspace, code, output, "collect_events.lock is a symbolic link; refusing to follow it")
    assert precious.read_text() == "do not truncate me"
    assert fake_api.requests == []
    (workspace.log_dir / "collect_events.lock").unlink()
    assert_recovers(workspace, snapshot_bodies[:1])


def test_a_backfill_day_of_mostly_invalid_events_stops_the_backfill_with_one_line(workspace, fake_api, tmp_path,
                                                                                  snapshot_bodies):
    events = json.loads(snapshot_bodies[0])
    fake_api.add_faults(f"replace:{answer_file(tmp_path, [{**event, 'id': -1} for event in events])}")
    code, output = workspace.run("--backfill", "2026-05-19..2026-05-19")
    assert code == 1, output
    assert "backfill stopped at 2026-05-19: 500 of 500 events in the API's answer are invalid" in output
    assert fake_api.requests[0].query == {"DateTime": ["2026-05-19"]}
    code, output = workspace.run("--backfill", "2026-05-19..2026-05-19")
    assert code == 0, output
    assert_archive_complete(workspace.data_dir, [fake_api.state.events_dated("2026-05-19", 0)], copies_allowed=False)


def test_fifos_in_place_of_the_run_s_own_files_never_block_a_run(workspace, fake_api, tmp_path, snapshot_bodies):
    """Opening a FIFO for reading blocks until something writes to it: a run that did would hold
    its lock, and refuse every later run, for ever. Each such file is read only when regular:
    a cache or hint is then read as missing and rewritten, the state is one clear failure."""
    textfiles = tmp_path / "textfiles"
    env = {"PROMETHEUS_TEXTFILE_DIR": str(textfiles), "PAGES_PER_RUN": "1"}
    fake_api.serve(0)
    first = workspace.collector.run(env=env, process=True, timeout=60)
    assert first.returncode == 0, first.log[-800:]
    blocking = [workspace.log_dir / "api-cache.json", workspace.log_dir / "pages-next-due",
                textfiles / "polisen_collector.prom"]
    for path in blocking:
        path.unlink()
        os.mkfifo(path)
    second = workspace.collector.run(env=env, process=True, timeout=60)  # a blocked run would time out
    assert second.returncode == 0, second.log[-800:]
    assert all(path.is_file() for path in blocking), "each was read as missing, then written anew"
    assert workspace.health()["status"] == "success"

    state = workspace.data_dir / "metadata" / "last_seen.json"
    state.unlink()
    os.mkfifo(state)
    third = workspace.collector.run(process=True, timeout=60)
    assert_failed_with(workspace, third.returncode, third.stderr + third.log,
                       "cannot read metadata/last_seen.json in local folder")
    assert "not a regular file" in error_lines(third.log)[0]


def test_an_oversized_cache_is_read_no_further_than_a_megabyte(workspace, fake_api):
    """A cache grown huge (disk garbage, a wrong file copied in) is not the run's record: its
    first 1 MiB + 1 byte are read, it reads as unreadable, and it is written anew."""
    fake_api.serve(0)
    assert workspace.run()[0] == 0
    cache = workspace.log_dir / "api-cache.json"
    valid = cache.read_bytes()
    cache.write_bytes(b" " * (3 << 20) + valid)  # valid JSON, were it read whole: the run would send its etag
    fake_api.requests.clear()
    code, output = workspace.run()
    assert code == 0, output
    assert [r.status for r in fake_api.requests] == [200], "no cached validators: a full fetch, not a 304"
    assert cache.read_bytes() == valid


def test_an_oversized_page_hint_or_textfile_is_read_no_further_than_a_megabyte(workspace, fake_api, tmp_path):
    """The same cap: a hint that would say "idle" and a textfile that would carry the run
    counters on, each behind 3 MiB of blanks, read as unreadable: the page step runs, the
    counters start again."""
    textfiles = tmp_path / "textfiles"
    env = {"PROMETHEUS_TEXTFILE_DIR": str(textfiles), "PAGES_PER_RUN": "1"}
    fake_api.serve(0)
    assert workspace.run(**env)[0] == 0
    hint, textfile = workspace.log_dir / "pages-next-due", textfiles / "polisen_collector.prom"
    hint.write_bytes(b" " * (3 << 20) + b"idle")
    textfile.write_bytes(b"\n" * (3 << 20) + textfile.read_bytes())
    code, output = workspace.run(**env)  # the API answers 304: only a due hint sends the run to the page step
    assert code == 0, output
    assert hint.stat().st_size < 100, "the page step ran and wrote its hint anew"
    assert 'polisen_collector_runs_total{outcome="success"} 1.0' in textfile.read_text()
