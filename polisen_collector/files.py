"""Local files that a reader may see at any moment: written whole or not at all; opened only when regular.

Files follow the umask (0644 under the usual 022), so a monitoring user such as `nagios` or
node_exporter can read the health file, the metrics and the textfile; `private=True` keeps a
file to its owner (0600) whatever the umask.

Every file the tools open in LOG_DIR, METRICS_DIR and DATA_DIR is opened here, the one guarded
way (`open_regular`, `read_regular`): never a blocking open of a FIFO planted in a file's place,
never anything but a regular file, no symbolic link where a link makes no sense (a lock, the
log), a bounded read (`max_bytes`), and gzip inflated only up to a bound (`gunzip`). The
table of what each tool opens is in docs/operations.md ("Files the tools open").
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import zlib
from collections.abc import Callable
from pathlib import Path

PUBLIC_MODE = 0o666  # the kernel takes the umask off
PRIVATE_MODE = 0o600
READ_SIZE = 1 << 16
# The run's own small records (a cache, a hint, a key, a textfile): a file larger than this is
# not one of them, whatever it holds, and is read no further.
SMALL_FILE_BYTES = 1 << 20


class NotRegularFile(OSError):
    """A FIFO, device, socket, folder or (where refused) symbolic link where a file was expected."""

    def __init__(self, path: Path | str, mode: int) -> None:
        super().__init__(errno.EINVAL, "not a regular file", str(path))
        self.kind = next((kind for test, kind in _KINDS if test(mode)), "a device")

    def __str__(self) -> str:
        if self.kind == "a symbolic link":
            return f"{self.filename} is a symbolic link; refusing to follow it"
        return f"{self.filename} is {self.kind}, not a regular file"


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"))


class TooLarge(ValueError):
    """A file, or what a gzip stream inflates to, is larger than its bound."""


def open_regular(path: Path | str, flags: int = os.O_RDONLY, *, follow: bool = True, mode: int = PUBLIC_MODE) -> int:
    """A file descriptor of `path` (os.open's `flags`: O_CREAT creates it with `mode`), refused
    with NotRegularFile unless it is a regular file.

    O_NONBLOCK: a FIFO put in a file's place (by mistake or malice) would otherwise block the
    open, and with it a cron run holding its lock, until something opens its other end.
    `follow=False` refuses a symbolic link too (O_NOFOLLOW), for the files where a link makes
    no sense: the lock files and the log, which must not write through a link to another file.
    """
    flags |= os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, mode)
    except OSError as error:
        # ELOOP: a link under O_NOFOLLOW; ENXIO: a FIFO without a reader (for writing) or a
        # socket; EISDIR: a folder opened for writing. Say which, like the checks below do.
        if error.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                raise error from None
            if not stat.S_ISREG(mode):
                raise NotRegularFile(path, mode) from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotRegularFile(path, status.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, max_bytes: int | None = None, *, follow: bool = True) -> bytes:
    """A whole file, in two system calls when it does not change meanwhile; refused
    (NotRegularFile) unless it is a regular file (see open_regular).

    With `max_bytes`, at most max_bytes + 1 bytes are read: the caller sees that it is too large.
    """
    fd = open_regular(path, follow=follow)
    try:
        info = os.fstat(fd)
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


def gunzip(data: bytes, max_bytes: int) -> bytearray:
    """What gzip `data` (one member or several) inflates to; TooLarge past `max_bytes`, before
    more than max_bytes + 1 bytes are held (a gzip bomb of 4 MB would inflate to 4 GiB), and
    ValueError when it is not whole, valid gzip."""
    inflated = bytearray()
    rest = data
    while rest:
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # Room for one byte more than allowed: whatever is left unread then proves it too large.
            inflated += member.decompress(rest, max_bytes + 1 - len(inflated))
        except zlib.error as error:
            raise ValueError(f"not valid gzip: {error}") from None
        if len(inflated) > max_bytes:
            raise TooLarge(f"more than {max_bytes} bytes once decompressed")
        if not member.eof:
            raise ValueError("not valid gzip: the stream ends early")
        rest = member.unused_data
    return inflated


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
    replaces would), flushed to disk and renamed over `path` once complete, removed if anything fails:
    readers, a killed writer and a power cut leave `path` whole, old or new. For writers that open the
    file themselves (SQLite, pyarrow). Through a symbolic link its target is replaced, the link kept; a FIFO,
    device or folder at `path` is refused (NotRegularFile), never replaced."""
    path = Path(os.path.realpath(path))
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISREG(mode := path.stat().st_mode):
            raise NotRegularFile(path, mode)
    fd, tmp = temp_file_beside(path)
    os.close(fd)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


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
        _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """A rename in `folder` made durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
