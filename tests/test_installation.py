"""Hints name the user's way of installing: a checkout is told the requirements and the lock file,
a pip or pipx install its extras; and an interpreter without the dependencies gets one line.

An installed distribution is built as pip lays one out (the package and its .dist-info record in
a site folder, PEP 610's direct_url.json), so the check that tells the two apart runs for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from polisen_collector import __version__
from polisen_collector.installation import extra_hint, installed_distribution

SHIMS = ("collect_events.py", "health_check.py", "analyze_metrics.py", "export_events.py", "performance_metrics.py",
         "secrets_manager.py")
HINTS = ("from polisen_collector.installation import dependency_hint, extra_hint\n"
         "print(extra_hint('parquet')); print(extra_hint('plots')); print(dependency_hint())")


def test_a_checkout_is_told_the_lock_file(tmp_path, monkeypatch):
    assert installed_distribution() is None
    monkeypatch.chdir(tmp_path)
    assert extra_hint("plots") == f"{sys.executable} -m pip install -c {REPO / 'requirements-lock.txt'} matplotlib"
    monkeypatch.chdir(REPO)
    assert extra_hint("parquet") == f"{sys.executable} -m pip install -c requirements-lock.txt pyarrow"


def test_the_build_metadata_pip_install_leaves_in_a_checkout_is_no_install(tmp_path):
    """`pip install .` (or pipx) from a checkout leaves polisen_events_collector.egg-info in it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "polisen_collector", checkout / "polisen_collector",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "polisen_events_collector.egg-info").mkdir()
    (checkout / "polisen_events_collector.egg-info" / "PKG-INFO").write_text(
        f"Metadata-Version: 2.1\nName: polisen-events-collector\nVersion: {__version__}\n")
    (checkout / "polisen_events_collector.egg-info" / "SOURCES.txt").write_text("polisen_collector/__init__.py\n")
    result = run_python(sys.executable, HINTS, checkout, checkout)
    assert result.stdout.splitlines()[0] == f"{sys.executable} -m pip install -c requirements-lock.txt pyarrow", (
        result.stdout + result.stderr)


@pytest.fixture
def site(tmp_path) -> Path:
    """The package as `pip install /src/polisen-events-collector` leaves it in site-packages."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "polisen_collector", site / "polisen_collector",
                    ignore=shutil.ignore_patterns("__pycache__"))
    record = site / f"polisen_events_collector-{__version__}.dist-info"
    record.mkdir()
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: polisen-events-collector\nVersion: {__version__}\n")
    (record / "INSTALLER").write_text("pip\n")
    (record / "RECORD").write_text("polisen_collector/__init__.py,,\n")
    (record / "direct_url.json").write_text(json.dumps({"url": "file:///src/polisen-events-collector",
                                                        "dir_info": {}}))
    return site


def run_python(python: str, code: str, site: Path, cwd: Path, *path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (*path, site)))}
    return subprocess.run([python, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_a_pip_install_is_told_its_extras(site, tmp_path):
    result = run_python(sys.executable, HINTS, site, tmp_path)
    assert result.stdout.splitlines() == [
        f"{sys.executable} -m pip install '/src/polisen-events-collector[parquet]'",
        f"{sys.executable} -m pip install '/src/polisen-events-collector[plots]'",
        f"reinstall it: {sys.executable} -m pip install --force-reinstall /src/polisen-events-collector",
    ], result.stderr


def test_a_pipx_install_is_told_its_extras(site, tmp_path):
    venv = tmp_path / "pipx-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    (venv / "pipx_metadata.json").write_text("{}")  # pipx keeps it in every app's environment
    result = run_python(str(venv / "bin" / "python"), HINTS, site, tmp_path)
    assert result.stdout.splitlines()[:2] == [
        "pipx install --force '/src/polisen-events-collector[parquet]'",
        "pipx install --force '/src/polisen-events-collector[plots]'",
    ], result.stderr


def test_a_missing_extra_names_the_extra_in_an_installed_tool(site, tmp_path):
    blocker = tmp_path / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    code = "import sys; from polisen_collector.cli.analyze_metrics import main; sys.exit(main(['--plot', 'x.png']))"
    result = run_python(sys.executable, code, site, tmp_path, blocker.parent)
    assert (result.returncode, result.stderr) == (2, (
        "--plot needs matplotlib, the optional extra 'plots': "
        f"{sys.executable} -m pip install '/src/polisen-events-collector[plots]'\n"))


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A checkout of the repository's code, without a virtual environment in it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "polisen_collector", checkout / "polisen_collector",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in (*SHIMS, "requirements.txt"):
        shutil.copy(REPO / name, checkout / name)
    return checkout


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """A Python without the collector's dependencies, as the system's python3 is."""
    bare = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=60)
    return bare


@pytest.mark.parametrize("shim", [shim if shim in ("collect_events.py", "health_check.py")
                                  else pytest.param(shim, marks=pytest.mark.slow) for shim in SHIMS])
def test_a_python_without_the_dependencies_gets_one_line(checkout, bare, shim):
    """`python3 collect_events.py` outside the virtual environment: the system's Python, no requests."""
    (checkout / ".env").write_text("LOG_LEVEL=INFO\n")  # so that even the health check needs python-dotenv

    def run() -> str:
        result = subprocess.run([str(bare / "bin" / "python"), shim], cwd=checkout, capture_output=True,
                                text=True, timeout=60, env={"PATH": os.environ["PATH"]})
        assert result.returncode == 2 and result.stdout == "", result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, result.stderr
        assert line.startswith(f"{shim}: {bare / 'bin' / 'python'} cannot import "), line
        return line

    assert run().endswith("install the dependencies into a virtual environment: python3 -m venv .venv && "
                          ".venv/bin/pip install -r requirements.txt, then run the tool with that environment's "
                          "Python (README.md, Quick start)")
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").write_text("")
    assert run().endswith("run it with the virtual environment's Python, .venv/bin/python (README.md, Quick start)")
    if shim == "health_check.py":  # a monitoring plugin answers UNKNOWN on stdout
        plugin = subprocess.run([str(bare / "bin" / "python"), shim, "--nagios"], cwd=checkout, capture_output=True,
                                text=True, timeout=60, env={"PATH": os.environ["PATH"]})
        assert plugin.returncode == 3 and plugin.stderr == "", plugin.stderr
        assert plugin.stdout.startswith(f"POLISEN_COLLECTOR UNKNOWN: health_check.py: {bare / 'bin' / 'python'} "
                                        "cannot import dotenv, which the collector needs; run it with"), plugin.stdout
