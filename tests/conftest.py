"""Shared fixtures: the fake Polisen API, and the collector run in-process (or as a real process)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import forked
import pytest
from fake_polisen import FakePolisenServer, load_snapshot, snapshot_paths, snapshot_time
from in_process import run_main

from polisen_collector.config import SETTING_NAMES  # a developer's shell must not leak them into a test


def state_view(storage) -> dict:
    """The stored state as one document: its own fields, `base` (the name of its base or None)
    and `seen`, the base merged in, as a mapping of id text to entry list."""
    from polisen_collector.archive.state import STATE_OBJECT, parse_document

    document, rows, base = parse_document(storage.get(STATE_OBJECT).data, storage)
    return {**document, "base": base.name, "seen": {str(key): list(entry) for key, entry in rows.items()}}


def format_1_state(document: dict) -> bytes:
    """A state document (as state_view gives) as collectors wrote it before format 2: plain JSON,
    still read, so a test can plant a state of its own."""
    return json.dumps({**{key: value for key, value in document.items() if key != "base"}, "format": 1}).encode()


def no_bad_line(line: object) -> None:
    """`on_bad` for an export of an archive that must read cleanly."""
    pytest.fail(f"unreadable archive line: {line}")


def words(text: str) -> set[str]:
    """The words of a text as SQLite FTS5's default tokenizer sees them (case folded)."""
    return set(re.findall(r"[^\W_]+", text.casefold()))


def clear_settings(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """No setting from the environment in this test's process, but `values`."""
    for key in SETTING_NAMES:
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def snapshot_bodies() -> list[bytes]:
    paths = snapshot_paths()
    assert len(paths) == 114, f"expected the 114 recorded snapshots, found {len(paths)}"
    return [load_snapshot(path) for path in paths]


@pytest.fixture(scope="session")
def snapshot_times() -> list[float]:
    """The recorded UTC time (epoch seconds) of each snapshot."""
    return [snapshot_time(path) for path in snapshot_paths()]


@pytest.fixture
def fake_api(snapshot_bodies):
    with FakePolisenServer(snapshot_bodies) as server:
        yield server


class Collector:
    """Runs collect_events.py (or another door) against a temporary workspace.

    A door at the top of the repository runs in-process: its main() is called with this
    workspace's environment and folder (tests/in_process.py). A script under tests/ (the kill
    wrappers), `process=True` and an `env` with PYTHON* variables run as a real process, for
    the tests where the process is the point: kill -9, the lock held by another process, an
    interpreter without an optional extra. The kill wrappers' processes are forked from one that
    has imported the collector (tests/forked.py); the others start a new interpreter.
    """

    def __init__(self, workdir: Path, api_url: str) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_dir = workdir / "logs"
        self.metrics_dir = workdir / "metrics"
        self.env = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
        self.env.update({
            "POLISEN_API_URL": api_url,
            "DATA_DIR": str(self.data_dir),
            "LOG_DIR": str(self.log_dir),
            "METRICS_DIR": str(self.metrics_dir),
            "API_BACKOFF_FACTOR": "0.01",
            "API_CONTACT_EMAIL": "tests@example.invalid",
            "API_RATE_LIMIT": "off",
            "PAGES_PER_RUN": "0",  # the page tests turn pages on (tests/test_pages*.py)
        })

    def command(self, *args: str, script: str = "collect_events.py") -> list[str]:
        return [sys.executable, str(REPO / script), "--env-file", os.devnull, *args]

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60,
            script: str = "collect_events.py", process: bool = False) -> subprocess.CompletedProcess:
        """One run; `timeout` bounds a real process only. `.log` of the result holds what it added to the log file."""
        log_file = self.log_dir / "polisen-collector.log"
        start = log_file.stat().st_size if log_file.exists() else 0
        full_env = {**self.env, **(env or {})}
        # PYTHON* variables (PYTHONPATH, ...) and the locale are read by an interpreter as it starts: a new one.
        fresh = process or any(key.startswith(("PYTHON", "LANG", "LC_")) for key in env or {})
        if "/" in script and not fresh:  # a kill wrapper: a process of its own, forked (tests/forked.py)
            result = forked.Server.run(str(REPO / script), ["--env-file", os.devnull, *args], env=full_env,
                                       cwd=self.workdir, timeout=timeout)
        elif fresh or "/" in script:
            result = subprocess.run(
                self.command(*args, script=script), cwd=self.workdir, env=full_env,
                capture_output=True, text=True, timeout=timeout,
            )
        else:
            result = run_main(script, ["--env-file", os.devnull, *args], full_env, self.workdir)
        result.log = log_file.read_bytes()[start:].decode("utf-8") if log_file.exists() else ""
        return result

    def checkpoint(self) -> Callable[[], None]:
        """Copy data/ and logs/ now; the returned function puts that copy back."""
        saved = self.workdir.parent / f"{self.workdir.name}-checkpoint"
        for folder in ("data", "logs"):
            shutil.copytree(self.workdir / folder, saved / folder)

        def restore() -> None:
            for folder in ("data", "logs"):
                shutil.rmtree(self.workdir / folder)
                shutil.copytree(saved / folder, self.workdir / folder)

        return restore

    def state(self) -> dict:
        """The state document, `seen` as a mapping of id text to entry (whatever its stored format)."""
        from polisen_collector.storage.local import LocalStorage

        return state_view(LocalStorage(self.data_dir))

    def copy_archive(self, workdir: Path) -> Collector:
        """A new workspace in `workdir` holding a copy of this one's archive (to change it freely)."""
        copy = Collector(workdir, "http://127.0.0.1:9/api/events")
        shutil.copytree(self.data_dir, copy.data_dir)
        return copy

    def last_metrics(self) -> dict:
        return json.loads(self.metrics_files()[-1].read_text())

    def health(self) -> dict:
        return json.loads((self.log_dir / "health.json").read_text())

    def metrics_files(self) -> list[Path]:
        return sorted(self.metrics_dir.glob("run-*.json"))


