"""`pip install .` installs the package, its data and its commands, and nothing else at the top of
site-packages: no shim (health_check.py, ...) that another distribution could overwrite or be
overwritten by. Read from the wheel pip builds, the files pip installs (RECORD)."""

from __future__ import annotations

import configparser
import csv
import io
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def checkout_copy(target: Path) -> Path:
    """The checkout as a clone has it (not the recorded test data), so building leaves nothing in it."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name in {".git", "__pycache__", "build"}
                   or name.endswith((".egg-info", "_cache"))}
        return skipped | ({"data"} if Path(folder) == REPO / "tests" else set())

    return Path(shutil.copytree(REPO, target, ignore=ignore))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    work = tmp_path_factory.mktemp("wheel")
    source = checkout_copy(work / "checkout")
    # Offline, with this environment's setuptools (requirements-dev.txt), as `pip install .` builds it.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "--wheel-dir", str(work / "out"), str(source)], check=True, timeout=300)
    (path,) = (work / "out").glob("*.whl")
    return zipfile.ZipFile(path)


def dist_info(wheel: zipfile.ZipFile) -> str:
    (folder,) = {name.split("/")[0] for name in wheel.namelist() if name.split("/")[0].endswith(".dist-info")}
    return folder


@pytest.mark.slow
def test_pip_installs_the_package_and_its_dist_info_alone(wheel):
    record = wheel.read(f"{dist_info(wheel)}/RECORD").decode()
    installed = [row[0] for row in csv.reader(io.StringIO(record))]
    assert {path.split("/")[0] for path in installed} == {"polisen_collector", dist_info(wheel)}
    assert "polisen_collector/data/swedish_admin_areas.csv" in installed
    assert not [path for path in installed if path.startswith("polisen_collector/") and "/tests/" in path]


@pytest.mark.slow
def test_every_command_pip_installs_points_into_the_package(wheel):
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{dist_info(wheel)}/entry_points.txt").decode())
    assert dict(entry_points["console_scripts"]) == SCRIPTS
    assert all(target.startswith("polisen_collector.cli.") for target in SCRIPTS.values())
