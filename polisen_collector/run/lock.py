"""One collector at a time on a host: an flock on a lock file, released by the kernel on death."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from polisen_collector.files import NotRegularFile, open_regular

HOLDER_CHARS = 20
"""The holder's pid is read no further: a lock file grown huge is not read whole."""


class LockHeld(Exception):
    """Another run holds the lock."""


class LockUnusable(Exception):
    """The lock file cannot be used as one (a symbolic link, not a regular file, unreadable)."""


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock. The file is opened the guarded way (files.open_regular): never through a
        symbolic link, which must not make the run truncate whatever file it points to, and never
        a FIFO or another non-regular file, which would block or mean nothing."""
        # Private (0600) whatever the umask: no other user may take or hold the collectors' lock.
        try:
            fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, follow=False, mode=0o600)
        except NotRegularFile as refused:
            if refused.kind == "a symbolic link":
                raise LockUnusable(f"{refused} (remove it, the run creates the lock file itself)") from None
            raise LockUnusable(f"{refused}; refusing to use it as the lock (remove it)") from None
        except OSError as error:
            raise LockUnusable(f"cannot open the lock file {self.path}: {error.strerror}") from None
        handle = open(fd, "r+")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = " ".join(handle.read(HOLDER_CHARS).split()) or "unknown"
            handle.close()
            raise LockHeld(f"another run (pid {holder}) holds {self.path}; this run exits without work") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
