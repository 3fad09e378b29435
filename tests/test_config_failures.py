"""A configuration error is recorded in health.json only by a collection run; --env-file must exist."""

from __future__ import annotations

import json
import os

import pytest
from conftest import clear_settings

from polisen_collector.cli import analyze_metrics, collect_events, export_events, health_check


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    clear_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    return tmp_path


def health_of(workspace) -> dict | None:
    path = workspace / "logs" / "health.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("job", [["--dry-run"], ["--audit"], ["--compact"], ["--backfill", "2026-05-20"]])
def test_a_bad_setting_in_another_job_leaves_the_collections_health_alone(workspace, monkeypatch, capsys, job):
    monkeypatch.setenv("STORAGE", "s3")
    assert collect_events.main(["--env-file", os.devnull, *job]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "configuration error: STORAGE='s3' is invalid: must be one of local, oci"]
    assert health_of(workspace) is None


def test_an_empty_backfill_range_is_the_backfill_s_error_not_the_collection_s(workspace, capsys):
    assert collect_events.main(["--env-file", os.devnull, "--backfill", ""]) == 2
    assert capsys.readouterr().err.startswith("configuration error: --backfill: ")
    assert health_of(workspace) is None


def test_a_bad_setting_in_a_collection_run_is_recorded_as_its_failure(workspace, monkeypatch, capsys):
    monkeypatch.setenv("STORAGE", "s3")
    assert collect_events.main(["--env-file", os.devnull]) == 2
    health = health_of(workspace)
    assert health["status"] == "failed" and "STORAGE='s3'" in health["error"]["message"]


@pytest.mark.parametrize("main", [collect_events.main, export_events.main, analyze_metrics.main])
def test_an_env_file_that_is_not_there_is_refused_not_ignored(workspace, capsys, main):
    assert main(["--env-file", str(workspace / "typo.env")]) == 2
    err = capsys.readouterr().err
    assert f"--env-file {workspace / 'typo.env'}: no such file" in err
    assert err.count("no such file") == 1, err
    assert health_of(workspace) is None


def test_health_check_with_a_missing_env_file_is_unknown(workspace, capsys):
    assert health_check.main(["--nagios", "--env-file", str(workspace / "typo.env")]) == 3
    assert "no such file" in capsys.readouterr().out


def test_the_default_env_file_may_be_missing(workspace, capsys):
    assert analyze_metrics.main(["--metrics-dir", str(workspace / "metrics")]) == 0
