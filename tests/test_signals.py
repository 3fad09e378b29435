"""SIGINT and SIGTERM (Ctrl-C, systemctl stop, timeout): a run stops at its next safe point, says so
in one line, records itself as interrupted and exits 130/143; a signal at any write loses nothing.

Real processes: the signal is the point. tests/crash_run.py sends the signal at a chosen write.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from archive_truth import assert_archive_complete
from conftest import REPO

from polisen_collector import interrupt
from polisen_collector.interrupt import Interrupted, stop_on_signals

EXIT_OF = {"INT": 130, "TERM": 143}


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def start(collector, *args: str, env: dict[str, str] | None = None, stderr: int | None = subprocess.PIPE,
          ) -> subprocess.Popen:
    """collect_events.py as a real process in the collector's workspace."""
    return subprocess.Popen(collector.command(*args), cwd=collector.workdir, env={**collector.env, **(env or {})},
                            stdout=subprocess.PIPE, stderr=stderr, text=True)


def signalled_run(collector, name: str, at: int, *args: str, match: str = "") -> subprocess.CompletedProcess:
    """A run that sends itself SIG<name> right after its `at`-th store write (of an object whose
    name contains `match`), and goes on."""
    return collector.run(*args, script="tests/crash_run.py",
                         env={"CRASH_POINT": "after-put", "CRASH_AT": str(at), "CRASH_SIGNAL": name,
                              "CRASH_MATCH": match})


def one_stderr_line(result: subprocess.CompletedProcess | tuple[str, str]) -> str:
    stderr = result.stderr if isinstance(result, subprocess.CompletedProcess) else result[1]
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def assert_recorded_as_interrupted(collector, name: str, step: str | None = None) -> None:
    health = collector.health()
    assert health["status"] == "interrupted"
    assert health["error"] == {"type": "Interrupted", "message": f"interrupted by SIG{name}"}
    metrics = collector.last_metrics()
    assert metrics["outcome"] == "interrupted"
    recorded = {(error["type"], error.get("step")) for error in metrics["errors"]}
    assert ("Interrupted", step) in recorded, metrics["errors"]


# --- the flag and the waits, in-process ----------------------------------------------------------------

def test_a_wait_ends_at_once_on_a_signal_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        with pytest.raises(Interrupted) as stopped:
            interrupt.pause(30)
        assert time.monotonic() - started < 5
        assert (str(stopped.value), stopped.value.exit_code) == ("interrupted by SIGTERM", 143)
        with pytest.raises(Interrupted):
            interrupt.check()
    assert signal.getsignal(signal.SIGTERM) is before
    assert interrupt.requested() is None, "the stop asked for ends with the run"


# --- a signal at every write of a run ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["TERM", "INT"])
def test_a_signal_at_any_write_stops_after_the_state_write_and_loses_nothing(fake_api, collector, snapshot_bodies,
                                                                            name):
    """The run goes on from the write the signal hit to its next safe point, after the state:
    unlike kill -9, it leaves not even an identical copy for the next run to write."""
    assert collector.run().returncode == 0
    fake_api.serve(1)
    restore = collector.checkpoint()
    signalled = 0
    for at in range(1, 20):
        restore()
        result = signalled_run(collector, name, at)
        if result.returncode == 0:  # fewer writes than `at`: no signal sent
            break
        signalled += 1
        assert result.returncode == EXIT_OF[name], result.stderr + result.log
        line = one_stderr_line(result)
        assert line.startswith(f"run interrupted by SIG{name}: stopped at a safe point after storing "), line
        assert "nothing is half written, the next run carries on (log: " in line
        assert "Traceback" not in result.log and "KeyboardInterrupt" not in result.stderr
        assert_recorded_as_interrupted(collector, name)
        assert collector.health()["consecutive_failures"] == 1
        assert_archive_complete(collector.data_dir, snapshot_bodies[:2], copies_allowed=False)
        assert collector.run().returncode == 0
        assert_archive_complete(collector.data_dir, snapshot_bodies[:2], copies_allowed=False)
        assert collector.health()["status"] == "success"
    assert signalled >= 2, "the signal must have hit an event write and the state write"


