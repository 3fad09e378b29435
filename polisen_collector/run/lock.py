"""One collector at a time on a host: an flock on a lock file, released by the kernel on death."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import IO


class LockHeld(Exception):
    """Another run holds the lock."""


class LockUnusable(Exception):
    """The lock file cannot be used as one (a symbolic link, not a regular file, unreadable)."""


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock. The file is opened without following a symbolic link: a link planted
        there must not make the run truncate whatever file it points to."""
        # Private (0600) whatever the umask: no other user may take or hold the collectors' lock.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise LockUnusable(f"{self.path} is a symbolic link; refusing to follow it "
                                   "(remove it, the run creates the lock file itself)") from None
            raise LockUnusable(f"cannot open the lock file {self.path}: {error.strerror}") from None
        handle = open(fd, "r+")  # noqa: SIM115 - held open for the whole run
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            handle.close()
            raise LockUnusable(f"{self.path} is not a regular file; refusing to use it as the lock (remove it)")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
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
