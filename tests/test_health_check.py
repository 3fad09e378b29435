"""health_check.py against real health files: every verdict, both exit-code conventions, --json."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from in_process import run_main
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from polisen_collector.cli import health_check
from polisen_collector.health.file import write_health
from polisen_collector.health.server import HealthCollector

LOG_HINT = "see polisen-collector.log in LOG_DIR"
STALE_HINT = ("the collector stopped or hangs; check its cron entry or systemd timer, "
              "and for a run stuck holding collect_events.lock")


def record(path: Path, minutes_ago: float, success: bool = True, events: int = 7, duration: float = 1.5,
           error: BaseException | None = None) -> dict:
    return write_health(path, finished_at=datetime.now(UTC) - timedelta(minutes=minutes_ago), success=success,
                        events_processed=events, execution_time=duration, error=error, run_id="run-test")


def check(capsys, path: Path, *args: str) -> tuple[int, list[str]]:
    code = health_check.main(["--health-file", str(path), *args])
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture
def health(tmp_path) -> Path:
    return tmp_path / "health.json"


def test_fresh_success_is_healthy_with_details(capsys, health):
    document = record(health, 10)
    code, lines = check(capsys, health)
    assert code == 0
    assert lines == [
        "HEALTHY: last run 10 min ago succeeded: 7 events processed in 1.50 s",
        f"last run: {document['last_run']} (10 min ago), success",
        f"last success: {document['last_run']}",
        "events processed: 7, execution time: 1.50 s",
        "consecutive failures: 0",
        f"version {document['version']} on host {document['host']}",
        f"run id run-test, health file {health}",
    ]
    code, lines = check(capsys, health, "--nagios")
    assert code == 0
    assert re.fullmatch(
        r"POLISEN_COLLECTOR OK: last run 10 min ago succeeded: 7 events processed in 1\.50 s "
        r"\| age=60[01]s;2700;5400;0 events=7;;;0 duration=1\.500s;;;0 failures=0;0;2;0", lines[0]), lines[0]


def test_stale_is_unhealthy_then_warning_then_critical(capsys, health):
    record(health, 60)
    assert check(capsys, health) == (1, [f"UNHEALTHY: no run for 60 min (limit 45 min): {STALE_HINT}"])
    code, lines = check(capsys, health, "--nagios")
    assert code == 1
    assert lines[0].startswith(f"POLISEN_COLLECTOR WARNING: no run for 60 min (limit 45 min): {STALE_HINT} | age=360")
    assert check(capsys, health, "--max-age-minutes", "75")[0] == 0

    record(health, 100)
    code, lines = check(capsys, health, "--nagios")
    assert code == 2
    assert lines[0].startswith(f"POLISEN_COLLECTOR CRITICAL: no run for 100 min (limit 90 min): {STALE_HINT} |")
    code, lines = check(capsys, health, "--nagios", "--warning", "120", "--critical", "180")
    assert code == 0 and lines[0].endswith(";7200;10800;0 events=7;;;0 duration=1.500s;;;0 failures=0;0;2;0")


def test_failed_last_run_says_since_when_and_why(capsys, health):
    record(health, 200)
    for minutes_ago in (130, 70, 10):
        record(health, minutes_ago, success=False, events=0, duration=0.25,
               error=ConnectionError("HTTPSConnectionPool(host='polisen.se'): Max retries exceeded"))
    message = ("last run 10 min ago failed: ConnectionError: HTTPSConnectionPool(host='polisen.se'): "
               f"Max retries exceeded; last successful run 3 h ago; 3 consecutive failures; {LOG_HINT}")
    assert check(capsys, health) == (1, [f"UNHEALTHY: {message}"])
    code, lines = check(capsys, health, "--nagios")
    assert code == 2
    assert re.fullmatch(re.escape(f"POLISEN_COLLECTOR CRITICAL: {message} | age=60") + r"[01]"
                        + re.escape("s;2700;5400;0 events=0;;;0 duration=0.250s;;;0 failures=3;0;2;0"), lines[0]), lines[0]


def test_failure_without_any_success_on_record(capsys, health):
    record(health, 1, success=False, events=0, error=ValueError("empty body"))
    assert check(capsys, health) == (1, [
        (f"UNHEALTHY: last run 60 s ago failed: ValueError: empty body; no successful run on record; "
        f"1 consecutive failure; {LOG_HINT}")])


def test_an_interrupted_last_run_is_a_warning_saying_which_signal(capsys, health):
    from polisen_collector.interrupt import Interrupted

    record(health, 40)
    write_health(health, finished_at=datetime.now(UTC) - timedelta(minutes=5), success=False, interrupted=True,
                 events_processed=4, execution_time=0.5, error=Interrupted(15), run_id="run-test")
    assert json.loads(health.read_text())["status"] == "interrupted"
    message = f"last run 5 min ago was interrupted by SIGTERM; last successful run 40 min ago; 1 consecutive failure; {LOG_HINT}"
    assert check(capsys, health) == (1, [f"UNHEALTHY: {message}"])
    code, lines = check(capsys, health, "--nagios")
    assert code == 1 and lines[0].startswith(f"POLISEN_COLLECTOR WARNING: {message} | age=30")


@pytest.mark.parametrize("content, message", [
    (None, "does not exist (has the collector ever run?)"),
    ('{"last_run": "2026-06-01T10:00:00+00:00", "status": "succ', "is not valid JSON: Unterminated string"),
    ("", "is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ("[1, 2]", "does not hold a JSON object"),
    ('{"last_run": "2026-06-01T10:00:00+00:00", "status": "success"}', "lacks events_processed, execution_time"),
    (b"\xff\xfe{}", "is not UTF-8 text"),
    ('{"last_run": NaN}', "is not valid JSON: NaN is not a JSON number"),
])
def test_unusable_files_are_unhealthy_and_unknown(capsys, health, content, message):
    if isinstance(content, bytes):
        health.write_bytes(content)
    elif content is not None:
        health.write_text(content)
    code, lines = check(capsys, health)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"UNHEALTHY: health file {health} {message}"), lines[0]
    code, lines = check(capsys, health, "--nagios")
    assert code == 3 and lines == [f"POLISEN_COLLECTOR UNKNOWN: {lines[0].split(': ', 1)[1]}"]
    assert f"health file {health} {message}" in lines[0]


def fields(**changes) -> str:
    document = {"last_run": datetime.now(UTC).isoformat(), "status": "success", "events_processed": 3,
                "execution_time": 0.5, "error": None, "last_success": None, "consecutive_failures": 0}
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize("content, problem", [
    (fields(last_run="2026-06-01 10:00:00"), "last_run '2026-06-01 10:00:00' has no UTC offset, so its age is unknown"),
    (fields(last_run="yesterday"), "last_run 'yesterday' is not an ISO 8601 timestamp"),
    (fields(last_run=1780000000), "last_run 1780000000 is not a timestamp"),
    (fields(last_success="2026-02-30T00:00:00+00:00"),
     "last_success '2026-02-30T00:00:00+00:00' is not an ISO 8601 timestamp"),
    (fields(status="ok"), "status 'ok' is none of 'success', 'failed', 'interrupted'"),
    (fields(events_processed=-1), "events_processed -1 is not a count"),
    (fields(events_processed=True), "events_processed True is not a count"),
    (fields(execution_time="1.5"), "execution_time '1.5' is not a number of seconds"),
    (fields(consecutive_failures=2.5), "consecutive_failures 2.5 is not a count"),
])
def test_fields_it_cannot_use_are_named(capsys, health, content, problem):
    health.write_text(content)
    assert check(capsys, health) == (1, [f"UNHEALTHY: health file {health}: {problem}"])
    assert check(capsys, health, "--nagios") == (3, [f"POLISEN_COLLECTOR UNKNOWN: health file {health}: {problem}"])


def test_future_timestamps_beyond_skew_tolerance_are_unknown(capsys, health):
    future = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    health.write_text(fields(last_run=future.isoformat()))
    code, lines = check(capsys, health, "--nagios")
    assert code == 3
    assert lines == [(f"POLISEN_COLLECTOR UNKNOWN: last run is stamped 3 h in the future ({future.isoformat()}): "
                     "the clocks of the collector's host and this one disagree, so its age is unknown; check NTP")]
    assert check(capsys, health)[0] == 1


def test_small_clock_skew_reads_as_now_and_other_offsets_count(capsys, health):
    ahead = datetime.now(UTC) + timedelta(minutes=2)
    health.write_text(fields(last_run=ahead.isoformat()))
    code, lines = check(capsys, health)
    assert code == 0
    assert lines[0] == "HEALTHY: last run 0 s ago succeeded: 3 events processed in 0.50 s"
    assert re.fullmatch(r"clock skew: last run stamped 1[12]\d s in the future, read as now", lines[1]), lines[1]

    stockholm = datetime.now(UTC).astimezone(timezone(timedelta(hours=2)))
    health.write_text(fields(last_run=(stockholm - timedelta(minutes=50)).isoformat()))
    assert check(capsys, health)[1] == ["UNHEALTHY: no run for 50 min (limit 45 min): " + STALE_HINT]


def test_json_mode_prints_verdict_and_data(capsys, health):
    document = record(health, 100, success=False, events=0, error=TimeoutError("read timed out"))
    code, lines = check(capsys, health, "--json")
    assert code == 1
    printed = json.loads("\n".join(lines))
    assert printed["state"] == "CRITICAL" and printed["healthy"] is False
    assert printed["message"].startswith("last run 100 min ago failed: TimeoutError: read timed out;")
    assert printed["health"] == document and printed["health_file"] == str(health)
    assert 5995 < printed["age_seconds"] < 6010
    assert check(capsys, health, "--json", "--nagios")[0] == 2

    health.unlink()
    code, lines = check(capsys, health, "--json")
    assert code == 1
    assert json.loads("\n".join(lines)) == {
        "state": "UNKNOWN", "healthy": False, "details": [], "age_seconds": None, "health_file": str(health),
        "health": None, "message": f"health file {health} does not exist (has the collector ever run?)"}


def test_usage_errors_are_one_line_unknown_in_nagios_mode_and_one_line_exit_2_otherwise(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return run_main("health_check.py", args, os.environ, tmp_path)

    reversed_limits = ("health_check.py: -w/--warning 100 is above -c/--critical 50: a run older than --critical "
                       "minutes must also be older than --warning (see --help)")
    cases = {
        ("--warning", "100", "--critical", "50"): reversed_limits,
        ("-w", "abc"): ("health_check.py: argument -w/--warning: 'abc' is not a range of minutes "
                        "(N, N:, ~:N, N:M or @N:M) (see --help)"),
        ("-c", "20:10"): ("health_check.py: argument -c/--critical: '20:10' is not a range of minutes "
                          "(N, N:, ~:N, N:M or @N:M): its start 20 is above its end 10 (see --help)"),
        ("-w", "-5"): ("health_check.py: argument -w/--warning: '-5' is not a range of minutes "
                       "(N, N:, ~:N, N:M or @N:M): its start 0 is above its end -5 (see --help)"),
        ("-t", "0"): ("health_check.py: argument -t/--timeout: '0' is not a number of seconds above 0 and below "
                      "1000000 (see --help)"),
        ("--critical-failures", "x"): ("health_check.py: argument --critical-failures: 'x' is not a whole number "
                                       "of at least 1 (see --help)"),
        ("--port", "99999"): ("health_check.py: argument --port: '99999' is not a port number from 0 to 65535 "
                              "(0 picks a free one) (see --help)"),
        ("--serve", "--port", "-1"): ("health_check.py: argument --port: '-1' is not a port number from 0 to 65535 "
                                      "(0 picks a free one) (see --help)"),
        ("--max-age-minutes", "soon"): ("health_check.py: argument --max-age-minutes: 'soon' is not a number of "
                                        "minutes above 0 and below 10000000 (see --help)"),
        ("--nagois",): "health_check.py: unrecognized arguments: --nagois (see --help)",
        ("--crit", "5"): "health_check.py: unrecognized arguments: --crit 5 (see --help)",
    }
    for args, message in cases.items():
        plugin = run("--nagios", *args)
        assert (plugin.returncode, plugin.stdout, plugin.stderr) == (
            3, f"POLISEN_COLLECTOR UNKNOWN: {message}\n", ""), args
        plain = run(*args)
        if message == reversed_limits:  # a value -w and -c take, but the plugin's options: refused as such
            message = ("health_check.py: -w/--warning and -c/--critical apply only with --nagios (without it, "
                       "--max-age-minutes is the limit and any failed run is unhealthy) (see --help)")
        assert (plain.returncode, plain.stdout, plain.stderr) == (2, "", message.replace(
            "health_check.py: ", "health_check.py: error: ", 1) + "\n"), args


def test_every_unknown_has_the_status_line_of_the_other_states(capsys, health, tmp_path):
    """A usage error and an unreadable file are both `POLISEN_COLLECTOR UNKNOWN: ...`, as OK or WARNING are."""
    record(health, 5)
    assert check(capsys, health, "--nagios")[1][0].startswith("POLISEN_COLLECTOR OK: ")
    health.write_text("{")
    assert check(capsys, health, "--nagios")[1][0].startswith("POLISEN_COLLECTOR UNKNOWN: health file ")
    usage = run_main("health_check.py", ["--nagios", "-w", "x"], os.environ, tmp_path)
    assert usage.stdout.startswith("POLISEN_COLLECTOR UNKNOWN: health_check.py: argument -w/--warning: 'x' ")


def test_the_limits_of_one_mode_are_refused_in_the_other(tmp_path):
    """-w, -c and --critical-failures are the plugin's: without --nagios they would be ignored, so they are
    a usage error (exit 2, the plain check's); --max-age-minutes with --nagios likewise (exit 3, UNKNOWN)."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return run_main("health_check.py", args, os.environ, tmp_path)

    for args, named in [(("-w", "10"), "-w/--warning applies"), (("--critical-failures", "2", "--json"),
                                                                  "--critical-failures applies"),
                        (("-c", "30", "-w", "20", "--critical-failures", "2"),
                         "-w/--warning, -c/--critical and --critical-failures apply")]:
        plain = run(*args)
        assert (plain.returncode, plain.stdout) == (2, ""), args
        assert plain.stderr == (f"health_check.py: error: {named} only with --nagios (without it, --max-age-minutes "
                                "is the limit and any failed run is unhealthy) (see --help)\n")
    plugin = run("--nagios", "--max-age-minutes", "60")
    assert (plugin.returncode, plugin.stdout, plugin.stderr) == (
        3, "POLISEN_COLLECTOR UNKNOWN: health_check.py: --max-age-minutes is the limit of the check without "
           "--nagios: with --nagios give -w/--warning and -c/--critical (see --help)\n", "")


def test_the_options_of_a_check_are_refused_with_serve_and_the_servers_without_it(tmp_path):
    """-t, --json, -v and --nagios shape one check's answer, --host and --port the server's: --serve ignored
    the first, a check the second, silently (-t looked like a bound on the server's reads). Each is a usage
    error now: one line, exit 2 (UNKNOWN and 3 with --nagios)."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return run_main("health_check.py", args, os.environ, tmp_path)

    why = "apply to a check, not to --serve (it answers each request from the health file: /healthz and /metrics)"
    served = run("--serve", "-t", "5", "--json")
    assert (served.returncode, served.stdout) == (2, "")
    assert served.stderr == f"health_check.py: error: --json and -t/--timeout {why} (see --help)\n"
    plugin = run("--serve", "--nagios", "-v")
    assert (plugin.returncode, plugin.stderr) == (3, "")
    assert plugin.stdout == f"POLISEN_COLLECTOR UNKNOWN: health_check.py: --nagios and -v/--verbose {why} (see --help)\n"
    check = run("--port", "9200")
    assert (check.returncode, check.stdout) == (2, "")
    assert check.stderr == "health_check.py: error: --port applies only with --serve (see --help)\n"


def test_a_limit_given_alone_moves_the_other_default_to_fit(capsys, health):
    """`-c 30` alone: -w is 30 too (its default 45 would be above it); `-w 120` alone: -c is 120. Given
    both, -w above -c is still a usage error (the usage test above)."""
    record(health, 40)

    def perfdata(*args: str) -> tuple[int, str]:
        code, lines = check(capsys, health, "--nagios", *args)
        return code, lines[0].partition(" | age=")[2].split()[0]

    assert perfdata("-c", "30") == (2, "2400s;1800;1800;0")
    assert perfdata("-c", "60") == (0, "2400s;2700;3600;0"), "above the default -w: the default stays"
    assert perfdata("-w", "120") == (0, "2400s;7200;7200;0")
    assert perfdata("-w", "20") == (1, "2400s;1200;5400;0")
    assert perfdata("-c", "@0:30") == (0, "2400s;2700;@0:1800;0"), "a range is taken as given"


def test_health_file_comes_from_health_file_or_log_dir_as_the_collector_has_it(tmp_path):
    (tmp_path / "logs").mkdir()
    record(tmp_path / "logs" / "health.json", 5)
    record(tmp_path / "elsewhere.json", 5, success=False, error=OSError("disk full"))
    (tmp_path / "custom-logs").mkdir()
    env = {"PATH": "/usr/bin:/bin"}

    def run(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
        return run_main("health_check.py", ["--env-file", os.devnull, *args], {**env, **extra_env}, tmp_path)

    assert run({}).stdout.startswith("HEALTHY: last run 5 min ago succeeded")
    assert run({"HEALTH_FILE": str(tmp_path / "elsewhere.json")}).stdout.startswith(
        "UNHEALTHY: last run 5 min ago failed: OSError: disk full")
    missing = run({"LOG_DIR": str(tmp_path / "custom-logs")})
    assert (missing.returncode, missing.stdout) == (
        1, (f"UNHEALTHY: health file {tmp_path / 'custom-logs' / 'health.json'} does not exist "
           "(has the collector ever run?)\n"))
    (tmp_path / "site.env").write_text(f"HEALTH_FILE={tmp_path / 'elsewhere.json'}\n")
    assert run({}, "--env-file", "site.env").returncode == 1
    assert run({"HEALTH_FILE": str(tmp_path / "elsewhere.json")}, "--health-file", "logs/health.json").returncode == 0


def mangled_files(rng: random.Random) -> list[bytes]:
    good = json.loads(fields(error={"type": "X", "message": "y"}, last_success=datetime.now(UTC).isoformat()))
    strange = [None, "", "x", -1, 0, 1e308, 10**40, [], {}, True, [[[]]], "2026-13-01T00:00:00+00:00",
               "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59", "\u0000\n\t", {"type": None}]
    files = [b"", b"\x00" * 10, b"[" * 100_000, b"{" * 5000, b"\xef\xbb\xbf{}", b"null", b"1e999", b'"text"',
             b'{"last_run": Infinity}', b"x" * 1_000_001]
    text = json.dumps(good).encode()
    for _ in range(40):
        data = bytearray(text)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        files.append(bytes(data))
        files.append(text[: rng.randrange(len(text))])
    for base in (good, {**good, "status": "failed", "consecutive_failures": 2}):
        for key in base:
            for value in strange:
                files.append(json.dumps({**base, key: value}).encode())
            files.append(json.dumps({k: v for k, v in base.items() if k != key}).encode())
    return files


def test_no_content_of_the_file_makes_a_traceback(capsys, health):
    """Fuzz: mangled files give one line and a defined exit code in every mode, and /metrics renders."""
    rng = random.Random(5)
    collector = HealthCollector(health, timedelta(minutes=45))
    files = mangled_files(rng)
    assert len(files) == 328
    for data in files:
        health.write_bytes(data)
        plain, lines = check(capsys, health)
        assert plain in (0, 1) and lines[0].startswith("HEALTHY: " if plain == 0 else "UNHEALTHY: "), data[:200]
        assert len(lines) == (7 if plain == 0 else 1), (data[:200], lines)
        nagios, lines = check(capsys, health, "--nagios")
        assert nagios in (0, 1, 2, 3) and lines[0].startswith("POLISEN_COLLECTOR "), data[:200]
        assert len(lines) == 1, "a plugin prints its details only with -v"
        assert (nagios == 0) == (plain == 0)
        code, lines = check(capsys, health, "--json")
        assert code == plain and json.loads("\n".join(lines))["healthy"] is (plain == 0)
        families = {f.name for f in text_string_to_metric_families(generate_latest(collector).decode())}
        assert {"polisen_health_file_valid", "polisen_health_healthy"} <= families


def test_plugin_ranges_of_minutes_as_the_guidelines_define_them(capsys, health):
    """-w/-c take `N`, `N:`, `~:N`, `N:M` and `@N:M` (minutes); perfdata carries them in seconds."""
    record(health, 60)

    def plugin(*args: str) -> tuple[int, str, str]:
        code, lines = check(capsys, health, "--nagios", *args)
        assert len(lines) == 1, "one status line without -v"
        text, _, perfdata = lines[0].partition(" | ")
        return code, text, perfdata.split()[0].partition(";")[2]

    assert plugin("-w", "45", "-c", "90") == (1, f"POLISEN_COLLECTOR WARNING: no run for 60 min (limit 45 min): {STALE_HINT}",
                                              "2700;5400;0")
    assert plugin("-w", "~:50", "-c", "90.5") == (
        1, f"POLISEN_COLLECTOR WARNING: no run for 60 min (limit 50 min): {STALE_HINT}", "~:3000;5430;0")
    assert plugin("-w", "90:", "-c", "120") == (
        1, "POLISEN_COLLECTOR WARNING: last run 60 min ago: its age, 60 min, is outside the warning range 90: (minutes)",
        "5400:;7200;0")
    assert plugin("-w", "45", "-c", "@30:90") == (
        2, "POLISEN_COLLECTOR CRITICAL: last run 60 min ago: its age, 60 min, is inside the critical range @30:90 "
           "(minutes)", "2700;@1800:5400;0")
    assert plugin("-w", "10:70", "-c", "5:80")[0] == 0, "inside both ranges: OK"
    assert plugin("-w", "@61:70")[0] == 0, "outside an @ range: OK"
    code, lines = check(capsys, health, "--nagios", "-w", "90", "-c", "120", "-v")
    assert code == 0 and len(lines) == 7 and lines[1].startswith("last run: "), "-v adds the long output"
