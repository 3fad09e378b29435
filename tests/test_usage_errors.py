"""Messages in the user's words: one line for every usage error of every tool, naming the option
(or setting) and the form it takes; mistakes that used to pass silently are refused with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta

import pytest
from in_process import run_main

TOOLS = ["collect_events.py", "health_check.py", "analyze_metrics.py", "export_events.py",
         "performance_metrics.py", "secrets_manager.py"]


def run(collector, script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_main(script, ["--env-file", os.devnull, *args], {**collector.env, **(env or {})}, collector.workdir)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and result.stdout == "", (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("tool", TOOLS)
def test_a_misspelled_flag_is_one_line_on_every_tool(collector, tool):
    assert one_line(run(collector, tool, "--verbsoe")) == f"{tool}: error: unrecognized arguments: --verbsoe (see --help)"


@pytest.mark.parametrize("tool, abbreviation", [
    ("collect_events.py", "--dry"), ("health_check.py", "--nag"), ("analyze_metrics.py", "--metrics"),
    ("export_events.py", "--out"), ("performance_metrics.py", "--js"), ("secrets_manager.py", "--env"),
])
def test_an_abbreviated_option_is_refused_on_every_tool(collector, tool, abbreviation):
    """`--nag` is not `--nagios`: a cron line or check command means what it spells, also once options are added."""
    assert one_line(run(collector, tool, abbreviation)) == (
        f"{tool}: error: unrecognized arguments: {abbreviation} (see --help)")


@pytest.mark.parametrize("tool, args, message", [
    ("export_events.py", ["--from", "2026-02-30"],
     "argument --from: '2026-02-30' is not a date (YYYY-MM-DD): day is out of range for month"),
    ("export_events.py", ["--to", "yesterday"], "argument --to: 'yesterday' is not a date (YYYY-MM-DD)"),
    ("export_events.py", ["--from", "2026-05-20", "--to", "2026-05-01"],
     "--from 2026-05-20 is after --to 2026-05-01: no day is in that range"),
    ("export_events.py", ["--format", "xml"],
     "argument --format: invalid choice: 'xml' (choose from 'jsonl', 'csv', 'parquet', 'sqlite')"),
    ("analyze_metrics.py", ["--since", "May"],
     "argument --since: 'May' is not a date (YYYY-MM-DD) or an ISO date and time"),
    ("analyze_metrics.py", ["--days", "0"], "argument --days: '0' is not a whole number of at least 1"),
    ("analyze_metrics.py", ["--interval", "half"], "argument --interval: 'half' is not a whole number of at least 1"),
    ("collect_events.py", ["--audit", "--compact"], "--compact and --audit are separate jobs: give one of them"),
    ("health_check.py", ["--max-age-minutes", "0"],
     "argument --max-age-minutes: '0' is not a number of minutes above 0 and below 10000000"),
])
def test_a_bad_value_names_its_option_and_the_form_it_takes(collector, tool, args, message):
    assert one_line(run(collector, tool, *args)) == f"{tool}: error: {message} (see --help)"


def test_a_backfill_of_days_to_come_is_refused_before_any_request(collector, fake_api):
    tomorrow = date.today() + timedelta(days=2)
    days = f"{date.today() - timedelta(days=3)}..{tomorrow}"
    line = one_line(run(collector, "collect_events.py", "--backfill", days))
    assert line.startswith(f"configuration error: --backfill: '{days}' reaches past today (")
    assert line.endswith(" in Sweden): the API has no events of days to come")
    reversed_days = one_line(run(collector, "collect_events.py", "--backfill", "2026-05-20..2026-05-01"))
    assert reversed_days == "configuration error: --backfill: '2026-05-20..2026-05-01' ends before it starts"
    assert fake_api.requests == []


def test_a_file_where_a_folder_belongs_is_called_a_file(collector, tmp_path):
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    for tool in ("collect_events.py", "export_events.py"):
        assert one_line(run(collector, tool, env={"DATA_DIR": str(a_file)})) == (
            f"configuration error: DATA_DIR='{a_file}' is a file, not a folder")
    for tool in ("analyze_metrics.py", "performance_metrics.py"):
        assert one_line(run(collector, tool, "--metrics-dir", str(a_file))) == (
            f"configuration error: METRICS_DIR='{a_file}' is a file, not a folder")
    assert one_line(run(collector, "collect_events.py", env={"LOG_DIR": str(a_file)})) == (
        f"configuration error: LOG_DIR='{a_file}' is a file, not a folder (not recorded in the health file: "
        f"{a_file} is a file)")


def test_an_export_of_a_folder_that_holds_no_archive_is_refused(collector, tmp_path):
    """A wrong DATA_DIR (the archive's parent, a new folder) exported 0 rows and exit 0; with --update the
    site's database was rebuilt empty. A folder that does not exist is neither created nor exported."""
    base = tmp_path / "wrong"
    (base / "empty").mkdir(parents=True)
    for folder, problem in ((base / "empty", "holds no archive (no events/, pages/ or metadata/ in it): give the "
                                             "folder the collector writes"), (base / "absent", "does not exist")):
        assert one_line(run(collector, "export_events.py", "-o", str(base / "events.db"), "--update",
                            env={"DATA_DIR": str(folder)})) == f"configuration error: DATA_DIR='{folder}' {problem}"
    assert [path.name for path in base.iterdir()] == ["empty"]
    assert list((base / "empty").iterdir()) == []


def test_a_health_file_or_textfile_folder_of_the_wrong_kind_is_refused_before_any_work(collector, fake_api, tmp_path):
    """Not a WARNING once the run is done (the health file unwritten, node_exporter seeing nothing): exit 2 first."""
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    a_folder = tmp_path / "etc"
    a_folder.mkdir()
    cases = [
        ({"HEALTH_FILE": str(a_folder)}, f"HEALTH_FILE='{a_folder}' is a folder, not a file"),
        ({"HEALTH_FILE": str(a_file / "health.json")},
         f"HEALTH_FILE='{a_file / 'health.json'}' cannot be a file: '{a_file}' is a file, not a folder"),
        ({"PROMETHEUS_TEXTFILE_DIR": str(a_file)}, f"PROMETHEUS_TEXTFILE_DIR='{a_file}' is a file, not a folder"),
    ]
    for env, message in cases:
        for job in ([], ["--audit"], ["--compact"]):
            line = one_line(run(collector, "collect_events.py", *job, env=env))
            assert line.startswith(f"configuration error: {message}"), line  # a run may add where it could not record
    assert collector.health()["status"] == "failed", "a collection refused records why, where it can"
    (collector.log_dir / "health.json").unlink()
    (collector.log_dir / "health.json").mkdir()
    assert one_line(run(collector, "collect_events.py")) == (
        f"configuration error: LOG_DIR/health.json='{collector.log_dir / 'health.json'}' is a folder, not a file")
    assert fake_api.requests == [] and not collector.metrics_dir.exists() and not collector.data_dir.exists()


def test_a_malformed_env_line_is_one_line_naming_it(collector, fake_api):
    env_file = collector.workdir / "settings.env"
    env_file.write_text("STORAGE=local\nthis line is not a setting\nLOG_LEVEL=INFO\n")
    result = run_main("collect_events.py", ["--env-file", str(env_file)], collector.env, collector.workdir)
    assert one_line(result) == (f"configuration error: {env_file}: line 2 cannot be parsed: write KEY=VALUE, "
                                "quoting a value that holds spaces or # (not recorded in the health file)")
    assert fake_api.requests == []
    latin = collector.workdir / "latin.env"
    latin.write_bytes(b"STORAGE=local\nAPI_CONTACT_EMAIL=p\xe5l@example.invalid\n")
    result = run_main("collect_events.py", ["--env-file", str(latin)], collector.env, collector.workdir)
    assert one_line(result) == (f"configuration error: {latin}: line 2 is not UTF-8 text (save the file as UTF-8) "
                                "(not recorded in the health file)")
    checked = run_main("health_check.py", ["--env-file", str(env_file)], collector.env, collector.workdir)
    assert (checked.returncode, checked.stderr) == (1, "")
    assert checked.stdout == (f"UNHEALTHY: cannot tell where the health file is: {env_file}: line 2 cannot be "
                              "parsed: write KEY=VALUE, quoting a value that holds spaces or #\n")


def run_with_piped_env(collector, tool: str, settings: str) -> subprocess.CompletedProcess:
    """The tool with `--env-file <(...)`: a shell's pipe holding `settings`, its writer done."""
    read_end, write_end = os.pipe()
    os.write(write_end, settings.encode())
    os.close(write_end)
    try:
        return run_main(tool, ["--env-file", f"/dev/fd/{read_end}"], collector.env, collector.workdir)
    finally:
        os.close(read_end)


def test_a_fifo_as_env_file_is_refused_at_once_and_a_shells_pipe_is_read(collector, fake_api):
    """Opening a FIFO waits for a writer, maybe for ever (a cron run hung there): refused, one line, exit 2.
    `--env-file <(...)`, an anonymous pipe with its writer, is read as before."""
    fifo = collector.workdir / "settings.env"
    os.mkfifo(fifo)
    refusal = (f"{fifo} is a FIFO (named pipe), not a file of KEY=VALUE settings: reading it would wait for a "
               "writer that may never come (a pipe such as --env-file <(...) is read)")
    for tool in TOOLS[2:]:  # the collector and health_check below
        assert one_line(run_main(tool, ["--env-file", str(fifo)], collector.env, collector.workdir)) == (
            f"configuration error: {refusal}"), tool
    result = run_main("collect_events.py", ["--env-file", str(fifo)], collector.env, collector.workdir)
    assert one_line(result) == f"configuration error: {refusal} (not recorded in the health file)"
    checked = run_main("health_check.py", ["--env-file", str(fifo)], collector.env, collector.workdir)
    assert (checked.returncode, checked.stdout) == (1, f"UNHEALTHY: cannot tell where the health file is: {refusal}\n")
    fifo.rename(collector.workdir / ".env")  # the default .env of the working folder, too
    default = run_main("performance_metrics.py", [], collector.env, collector.workdir)
    assert one_line(default) == f"configuration error: {refusal.replace(str(fifo), '.env')}"
    assert fake_api.requests == []

    piped = run_with_piped_env(collector, "health_check.py", f"HEALTH_FILE={collector.workdir / 'from-the-pipe.json'}\n")
    assert piped.stdout == (f"UNHEALTHY: health file {collector.workdir / 'from-the-pipe.json'} does not exist "
                            "(has the collector ever run?)\n")


def test_a_bad_setting_from_a_shells_pipe_is_recorded_where_the_pipe_says(collector, fake_api):
    """The failure is recorded in the health file the pipe's settings name: the pipe was read a second
    time to find it, found empty then, and the failure went to ./logs/health.json instead."""
    health = collector.workdir / "from-the-pipe.json"
    result = run_with_piped_env(collector, "collect_events.py", f"HEALTH_FILE={health}\nLOG_LEVEL=LOUD\n")
    assert one_line(result).startswith("configuration error: LOG_LEVEL")
    recorded = json.loads(health.read_text())
    assert (recorded["status"], recorded["error"]["type"], recorded["error"]["message"].startswith("LOG_LEVEL")) == (
        "failed", "ConfigError", True), recorded
    assert not (collector.workdir / "logs" / "health.json").exists()
    assert fake_api.requests == []


def test_a_body_json_cannot_parse_is_said_without_a_stammer(collector, fake_api, tmp_path):
    body = tmp_path / "body.json"
    body.write_text('[{"id": 1, "name": "unterminated')
    fake_api.add_faults(*[f"replace:{body}"] * 4)
    result = run(collector, "collect_events.py")
    assert result.returncode == 1
    assert "invalid JSON (Unterminated string starting at byte 19 of 32) (after 3 retries)" in result.stderr, (
        result.stderr)
