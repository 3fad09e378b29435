"""What every door shares: `--env-file` and `--version`, and a quiet exit when the reader of its output goes away."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Protocol

from polisen_collector import __version__
from polisen_collector.config import DEFAULT_ENV_FILE
from polisen_collector.exit_codes import EXIT_OK


class Main(Protocol):
    """A door's main(): its arguments (None: sys.argv's) in, its exit code out."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


def add_standard_options(parser: argparse.ArgumentParser) -> None:
    """`--env-file` (settings beside the environment's) and `-V`/`--version`, the same in every door."""
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE,
                        help=f"file of KEY=VALUE settings (default {DEFAULT_ENV_FILE})")
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")


def quiet_on_closed_pipe(main: Main) -> Main:
    """`tool | head -1` ends without a BrokenPipeError traceback.

    The exit code is the tool's own when its work was done before the pipe closed, else 0:
    the reader chose to stop reading, which is not the tool's failure.
    """

    @functools.wraps(main)
    def door(argv: list[str] | None = None) -> int:
        code = EXIT_OK
        try:
            code = main(argv)
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()
        return code

    return door


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