@pytest.fixture
def collector(tmp_path, fake_api) -> Collector:
    return Collector(tmp_path, fake_api.url)


@dataclass
class Replay:
    collector: Collector
    results: list[subprocess.CompletedProcess]


def replay_all(workdir: Path, snapshot_bodies: list[bytes]) -> Replay:
    """One run per recorded answer, all 114 in order, in a new workspace `workdir`."""
    workdir.mkdir(exist_ok=True)
    with FakePolisenServer(snapshot_bodies) as server:
        collector = Collector(workdir, server.url)
        results = []
        for index in range(len(snapshot_bodies)):
            server.serve(index)
            results.append(collector.run())
    return Replay(collector, results)


@pytest.fixture(scope="session")
def replayed_archive(tmp_path_factory, snapshot_bodies, worker_id) -> Replay:
    """The workspace after one run per recorded answer, all 114 in order, and each run's result.

    Built once per session for every test that needs the whole replay: read it, or copy
    `collector.data_dir` before changing anything (its API server is gone). Under pytest-xdist the
    workers share one replay (its folder in the session's temp folder, under a lock): the first to
    need it builds it and writes the results beside it, the others read them.
    """
    if worker_id == "master":
        return replay_all(tmp_path_factory.mktemp("replayed"), snapshot_bodies)
    shared = tmp_path_factory.getbasetemp().parent  # the session's, common to its workers
    results_file = shared / "replayed-results.json"
    with (shared / "replayed.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not results_file.exists():
            replay = replay_all(shared / "replayed", snapshot_bodies)
            results_file.write_text(json.dumps([[result.args, result.returncode, result.stdout, result.stderr, result.log]
                                                for result in replay.results]))
            return replay
    results = []
    for args, code, stdout, stderr, log in json.loads(results_file.read_text()):
        result = subprocess.CompletedProcess(args, code, stdout, stderr)
        result.log = log
        results.append(result)
    return Replay(Collector(shared / "replayed", "http://127.0.0.1:9/api/events"), results)
