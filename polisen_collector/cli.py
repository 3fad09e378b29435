"""What every door shares: a quiet exit when the reader of its output goes away."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

from polisen_collector.exit_codes import EXIT_OK

Main = Callable[[list[str] | None], int]


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
