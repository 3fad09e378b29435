"""Logging to a size-rotated file; the terminal gets one line, and only when a run fails.

Cron mails whatever a job prints, so INFO and WARNING stay in the log file, and the entry
point prints the reason of a failure (the last ERROR logged) as one line on stderr, which
journald files at error priority. `--verbose` echoes the log to stderr for a run by hand.

The log file is opened the guarded way first (files.open_regular): a FIFO in its place would
block the run before it takes its lock, a symbolic link would append to another file; either
is a configuration error. A folder at a rotated name (`.log.1`) skips the rotation with one
WARNING in the log, and any other logging error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import sys
from pathlib import Path

from polisen_collector.config import ConfigError
from polisen_collector.files import NotRegularFile, open_regular

LOG_FILE_NAME = "polisen-collector.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_installed: list[logging.Handler] = []


class GuardedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler that skips a rotation a folder at a rotated name would break (with one
    WARNING in the log, until the folder is gone), and reports a logging error in one line on
    stderr, once, instead of the library's traceback (which cron would mail)."""

    _warned = False
    _reported = False

    def doRollover(self) -> None:  # the library's name
        blocked = self._folder_in_the_way()
        if blocked is None:
            self._warned = False
            super().doRollover()
            return
        if not self._warned and self.stream is not None:
            self._warned = True
            record = logging.LogRecord(
                "polisen.logging", logging.WARNING, __file__, 0,
                "log rotation skipped: %s is a folder; the log grows past LOG_MAX_BYTES until it is removed",
                (blocked,), None)
            self.stream.write(self.format(record) + self.terminator)

    def _folder_in_the_way(self) -> str | None:
        """A rotated name (or the log's own) that is a folder, which the rotation cannot remove."""
        names = [self.baseFilename, *(self.rotation_filename(f"{self.baseFilename}.{index}")
                                      for index in range(1, self.backupCount + 1))]
        for name in names:
            try:
                if stat.S_ISDIR(os.lstat(name).st_mode):
                    return name
            except OSError:
                continue
        return None

    def handleError(self, record: logging.LogRecord) -> None:  # the library's name
        if self._reported:
            return
        self._reported = True
        error = sys.exc_info()[1]
        print(f"logging error: cannot write the log {self.baseFilename}: {error}; later ones are not reported",
              file=sys.stderr)


class LastError(logging.Handler):
    """Remembers the message of the last ERROR record, without its traceback, as one line."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = " ".join(record.getMessage().split())


def setup_logging(log_dir: Path, level: str, max_bytes: int, backup_count: int, *, echo: bool = False) -> LastError:
    """Log to LOG_DIR/polisen-collector.log (and to stderr with echo); return the last-error memo.

    ConfigError when the log file is not a regular file (or a symbolic link), or cannot be opened.
    Idempotent: a second call (a second run in one process) replaces the handlers of the first.
    """
    reset_logging()
    path = Path(log_dir) / LOG_FILE_NAME
    try:
        os.close(open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, follow=False))
    except NotRegularFile as refused:
        raise ConfigError(f"{refused}; refusing to log to it (remove it, the run creates the log itself)") from None
    except OSError as error:
        raise ConfigError(f"cannot open the log {path}: {error.strerror or error}") from None
    root = logging.getLogger()
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = [GuardedRotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
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
