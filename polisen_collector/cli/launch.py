"""The entry points of the processes: the shims at the top of the repository and the console scripts.

Each imports its tool only when called, inside a guard: Ctrl-C while the tool is still
importing (a cold disk, a loaded host) is one line and exit 130, as it is once the tool runs
(cli/common.py's `door`), never a KeyboardInterrupt traceback. This module imports nothing
but the standard library's smallest parts, so the window left before the guard is a few
milliseconds of the interpreter's own start.
"""

from __future__ import annotations

import importlib
import os
import sys

from polisen_collector.exit_codes import EXIT_INTERRUPTED

TOOLS = "polisen_collector.cli"


def program_name() -> str:
    """The name the tool was called by, which its messages start with."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "polisen-collector"


def launch(module: str, function: str = "main") -> int:
    """Import `module` and run its `function` (a tool's main); its exit code."""
    try:
        entry = getattr(importlib.import_module(module), function)
    except KeyboardInterrupt:
        print(f"{program_name()}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    code: int = entry()
    return code


def collect_events() -> int:
    return launch(f"{TOOLS}.collect_events", "program")


def health_check() -> int:
    return launch(f"{TOOLS}.health_check")


def analyze_metrics() -> int:
    return launch(f"{TOOLS}.analyze_metrics")


def export_events() -> int:
    return launch(f"{TOOLS}.export_events")


def performance_metrics() -> int:
    return launch(f"{TOOLS}.performance_metrics")


def secrets_manager() -> int:
    return launch(f"{TOOLS}.secrets_manager")
