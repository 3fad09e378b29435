"""Local files that a reader may see at any moment: written whole or not at all; read only when regular.

Files follow the umask (0644 under the usual 022), so a monitoring user such as `nagios` or
node_exporter can read the health file, the metrics and the textfile; `private=True` keeps a
file to its owner (0600) whatever the umask.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

PUBLIC_MODE = 0o666  # the kernel takes the umask off
PRIVATE_MODE = 0o600
READ_SIZE = 1 << 16
# The run's own small records (a cache, a hint, a key, a textfile): a file larger than this is
# not one of them, whatever it holds, and is read no further.
SMALL_FILE_BYTES = 1 << 20


class NotRegularFile(OSError):
    """A FIFO, device or folder where a file was expected."""

    def __init__(self, path: Path | str, mode: int) -> None:
        super().__init__(errno.EINVAL, "not a regular file", str(path))
        # (a socket cannot be opened at all: ENXIO)
        self.kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device"

    def __str__(self) -> str:
        return f"{self.filename} is {self.kind}, not a regular file"


def read_regular(path: Path | str, max_bytes: int | None = None) -> bytes:
    """A whole file, in two system calls when it does not change meanwhile; refused
    (NotRegularFile) unless it is a regular file.

    O_NONBLOCK: a FIFO put in a file's place (by mistake or malice) would otherwise block the
    open, and with it a cron run holding its lock, until something writes to it. With
    `max_bytes`, at most max_bytes + 1 bytes are read: the caller sees that it is too large.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, info.st_mode)
        limit = None if max_bytes is None else max_bytes + 1
        expected = info.st_size + 1  # one more than its size: the empty read at its end proves it whole
        chunks: list[bytes] = []
        size = 0
        while limit is None or size < limit:
            ask = expected - size if size < expected else READ_SIZE  # a file that grew: read on
            chunk = os.read(fd, ask if limit is None else min(ask, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def temp_file_beside(path: Path, *, private: bool = False) -> tuple[int, str]:
    """Create a hidden temp file in the folder of `path` (for a rename over it); return (fd, name).

    Unlike tempfile.mkstemp (always 0600), the mode follows the umask unless private.
    """
    path = Path(path)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                           PRIVATE_MODE if private else PUBLIC_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def replace_with(path: Path, write: Callable[[str], object]) -> None:
    """`write(name)` makes a file of a temp name beside `path` (mode following the umask, as the file it
    replaces would), renamed over `path` once complete, removed if anything fails: readers and a
    killed writer leave `path` whole, old or new. For writers that open the file themselves (SQLite, pyarrow)."""
    fd, tmp = temp_file_beside(path)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes, *, durable: bool = True, private: bool = False) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path, private=private)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
