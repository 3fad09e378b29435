"""How this copy of the collector was installed, and so how its user adds what it lacks.

A checkout (git clone, the README's virtual environment) installs from the requirements files;
a distribution installed by pip or pipx (`pip install .`, `pipx install .`) adds an optional
extra (`[plots]`, `[parquet]`). The two are told apart by what is true at run time: whether
the package imported is the one a distribution an installer recorded (its INSTALLER file, PEP 376)
lists. An editable install (`pip install -e .`) runs the checkout's files, so it counts as a
checkout, and so does the `.egg-info` folder `pip install .` leaves in a checkout.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import polisen_collector

DISTRIBUTION = "polisen-events-collector"
PACKAGE_OF_EXTRA = {"plots": "matplotlib", "parquet": "pyarrow"}


def installed_distribution() -> metadata.Distribution | None:
    """The installed distribution this package was imported from; None when it runs from a checkout."""
    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    if distribution.read_text("INSTALLER") is None:  # build metadata in a source tree, not an install
        return None
    listed = Path(str(distribution.locate_file("polisen_collector/__init__.py")))
    return distribution if _same_file(listed, Path(polisen_collector.__file__)) else None


def checkout_folder() -> Path:
    """The folder of the checkout the package runs from (meaningful when installed_distribution() is None)."""
    return Path(polisen_collector.__file__).resolve().parent.parent


def extra_hint(extra: str) -> str:
    """The command that adds the optional extra `extra` (plots, parquet) the way this copy was installed."""
    distribution = installed_distribution()
    python = shlex.quote(sys.executable)
    if distribution is None:
        lock = _shown(checkout_folder() / "requirements-lock.txt")
        return f"{python} -m pip install -c {lock} {PACKAGE_OF_EXTRA[extra]}"
    wanted = shlex.quote(f"{_source(distribution)}[{extra}]")
    if (Path(sys.prefix) / "pipx_metadata.json").is_file():  # pipx keeps this file in each app's venv
        return f"pipx install --force {wanted}"
    return f"{python} -m pip install {wanted}"


def dependency_hint() -> str:
    """How to get the collector's dependencies, for a tool that found one missing."""
    distribution = installed_distribution()
    if distribution is not None:
        return (f"reinstall it: {shlex.quote(sys.executable)} -m pip install --force-reinstall "
                f"{shlex.quote(_source(distribution))}")
    venv = checkout_folder() / ".venv"
    if (venv / "bin" / "python").is_file() and not _same_file(Path(sys.prefix), venv):
        return f"run it with the virtual environment's Python, {_shown(venv / 'bin' / 'python')} (README.md, Quick start)"
    return (f"install the dependencies into a virtual environment: python3 -m venv {_shown(venv)} && "
            f"{_shown(venv / 'bin' / 'pip')} install -r {_shown(checkout_folder() / 'requirements.txt')}, "
            "then run the tool with that environment's Python (README.md, Quick start)")


def _source(distribution: metadata.Distribution) -> str:
    """Where the distribution was installed from (PEP 610's direct_url.json): a local folder or
    file as its path, else the distribution's name."""
    try:
        url = json.loads(distribution.read_text("direct_url.json") or "{}").get("url", "")
    except ValueError:
        url = ""
    parts = urlsplit(url)
    return _shown(Path(unquote(parts.path))) if parts.scheme == "file" else DISTRIBUTION


def _shown(path: Path) -> str:
    """A path as the user would type it here: relative below the working folder, else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        relative = str(path)
    return shlex.quote(str(path) if relative.startswith("..") else relative)


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False
