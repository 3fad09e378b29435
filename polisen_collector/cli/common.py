"""What every door shares: its parser (one line for a usage error), `--env-file` and `--version`,
and its edge (`door`): no traceback for a closed pipe, a missing dependency or Ctrl-C."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

from polisen_collector import __version__
from polisen_collector.cli.launch import program_name
from polisen_collector.config import DEFAULT_ENV_FILE
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK


class Main(Protocol):
    """A door's main(): its arguments (None: sys.argv's) in, its exit code out."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


T = TypeVar("T")


class ToolParser(argparse.ArgumentParser):
    """The parser of every door: a usage error is one line on stderr and exit 2.

    Cron and monitoring mail what a tool prints: one line naming the option and what it
    takes, not the usage block (`--help` shows that). An option is taken only as spelled in
    full (`--nag` is no `--nagios`): an abbreviation in a cron line or a check command would
    change meaning the day another option starting alike is added.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message} (see --help)\n")


# What int(), float() and date.fromisoformat() say of any bad value: nothing the form does not say.
_GENERIC_ERRORS = ("invalid literal", "could not convert", "Invalid isoformat")


def value_of(form: str, parse: Callable[[str], T]) -> Callable[[str], T]:
    """An option's type: `parse`, or a usage error saying that the value is not `form`.

    argparse puts the option's name before it: `argument --from: '2026-02-30' is not a
    date (YYYY-MM-DD): day is out of range for month`.
    """

    def convert(text: str) -> T:
        try:
            return parse(text)
        except (ValueError, OverflowError) as error:
            detail = str(error)
            reason = f": {detail}" if detail and not detail.startswith(_GENERIC_ERRORS) else ""
            raise argparse.ArgumentTypeError(f"{text!r} is not {form}{reason}") from None

    return convert


day = value_of("a date (YYYY-MM-DD)", date.fromisoformat)


def add_standard_options(parser: argparse.ArgumentParser) -> None:
    """`--env-file` (settings beside the environment's) and `-V`/`--version`, the same in every door."""
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE,
                        help=f"file of KEY=VALUE settings (default {DEFAULT_ENV_FILE})")
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")


# The third-party modules the tools import (requirements.txt): one of them missing means an
# interpreter outside the collector's environment (`python3 collect_events.py` before the venv).
DEPENDENCIES = frozenset({"requests", "urllib3", "dotenv", "prometheus_client", "tzdata", "oci", "cryptography"})


def door(main: Main) -> Main:
    """What happens at the edge of every tool's main(), so none ends in a traceback:

    - `tool | head -1` ends quietly; the exit code is the tool's own when its work was done
      before the pipe closed, else 0 (the reader chose to stop reading: not a failure);
    - a dependency missing (the interpreter is not the collector's) is one line saying how
      to install it for this copy (installation.py), exit 2;
    - Ctrl-C in a tool that is not a run (a run stops at a safe point itself, interrupt.py)
      is one line, exit 130.
    """

    @functools.wraps(main)
    def guarded(argv: list[str] | None = None) -> int:
        code = EXIT_OK
        try:
            code = main(argv)
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()
        except ModuleNotFoundError as missing:
            line = missing_dependency(missing)
            if line is None:
                raise
            print(line, file=sys.stderr)
            return EXIT_CONFIG
        except KeyboardInterrupt:
            print(f"{program_name()}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        return code

    return guarded


def missing_dependency(missing: ModuleNotFoundError) -> str | None:
    """One line for a dependency this interpreter cannot import; None for any other missing module."""
    if (missing.name or "").partition(".")[0] not in DEPENDENCIES:
        return None
    from polisen_collector.installation import dependency_hint

    return (f"{program_name()}: {sys.executable} cannot import {missing.name}, which the collector needs; "
            f"{dependency_hint()}")


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test or a wrapper
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
