"""Logging to a size-rotated file; the terminal gets one line, and only when a run fails.

Cron mails whatever a job prints, so INFO and WARNING stay in the log file, and the entry
point prints the reason of a failure (the last ERROR logged) as one line on stderr, which
journald files at error priority. `--verbose` echoes the log to stderr for a run by hand.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

LOG_FILE_NAME = "polisen-collector.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_installed: list[logging.Handler] = []


class LastError(logging.Handler):
    """Remembers the message of the last ERROR record, without its traceback, as one line."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = " ".join(record.getMessage().split())


def setup_logging(log_dir: Path, level: str, max_bytes: int, backup_count: int, *, echo: bool = False) -> LastError:
    """Log to LOG_DIR/polisen-collector.log (and to stderr with echo); return the last-error memo.

    Idempotent: a second call (a second run in one process) replaces the handlers of the first.
    """
    reset_logging()
    root = logging.getLogger()
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = [logging.handlers.RotatingFileHandler(
        Path(log_dir) / LOG_FILE_NAME, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
    )]
    if echo:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
    last_error = LastError()
    for handler in (*handlers, last_error):
        root.addHandler(handler)
        _installed.append(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's DeprecationWarning goes to the log, not to cron's mail
    quiet = max(logging.getLevelName(level), logging.WARNING)
    logging.getLogger("urllib3").setLevel(quiet)
    # The oci SDK prints request headers at DEBUG and chatter at INFO, from its import on.
    logging.getLogger("oci").setLevel(quiet)
    return last_error


def reset_logging() -> None:
    """Remove and close the handlers setup_logging installed (others, e.g. a host's, stay)."""
    root = logging.getLogger()
    while _installed:
        handler = _installed.pop()
        root.removeHandler(handler)
        handler.close()
    logging.captureWarnings(False)


def silence_logging() -> None:
    """No log file yet (the settings failed): keep library warnings off stderr, whose one line is taken."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())


def print_failure(line: str) -> None:
    """The one stderr line of a failed run; under systemd marked `<3>` so journald files it at error priority."""
    print(("<3>" if _stderr_is_journal() else "") + line, file=sys.stderr)


def _stderr_is_journal() -> bool:
    """systemd sets JOURNAL_STREAM=device:inode of the journal's socket when stdout/stderr go there."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        status = os.fstat(sys.stderr.fileno())
        return (status.st_dev, status.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError):
        return False
