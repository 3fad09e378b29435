"""Local files that a reader may see at any moment: written whole or not at all.

Files follow the umask (0644 under the usual 022), so a monitoring user such as `nagios` or
node_exporter can read the health file, the metrics and the textfile; `private=True` keeps a
file to its owner (0600) whatever the umask.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PUBLIC_MODE = 0o666  # the kernel takes the umask off
PRIVATE_MODE = 0o600


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