# --- a signal in a wait: at once ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["TERM", "INT"])
def test_a_signal_ends_a_retry_wait_at_once(fake_api, collector, name):
    fake_api.add_faults("status:503", "status:503", "status:503")
    run = start(collector, env={"API_BACKOFF_FACTOR": "60", "API_MAX_RETRIES": "2"})
    wait_until(lambda: fake_api.requests)
    time.sleep(0.3)  # into the 60 s wait before the first retry
    sent = time.monotonic()
    run.send_signal(getattr(signal, f"SIG{name}"))
    out, err = run.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert run.returncode == EXIT_OF[name] and out == ""
    assert one_stderr_line((out, err)).startswith(f"run interrupted by SIG{name}: stopped at a safe point before "
                                                  "storing any event")
    assert len(fake_api.requests) == 1
    assert_recorded_as_interrupted(collector, name, step="api_fetch")


@pytest.mark.slow
def test_a_signal_ends_a_rate_limit_wait_at_once_and_a_terminal_is_told_of_the_wait(fake_api, collector):
    """API_RATE_LIMIT=on: the host's ledger says the last request went out 2 s ago, so the run waits 8 s."""
    collector.log_dir.mkdir()
    ledger = {"format": 1, "not_before": 0.0, "requests": [time.time() - 2]}
    (collector.log_dir / "api-requests.json").write_text(json.dumps(ledger))
    leader, follower = pty.openpty()
    try:
        run = start(collector, env={"API_RATE_LIMIT": "on"}, stderr=follower)
        os.close(follower)
        said = b""
        while b"\n" not in said:
            said += os.read(leader, 1000)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=5)
        with_exit = said + read_all(leader)
    finally:
        os.close(leader)
    lines = with_exit.decode().splitlines()
    assert run.returncode == 143 and fake_api.requests == []
    assert re.fullmatch(r"waiting [4-8] s before the next request to the API \(retries back off; the API's usage "
                        r"rules ask for 10 s between requests\); the run goes on \(Ctrl-C stops it safely\)", lines[0])
    assert len(lines) == 2 and lines[1].startswith("run interrupted by SIGTERM: stopped at a safe point before")
    assert_recorded_as_interrupted(collector, "TERM", step="api_fetch")


def read_all(fd: int) -> bytes:
    """What a pty still holds once its writer has exited."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1000)
        except OSError:  # EIO: the other side is closed
            return data
        if not chunk:
            return data
        data += chunk


@pytest.mark.slow
def test_a_signal_in_the_page_pacing_stops_after_the_page_in_hand(fake_api, collector):
    """Pages come 10 s apart here: the signal ends the wait, the page queue records the page fetched."""
    run = start(collector, env={"API_RATE_LIMIT": "on", "PAGES_PER_RUN": "5", "PAGE_INTERVAL_SECONDS": "10"})
    wait_until(lambda: fake_api.page_requests())
    time.sleep(0.3)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=10)
    assert run.returncode == 143, err
    assert one_stderr_line((out, err)).startswith("run interrupted by SIGTERM: stopped at a safe point after storing")
    assert len(fake_api.page_requests()) == 1
    counts = collector.last_metrics()["counts"]
    assert (counts["page_requests"], counts["pages_stored"]) == (1, 1)
    from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue
    from polisen_collector.storage.local import LocalStorage

    storage = LocalStorage(collector.data_dir)
    queue, _ = decode_queue(storage.get(QUEUE_OBJECT).data, storage)
    assert sum(1 for entry in queue.values() if entry.fingerprint) == 1, "the page fetched is in the queue"
    assert_recorded_as_interrupted(collector, "TERM")


def test_a_second_signal_ends_the_process_at_once():
    """The first leaves the job to its next safe point (here it never comes: a sleep no signal ends);
    the second ends the process as that signal does by default. A process: its end is the point."""
    job = ("import os, signal, time\n"
           "from polisen_collector.interrupt import stop_on_signals\n"
           "with stop_on_signals():\n"
           "    os.kill(os.getpid(), signal.SIGTERM)\n"
           "    print('the first is noted', flush=True)\n"
           "    os.kill(os.getpid(), signal.SIGINT)\n"
           "    time.sleep(30)\n")
    done = subprocess.run([sys.executable, "-c", job], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (-signal.SIGINT, "the first is noted\n", "")


# --- a signal while a request is on the wire: cut short at once ------------------------------------------

@pytest.fixture
def no_stray_sigterm(monkeypatch):
    """Should the test's signal come after the run (a failure), it must not end the test's process."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    yield
    signal.signal(signal.SIGTERM, previous)


