"""The operator's habits: cron mail, file modes, per-tool settings, closed pipes, --version."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from datetime import UTC as UTC_TZ
from pathlib import Path

import pytest
from conftest import REPO, clear_settings

from polisen_collector import __version__
from polisen_collector.cli import (
    analyze_metrics,
    collect_events,
    export_events,
    health_check,
    performance_metrics,
    secrets_manager,
)
from polisen_collector.cli.launch import launch
from polisen_collector.exit_codes import EXIT_INTERRUPTED, EXIT_LOCKED, exit_code_of_signal
from polisen_collector.files import atomic_write
from polisen_collector.run.lock import RunLock

DOORS = {"collect_events.py": collect_events, "health_check.py": health_check,
         "analyze_metrics.py": analyze_metrics, "export_events.py": export_events,
         "performance_metrics.py": performance_metrics, "secrets_manager.py": secrets_manager}
RUN_METRICS = {"run_id": "20260601T000700.000Z-abcdef", "version": "1.0.0",
               "started_at": "2026-06-01T00:07:00+00:00", "finished_at": "2026-06-01T00:07:02+00:00",
               "outcome": "success", "timings": {"api_fetch": 1.0, "total": 1.2},
               "counts": {"new_events": 3, "api_events": 500}, "errors": []}


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.fixture
def quiet_root_logger():
    """An in-process run points the root logger at its log file; undo that afterwards."""
    yield
    logging.captureWarnings(False)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- 1. cron: silence on success, one stderr line on failure ---------------------------------------

def test_a_real_process_prints_nothing_on_success_and_one_line_on_failure(collector, fake_api):
    ok = collector.run(env={"API_CONTACT_EMAIL": ""}, process=True)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    fake_api.add_faults(*["status:503"] * 4)
    failed = collector.run(process=True)
    assert (failed.returncode, failed.stdout) == (1, "")
    [line] = failed.stderr.splitlines()
    assert line.startswith("run failed: ") and "503" in line, line


def test_verbose_echoes_the_log_to_stderr_and_stdout_stays_empty(collector, fake_api, capfd, monkeypatch,
                                                                  quiet_root_logger):
    clear_settings(monkeypatch, API_RATE_LIMIT="off", API_CONTACT_EMAIL="ops@example.invalid")
    code = collect_events.main(["--env-file", os.devnull, "--api-url", fake_api.url,
                                "--data-dir", str(collector.data_dir), "--log-dir", str(collector.log_dir),
                                "--metrics-dir", str(collector.metrics_dir), "-v"])
    out, err = capfd.readouterr()
    assert (code, out) == (0, "")
    assert "INFO polisen.collect" in err and "new 500" in err


# --- 2. files follow the umask; the lock stays private ----------------------------------------------

def test_atomic_writes_follow_the_umask_unless_private(tmp_path, umask):
    atomic_write(tmp_path / "public.json", b"{}")
    atomic_write(tmp_path / "secret", b"key", private=True)
    assert (mode(tmp_path / "public.json"), mode(tmp_path / "secret")) == (0o644, 0o600)
    umask(0o027)
    atomic_write(tmp_path / "public.json", b"{}", durable=False)
    assert mode(tmp_path / "public.json") == 0o640
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_a_run_leaves_readable_files_and_a_private_lock(collector, fake_api, monkeypatch, umask,
                                                       quiet_root_logger, capfd):
    textfile_dir = collector.workdir / "textfile"
    clear_settings(monkeypatch, API_RATE_LIMIT="off", API_CONTACT_EMAIL="ops@example.invalid",
                   PROMETHEUS_TEXTFILE_DIR=str(textfile_dir))
    code = collect_events.main(["--env-file", os.devnull, "--api-url", fake_api.url,
                                "--data-dir", str(collector.data_dir), "--log-dir", str(collector.log_dir),
                                "--metrics-dir", str(collector.metrics_dir)])
    assert (code, capfd.readouterr()) == (0, ("", ""))
    readable = [collector.log_dir / "health.json", *collector.metrics_files(), textfile_dir / "polisen_collector.prom",
                collector.data_dir / "metadata" / "last_seen.json", *(collector.data_dir / "events").rglob("*.jsonl")]
    assert len(readable) > 5
    assert {str(path): mode(path) for path in readable} == {str(path): 0o644 for path in readable}
    assert mode(collector.log_dir / "collect_events.lock") == 0o600
    with RunLock(collector.workdir / "other.lock"):
        assert mode(collector.workdir / "other.lock") == 0o600


def test_an_export_file_follows_the_umask(collector, fake_api, monkeypatch, umask, capsys):
    assert collector.run().returncode == 0
    clear_settings(monkeypatch)
    out = collector.workdir / "events.csv"
    assert export_events.main(["--env-file", os.devnull, "--data-dir", str(collector.data_dir), "-o", str(out)]) == 0
    assert mode(out) == 0o644 and out.read_text().count("\n") == 501


def test_secrets_check_on_a_local_install_says_why_it_wants_oci_settings(tmp_path, monkeypatch, capsys):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.oci/config
    for storage, hint in (("local", "; this checks the OCI settings a STORAGE=oci run would use, and STORAGE=local "
                                    "here needs none (docs/oci.md)"), ("oci", "")):
        clear_settings(monkeypatch, STORAGE=storage)
        assert secrets_manager.main(["--env-file", str(env_file)]) == 2
        assert capsys.readouterr() == ("", "configuration error: OCI_CONFIG_FILE='~/.oci/config' does not exist "
                                           f"(OCI_AUTH=config_file needs an OCI config file){hint}\n")


# --- 3. each tool validates only the settings it reads ----------------------------------------------

def test_read_only_tools_ignore_bad_values_of_settings_they_do_not_read(collector, fake_api, monkeypatch, capsys):
    assert collector.run().returncode == 0
    env_file = collector.workdir / "loopback.env"
    env_file.write_text("API_RATE_LIMIT=off\nLOG_LEVEL=verbose\nAPI_READ_TIMEOUT=soon\nSTORAGE=local\n")
    clear_settings(monkeypatch, METRICS_DIR=str(collector.metrics_dir), DATA_DIR=str(collector.data_dir))
    assert analyze_metrics.main(["--env-file", str(env_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["period"]["runs"] == 1
    assert export_events.main(["--env-file", str(env_file)]) == 0
    assert capsys.readouterr().out.count("\n") == 500
    assert performance_metrics.main(["--env-file", str(env_file)]) == 0
    assert "new 500" in capsys.readouterr().out

    env_file.write_text("RUN_INTERVAL_MINUTES=often\nSTORAGE=s3\n")
    assert analyze_metrics.main(["--env-file", str(env_file)]) == 2
    assert capsys.readouterr().err.startswith("configuration error: RUN_INTERVAL_MINUTES='often' is invalid")
    assert export_events.main(["--env-file", str(env_file)]) == 2
    assert capsys.readouterr().err.startswith("configuration error: STORAGE='s3' is invalid")


def test_the_collector_still_checks_every_setting(collector, fake_api):
    result = collector.run(env={"LOG_LEVEL": "verbose"})
    assert result.returncode == 2 and result.stderr.startswith("configuration error: LOG_LEVEL='verbose'")


# --- 4. quiet on a closed pipe; --version everywhere -------------------------------------------------

class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_a_door_quietly(tmp_path, monkeypatch, capfd):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / f"run-{RUN_METRICS['run_id']}.json").write_text(json.dumps(RUN_METRICS))
    clear_settings(monkeypatch)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert analyze_metrics.main(["--env-file", os.devnull, "--metrics-dir", str(tmp_path / "metrics")]) == 0
    assert sys.stdout is not None and not isinstance(sys.stdout, ClosedPipe)
    assert capfd.readouterr().err == ""


def test_analyze_metrics_into_head_prints_no_traceback(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / f"run-{RUN_METRICS['run_id']}.json").write_text(json.dumps(RUN_METRICS))
    command = f"{sys.executable} {REPO / 'analyze_metrics.py'} --env-file /dev/null --metrics-dir {metrics}"
    # head -n 0 leaves before the tool writes (a sure closed pipe); head -1 whenever it happens to.
    for reader, expected in [("head -n 0", ""), ("head -1", "1 run in ")] * 3:
        done = subprocess.run(f"{command} | {reader}", shell=True, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, env={"PATH": os.environ["PATH"]})
        assert (done.returncode, done.stderr) == (0, ""), (reader, done.stderr)
        assert done.stdout.startswith(expected) and done.stdout.count("\n") <= 1, (reader, done.stdout)


@pytest.mark.parametrize("name", sorted(DOORS))
def test_every_door_answers_version(name, capsys):
    with pytest.raises(SystemExit) as exited:
        DOORS[name].main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.endswith(f" {__version__}\n")


def test_ctrl_c_while_a_tool_still_imports_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    """The entry points import their tool inside the guard (cli/launch.py)."""
    (tmp_path / "tool_being_imported.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["collect_events.py"])
    assert launch("tool_being_imported") == EXIT_INTERRUPTED == 130
    assert capsys.readouterr() == ("", "collect_events.py: interrupted\n")


@pytest.mark.parametrize("shim", ["collect_events.py", pytest.param("health_check.py", marks=pytest.mark.slow)])
def test_ctrl_c_during_a_shims_imports_is_no_traceback(tmp_path, shim):
    """A real process (its start is the point): SIGINT arrives while the tool's modules are imported,
    from a stand-in for argparse, which only a tool imports."""
    (tmp_path / "argparse.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n")
    done = subprocess.run([sys.executable, str(REPO / shim), "--version"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=30, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path)})
    assert (done.returncode, done.stdout, done.stderr) == (130, "", f"{shim}: interrupted\n")


# --- 5. Nagios plugin options and consecutive failures ------------------------------------------------

def failed_runs(path: Path, count: int, minutes_ago: float = 5) -> None:
    from datetime import UTC, datetime, timedelta

    from polisen_collector.health.file import write_health

    write_health(path, finished_at=datetime.now(UTC) - timedelta(minutes=minutes_ago + 30), success=True,
                 events_processed=4, execution_time=1.0)
    for _ in range(count):
        write_health(path, finished_at=datetime.now(UTC) - timedelta(minutes=minutes_ago), success=False,
                     events_processed=0, execution_time=0.5, error=OSError("disk full"))


def nagios(capsys, path: Path, *args: str) -> tuple[int, list[str]]:
    code = health_check.main(["--nagios", "--health-file", str(path), *args])
    return code, capsys.readouterr().out.splitlines()


def test_one_failure_warns_and_the_documented_count_is_critical(tmp_path, capsys):
    health = tmp_path / "health.json"
    states = []
    for failures in (1, 2, 3, 4):
        failed_runs(health, failures)
        code, [line] = nagios(capsys, health)
        states.append((code, line.split(":")[0], line.rpartition("failures=")[2]))
    assert states == [(1, "POLISEN_COLLECTOR WARNING", "1;0;2;0"), (1, "POLISEN_COLLECTOR WARNING", "2;0;2;0"),
                      (2, "POLISEN_COLLECTOR CRITICAL", "3;0;2;0"), (2, "POLISEN_COLLECTOR CRITICAL", "4;0;2;0")]
    failed_runs(health, 1)
    assert nagios(capsys, health, "--critical-failures", "1")[0] == 2
    failed_runs(health, 1, minutes_ago=100)
    assert nagios(capsys, health)[0] == 2, "a failed run older than -c is critical however few failures"
    failed_runs(health, 2)
    assert health_check.main(["--health-file", str(health)]) == 1, "plain mode: any failure is unhealthy"


def test_short_plugin_options_and_verbose_details(tmp_path, capsys):
    health = tmp_path / "health.json"
    failed_runs(health, 0, minutes_ago=30)  # one success, 60 min ago
    code, [line] = nagios(capsys, health, "-w", "30", "-c", "120", "-t", "5")
    assert code == 1 and line.startswith("POLISEN_COLLECTOR WARNING: no run for 60 min (limit 30 min)")
    assert " | age=3600s;1800;7200;0 " in line
    failed_runs(health, 1)
    code, lines = nagios(capsys, health, "-v")
    assert code == 1 and lines[0].startswith("POLISEN_COLLECTOR WARNING: last run 5 min ago failed: OSError: disk full")
    assert lines[1].startswith("last run: ") and lines[1].endswith(" (5 min ago), failed"), lines[1]
    assert lines[2].startswith("last success: "), lines[2]
    assert lines[3:5] == ["events processed: 0, execution time: 0.50 s", "consecutive failures: 1"]
    with pytest.raises(SystemExit) as exited:
        health_check.main(["-V"])
    assert exited.value.code == 0 and capsys.readouterr().out.endswith(f" {__version__}\n")


def test_a_health_file_that_would_block_is_unknown_at_once(tmp_path, capsys):
    stuck = tmp_path / "health.json"
    os.mkfifo(stuck)  # opening it for reading would block, as a file on a hung NFS mount does
    code, lines = nagios(capsys, stuck, "-t", "0.3")
    assert (code, lines) == (3, [f"POLISEN_COLLECTOR UNKNOWN: health file {stuck} is not a regular file; "
                                 "refusing to read it"])
    assert health_check.main(["--health-file", str(stuck)]) == 1
    assert capsys.readouterr().out == f"UNHEALTHY: health file {stuck} is not a regular file; refusing to read it\n"


def test_plugin_usage_errors_are_one_unknown_line_on_stdout(tmp_path, capsys):
    for args in (["-w", "100", "-c", "50"], ["-t", "0"], ["--critical-failures", "0"], ["-w", "abc"]):
        with pytest.raises(SystemExit) as exited:
            health_check.main(["--nagios", "--health-file", str(tmp_path / "h.json"), *args])
        assert exited.value.code == 3, args
        out, err = capsys.readouterr()
        assert out.startswith("POLISEN_COLLECTOR UNKNOWN: ") and out.count("\n") == 1 and err == "", (
            out, err)


# --- 6. systemd units and the cron line ----------------------------------------------------------------

VENV_PYTHON = "/opt/polisen-events-collector/.venv/bin/python"
HARDENING = {
    "ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true", "PrivateDevices": "true",
    "PrivateMounts": "true", "PrivateUsers": "true", "ProtectHostname": "true", "ProtectClock": "true",
    "ProtectKernelTunables": "true", "ProtectKernelModules": "true", "ProtectKernelLogs": "true",
    "ProtectControlGroups": "true", "ProtectProc": "invisible", "ProcSubset": "pid", "NoNewPrivileges": "true",
    "CapabilityBoundingSet": "", "AmbientCapabilities": "", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "true", "RestrictRealtime": "true", "RestrictSUIDSGID": "true",
    "LockPersonality": "true", "MemoryDenyWriteExecute": "true", "RemoveIPC": "true", "KeyringMode": "private",
    "DevicePolicy": "closed", "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service ~@privileged @resources", "User": "polisen", "Group": "polisen",
}


def unit_service_section(name: str) -> dict[str, str]:
    """[Service] of a unit file; a repeated key's values joined by spaces, as systemd adds them up."""
    values: dict[str, str] = {}
    section = None
    for line in (REPO / "deploy" / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            values[key] = f"{values[key]} {value}".strip() if key in values else value
    return values


UNITS = ["polisen-collector.service", "polisen-audit.service", "polisen-compact.service", "polisen-health.service",
         "polisen-site.service", "polisen-site-refresh.service"]


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_hardened_and_use_the_virtual_environment(unit):
    service = unit_service_section(unit)
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert service["ExecStart"].startswith(f"{VENV_PYTHON} ")
    sysusers = (REPO / "deploy" / "polisen-collector.sysusers.conf").read_text().splitlines()
    assert [line.split()[:2] for line in sysusers if line and not line.startswith("#")] == [["u", "polisen"]]


def test_the_collector_may_write_exactly_its_folders_and_the_textfile_dir():
    service = unit_service_section("polisen-collector.service")
    assert service["ReadWritePaths"].split() == [
        "/opt/polisen-events-collector/data", "/opt/polisen-events-collector/logs",
        "/opt/polisen-events-collector/metrics", "-/var/lib/prometheus/node-exporter"]
    # 3: the lock held by another run; 130 and 143: a stop (systemctl stop), recorded as interrupted
    assert (service["UMask"], service["SuccessExitStatus"].split()) == ("0022", [
        str(code) for code in (EXIT_LOCKED, exit_code_of_signal(signal.SIGINT), exit_code_of_signal(signal.SIGTERM))])
    assert "ReadWritePaths" not in unit_service_section("polisen-health.service")
    assert unit_service_section("polisen-site-refresh.service")["ReadWritePaths"] == "/opt/polisen-events-collector/site"
    assert "ReadWritePaths" not in unit_service_section("polisen-site.service")  # the site only reads its database
    for job in ("polisen-audit.service", "polisen-compact.service"):
        same = unit_service_section(job)
        assert [same[key] for key in ("ReadWritePaths", "UMask", "SuccessExitStatus")] == [
            service[key] for key in ("ReadWritePaths", "UMask", "SuccessExitStatus")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_rates_the_units_at_most_2(unit):
    done = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(REPO / "deploy" / unit)],
                          capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout[-500:] + done.stderr
    assert float(found.group(1)) <= 2.0


def test_readme_docs_and_example_crontab_give_the_same_cron_line():
    def cron_lines(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if "collect_events.py" in line and
                line.startswith("7,37 ")]

    example = cron_lines(REPO / "deploy" / "crontab.example")
    assert example == ["7,37 * * * *  cd /opt/polisen-events-collector && .venv/bin/python collect_events.py"]
    assert cron_lines(REPO / "README.md") == example == cron_lines(REPO / "docs" / "operations.md")


def test_every_cron_line_in_the_docs_is_one_of_the_example_crontab():
    def cron_lines(path: Path) -> set[str]:
        return {line for line in path.read_text().splitlines()
                if re.match(r"[\d*][\d,*/-]* [\d,*/-]+ \S+ \S+ \S+ ", line) and "collect_events.py" in line}

    example = cron_lines(REPO / "deploy" / "crontab.example")
    assert len(example) == 3
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        assert cron_lines(page) <= example, page.name


# --- 8. the trends picture ------------------------------------------------------------------------------

def first_day_runs() -> list:
    """Seven runs of a first morning: three runs missed after the fourth, the sixth failed."""
    from datetime import UTC, datetime, timedelta

    from polisen_collector.analysis import Run

    start = datetime(2026, 6, 1, 8, 7, tzinfo=UTC)
    runs = []
    for index, slot in enumerate([0, 1, 2, 3, 7, 8, 9]):
        failed = slot == 8
        runs.append(Run(f"run-{index}", start + timedelta(minutes=30 * slot), "failed" if failed else "success",
                        {"api_fetch": 7.0, "total": 7.1} if failed else {"api_fetch": 1.0, "total": 1.3},
                        {} if failed else {"new_events": [500, 3, 0, 2, 5, 0, 1][index], "updated_events": 0,
                                           "bytes_wire": 30_000}, []))
    return runs


def test_a_first_day_plot_has_a_title_utc_markers_and_shaded_missed_runs():
    import matplotlib.pyplot as plt
    from matplotlib.dates import num2date

    from polisen_collector.analysis import trend_figure

    figure = trend_figure(first_day_runs(), 30)
    try:
        timings, events, failures, wire = figure.axes
        assert figure._suptitle.get_text() == (
            "Polisen events collector: 7 runs, 2026-06-01 08:07 to 2026-06-01 12:37 UTC, 3 missed (per run)")
        assert wire.get_xlabel() == "time (UTC)"
        assert [line.get_label() for line in timings.lines] == ["api_fetch", "total"]
        assert all(line.get_marker() == "o" for axis in (timings, events, wire) for line in axis.lines)
        assert [len(line.get_xdata()) for axis in (timings, events, wire) for line in axis.lines] == [7] * 5
        [bars] = failures.containers
        assert [(num2date(bar.get_x() + bar.get_width() / 2).strftime("%H:%M"), bar.get_height())
                for bar in bars if bar.get_height()] == [("12:07", 1)]
        [span] = wire.patches  # the grey band; a Rectangle or a Polygon depending on matplotlib
        corners = span.get_patch_transform().transform(span.get_path().vertices)
        assert sorted({num2date(x).strftime("%H:%M") for x in corners[:, 0]}) == ["09:37", "11:37"]
        assert "missed runs (3)" in [text.get_text() for text in timings.get_legend().get_texts()]
        assert wire.xaxis.get_major_formatter()._tz == UTC_TZ
    finally:
        plt.close(figure)


def test_the_plot_draws_every_step_the_text_table_shows():
    import dataclasses

    import matplotlib.pyplot as plt

    from polisen_collector.analysis import Loaded, analyze, trend_figure

    runs = [dataclasses.replace(run, timings={**run.timings, "pages": 2.5}) if run.outcome == "success" else run
            for run in first_day_runs()]
    figure = trend_figure(runs, 30)
    try:
        timings = figure.axes[0]
        assert [line.get_label() for line in timings.lines] == list(analyze(Loaded(runs, []), 30)["steps"]) == [
            "api_fetch", "total", "pages"]
        assert [value for value in timings.lines[2].get_ydata() if value == value] == [2.5] * 6  # NaN for the failure
    finally:
        plt.close(figure)


def test_plot_of_a_single_run_draws_points(tmp_path, monkeypatch, capsys):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / f"run-{RUN_METRICS['run_id']}.json").write_text(json.dumps(RUN_METRICS))
    clear_settings(monkeypatch)
    picture = tmp_path / "trends.png"
    assert analyze_metrics.main(["--env-file", os.devnull, "--metrics-dir", str(tmp_path / "metrics"),
                                 "--plot", str(picture)]) == 0
    assert capsys.readouterr().err == f"plot written to {picture}\n"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_under_systemd_the_failure_line_has_journald_error_priority(collector, fake_api, capfd, monkeypatch,
                                                                  quiet_root_logger):
    clear_settings(monkeypatch, API_RATE_LIMIT="off", API_BACKOFF_FACTOR="0.01")
    fake_api.add_faults(*["status:503"] * 4)
    args = ["--env-file", os.devnull, "--api-url", fake_api.url,
            "--data-dir", str(collector.data_dir), "--log-dir", str(collector.log_dir),
            "--metrics-dir", str(collector.metrics_dir)]
    status = os.fstat(2)  # capfd's file stands in for the journal's socket
    monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
    assert collect_events.main(args) == 1
    out, err = capfd.readouterr()
    [line] = err.splitlines()
    assert out == "" and line.startswith("<3>run failed: ") and "HTTP 503" in line
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # the journal, but stderr goes elsewhere
    with pytest.raises(SystemExit) as exited:
        collect_events.main([*args, "--storage", "s3"])
    assert exited.value.code == 2
    [usage_error] = capfd.readouterr().err.splitlines()
    assert usage_error.endswith("error: argument --storage: invalid choice: 's3' (choose from 'local', 'oci') "
                                "(see --help)")
    monkeypatch.setenv("STORAGE", "s3")
    assert collect_events.main(args) == 2
    assert capfd.readouterr().err == "configuration error: STORAGE='s3' is invalid: must be one of local, oci\n"


def test_python_warnings_go_to_the_log_file_not_stderr(tmp_path, capfd, quiet_root_logger):
    import warnings

    from polisen_collector.logging_setup import setup_logging

    setup_logging(tmp_path, "INFO", 100_000, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API in some library", DeprecationWarning, stacklevel=1)
    assert capfd.readouterr() == ("", "")
    assert "WARNING py.warnings: " in (tmp_path / "polisen-collector.log").read_text()
