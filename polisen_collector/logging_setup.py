"""Logging to stdout and to a size-rotated file, as cron and journald both expect."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOG_FILE_NAME = "polisen-collector.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_installed: list[logging.Handler] = []


def setup_logging(log_dir: Path, level: str, max_bytes: int, backup_count: int) -> None:
    """Idempotent: a second call (a second run in one process) replaces the handlers of the first."""
    reset_logging()
    root = logging.getLogger()
    formatter = logging.Formatter(FORMAT)
    file_handler = logging.handlers.RotatingFileHandler(
        Path(log_dir) / LOG_FILE_NAME, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
    )
    console = logging.StreamHandler(sys.stdout)
    for handler in (file_handler, console):
        handler.setFormatter(formatter)
        root.addHandler(handler)
        _installed.append(handler)
    root.setLevel(level)
    quiet = max(logging.getLevelName(level), logging.WARNING)
    logging.getLogger("urllib3").setLevel(quiet)
    # The oci SDK prints request headers at DEBUG and chatter at INFO, from its import on.
    logging.getLogger("oci").setLevel(quiet)


def reset_logging() -> None:
    """Remove and close the handlers setup_logging installed (others, e.g. a host's, stay)."""
    root = logging.getLogger()
    while _installed:
        handler = _installed.pop()
        root.removeHandler(handler)
        handler.close()