def signal_once_the_request_is_out(requests: Callable[[], list], signum: int) -> threading.Thread:
    def send() -> None:
        wait_until(requests)
        time.sleep(0.3)  # the request is out, its answer is not
        os.kill(os.getpid(), signum)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


@pytest.mark.parametrize("fault", ["slow:30", "trickle:0.5"], ids=["waiting-for-headers", "reading-the-body"])
def test_a_signal_cuts_the_feed_request_on_the_wire_short(fake_api, collector, no_stray_sigterm, fault):
    """In-process (the run's main() in this process, which sends itself the signal): the request would
    take 30 s or more, the run stops within a second or two, recorded as interrupted."""
    fake_api.add_faults(fault)
    sender = signal_once_the_request_is_out(lambda: fake_api.requests, signal.SIGTERM)
    started = time.monotonic()
    result = collector.run()
    sender.join()
    assert time.monotonic() - started < 10
    assert result.returncode == 143, result.stderr + result.log
    assert one_stderr_line(result).startswith("run interrupted by SIGTERM: stopped at a safe point before storing "
                                              "any event;")
    assert len(fake_api.requests) == 1, "the request cut short is not retried"
    assert_recorded_as_interrupted(collector, "TERM", step="api_fetch")
    assert not (collector.data_dir / "events").exists()
    assert collector.run().returncode == 0, "the next run carries on"


def test_a_signal_cuts_the_page_on_the_wire_short_and_its_queue_entry_stays(fake_api, collector, no_stray_sigterm):
    """The events are stored; the page whose answer would take 30 s is neither a failure nor a try:
    its queue entry stays as it was, for the next run."""
    fake_api.add_page_faults("slow:30")
    sender = signal_once_the_request_is_out(fake_api.page_requests, signal.SIGTERM)
    started = time.monotonic()
    result = collector.run(env={"PAGES_PER_RUN": "5"})
    sender.join()
    assert time.monotonic() - started < 10
    assert result.returncode == 143, result.stderr + result.log
    assert one_stderr_line(result).startswith("run interrupted by SIGTERM: stopped at a safe point after storing")
    assert len(fake_api.page_requests()) == 1
    counts = collector.last_metrics()["counts"]
    assert (counts["page_requests"], counts.get("pages_stored", 0), counts.get("pages_failed", 0)) == (1, 0, 0)
    from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue
    from polisen_collector.storage.local import LocalStorage

    storage = LocalStorage(collector.data_dir)
    queue, _ = decode_queue(storage.get(QUEUE_OBJECT).data, storage)
    assert queue and not any(entry.fingerprint or entry.tries for entry in queue.values())
    assert_recorded_as_interrupted(collector, "TERM")


def test_an_aborted_client_refuses_every_later_request(fake_api):
    from polisen_collector.api.client import ApiOptions, PolisenClient

    client = PolisenClient(ApiOptions(url=fake_api.url))
    stop = Interrupted(signal.SIGINT)
    client.abort(stop)
    with pytest.raises(Interrupted) as raised:
        client.fetch_events()
    assert raised.value is stop and fake_api.requests == []
    client.close()


