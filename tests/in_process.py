"""Run a door's main() inside the test process, as its own process would run it.

The call sees exactly the given environment and working folder, its stdout and stderr are
captured, an escaping exception becomes a traceback on stderr and exit code 1 (as Python
does), and everything process-wide (environment, cwd, umask, the log handlers and levels a
run installs) is put back afterwards. The answer has the shape of subprocess.run's.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from polisen_collector.logging_setup import reset_logging

QUIETED_LOGGERS = ("urllib3", "oci")


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ is exactly `env` inside the block and what it was before afterwards."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def process_state(cwd: Path) -> Iterator[None]:
    """Working folder, umask and logging as they were, whatever the run changed."""
    saved_cwd = os.getcwd()
    umask = os.umask(0o022)
    os.umask(umask)
    root = logging.getLogger()
    saved_handlers, saved_levels = list(root.handlers), {name: logging.getLogger(name).level
                                                         for name in ("", *QUIETED_LOGGERS)}
    os.chdir(cwd)
    try:
        yield
    finally:
        reset_logging()
        for handler in root.handlers[:]:
            if handler not in saved_handlers:
                root.removeHandler(handler)
        for handler in saved_handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        os.umask(umask)
        os.chdir(saved_cwd)


@contextlib.contextmanager
def program_name(name: str) -> Iterator[None]:
    """sys.argv[0] is the script's name, which a tool's messages start with (argparse's prog)."""
    saved = sys.argv[:]
    sys.argv[:] = [name]
    try:
        yield
    finally:
        sys.argv[:] = saved


def exit_code(code: object) -> tuple[int, str]:
    """sys.exit's argument as the process would report it: the code, and any message for stderr."""
    if code is None:
        return 0, ""
    if isinstance(code, int):
        return code, ""
    return 1, f"{code}\n"


def run_main(script: str, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`python3 script args...` with `env` in `cwd`, but as a call of the script's main(args)."""
    main = importlib.import_module(f"polisen_collector.cli.{Path(script).stem}").main
    stdout, stderr = io.StringIO(), io.StringIO()
    with environment(env), process_state(cwd), program_name(Path(script).name), \
            contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(list(args))
        except SystemExit as leaving:
            code, message = exit_code(leaving.code)
            stderr.write(message)
        except Exception:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess([script, *args], code, stdout.getvalue(), stderr.getvalue())
