"""pyproject.toml agrees with the requirements files, and every console script answers --version."""

from __future__ import annotations

import gc
import importlib
import re
import sys
import tomllib
from pathlib import Path

import pytest

from polisen_collector import __version__

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirement_lines(name: str) -> list[str]:
    lines = (line.split(" #")[0].strip() for line in (REPO / name).read_text().splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-r"))]


def test_dependencies_are_those_of_requirements_txt():
    assert PROJECT["dependencies"] == requirement_lines("requirements.txt")


def test_extras_together_are_requirements_extras_txt():
    extras = PROJECT["optional-dependencies"]
    assert set(extras) == {"plots", "parquet", "site"}
    assert extras["plots"] + extras["parquet"] + extras["site"] == requirement_lines("requirements-extras.txt")


def test_lock_pins_every_requirement_exactly():
    pins = {}
    for line in requirement_lines("requirements-lock.txt"):
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([\w.+!-]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonical(match[1])] = match[2]
    wanted = [line for name in ("requirements.txt", "requirements-extras.txt", "requirements-dev.txt")
              for line in requirement_lines(name)]
    assert {canonical(re.split(r"[<>=!~\[; ]", line)[0]) for line in wanted} - set(pins) == set()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("script", sorted(PROJECT["scripts"]))
def test_console_script_answers_version(script, capsys, monkeypatch):
    """Called as the installed command calls it: no arguments, the command line in sys.argv."""
    module_name, function_name = PROJECT["scripts"][script].split(":")
    entry = getattr(importlib.import_module(module_name), function_name)
    monkeypatch.setattr(sys, "argv", [script, "--version"])
    try:
        with pytest.raises(SystemExit) as leaving:
            entry()
    finally:  # collect_events.program freezes what its process leaves
        gc.unfreeze()
    assert leaving.value.code == 0
    assert capsys.readouterr().out.split()[-1] == __version__


def test_the_doors_at_the_top_are_shims_of_the_console_scripts():
    """Each file at the top runs the entry point its console script runs, from the package; and
    `pip install .` installs the package alone, no top-level module beside it."""
    shims = {}
    for path in REPO.glob("*.py"):
        match = re.search(r"^from (polisen_collector\.cli\.launch) import (\w+)$", path.read_text(), re.MULTILINE)
        assert match, f"{path.name} does not import its entry point from polisen_collector.cli.launch"
        assert match[2] == path.stem, path.name
        assert (REPO / "polisen_collector" / "cli" / f"{path.stem}.py").is_file(), f"{path.name} has no tool"
        assert len(path.read_text().splitlines()) <= 15, f"{path.name} is more than a shim"
        shims[path.stem] = f"{match[1]}:{match[2]}"
    assert sorted(shims.values()) == sorted(PROJECT["scripts"].values())
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["py-modules"] == []