def test_outside_a_job_nothing_is_registered_to_cut_short():
    def action(stop: Interrupted) -> None:
        raise AssertionError("never run outside a job")

    interrupt.on_stop(action)
    with stop_on_signals():
        ran: list[int] = []
        interrupt.on_stop(lambda stop: ran.append(stop.signum))
        os.kill(os.getpid(), signal.SIGTERM)
        assert ran == [signal.SIGTERM]
        interrupt.on_stop(lambda stop: ran.append(-stop.signum))
        assert ran == [signal.SIGTERM, -signal.SIGTERM], "registered after the stop: run at once"


# --- the other jobs -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_signal_stops_an_on_demand_backfill_between_days(fake_api, collector):
    fake_api.serve(40)
    days = "2026-05-20..2026-05-23"
    result = signalled_run(collector, "TERM", 1, "--backfill", days, match="events/")
    assert result.returncode == 143, result.stderr + result.log
    assert one_stderr_line(result).startswith("backfill interrupted by SIGTERM: the days done are stored and ticked "
                                              "off, the others stay queued")
    assert len(fake_api.requests) == 1
    pending = json.loads((collector.data_dir / "metadata" / "backfill.json").read_text())["pending"]
    assert sorted(pending) == ["2026-05-21", "2026-05-22", "2026-05-23"]
    assert collector.last_metrics()["outcome"] == "interrupted"
    assert collector.run("--backfill", days).returncode == 0
    assert json.loads((collector.data_dir / "metadata" / "backfill.json").read_text())["pending"] == {}


@pytest.mark.slow
def test_a_signal_stops_an_audit_tick_between_days(fake_api, collector):
    result = signalled_run(collector, "INT", 1, "--audit")
    assert result.returncode == 130, result.stderr + result.log
    assert one_stderr_line(result).startswith("audit tick interrupted by SIGINT: stopped between two days")
    assert len(fake_api.requests) == 1
    audit_health = json.loads((collector.log_dir / "health-audit.json").read_text())
    assert (audit_health["status"], len(audit_health["days_audited"])) == ("interrupted", 1)
    audit_metrics = json.loads(sorted(collector.metrics_dir.glob("audit-*.json"))[-1].read_text())
    assert (audit_metrics["outcome"], audit_metrics["counts"]["audit_days"]) == ("interrupted", 1)
    assert collector.run("--audit").returncode == 0
    assert json.loads((collector.log_dir / "health-audit.json").read_text())["status"] == "success"


@pytest.mark.slow
def test_a_signal_stops_compaction_between_days(fake_api, collector, snapshot_bodies):
    for index in range(0, 30, 5):
        fake_api.serve(index)
        assert collector.run().returncode == 0
    textfiles = collector.workdir / "textfiles"
    collector.env["PROMETHEUS_TEXTFILE_DIR"] = str(textfiles)
    result = signalled_run(collector, "TERM", 1, "--compact")
    assert result.returncode == 143, result.stderr + result.log
    assert 'polisen_collector_compaction_runs_total{outcome="interrupted"} 1.0' in (
        textfiles / "polisen_collector_compaction.prom").read_text()
    assert one_stderr_line(result).startswith("compaction interrupted by SIGTERM: stopped between two days")
    compacted = sorted(path.parent for path in collector.data_dir.glob("events/*/*/*/compacted-*.jsonl"))
    assert len(compacted) == 1, "the day the signal came in is finished, no other is begun"
    assert_archive_complete(collector.data_dir, snapshot_bodies[:26:5])
    assert collector.run("--compact").returncode == 0
    assert_archive_complete(collector.data_dir, snapshot_bodies[:26:5])


def test_exit_codes_of_a_signal_are_documented():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "| 130, 143 |" in readme


def test_under_cron_a_run_that_waits_stays_silent(collector, fake_api):
    """No terminal: the wait the ledger imposes is not said; a successful run prints nothing."""
    collector.log_dir.mkdir()
    ledger = {"format": 1, "not_before": 0.0, "requests": [time.time() - 8.5]}
    (collector.log_dir / "api-requests.json").write_text(json.dumps(ledger))
    started = time.monotonic()
    result = collector.run(env={"API_RATE_LIMIT": "on"})
    assert time.monotonic() - started > 1, "the run waited for the API's 10 s rule"
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert "waiting" in result.log
