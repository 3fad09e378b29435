"""The default store: a local folder laid out like the bucket."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polisen_collector.files import atomic_write, open_regular, read_regular
from polisen_collector.storage.base import NotModified, PreconditionFailed, StorageError, StoredObject

WRITE_LOCK = ".write.lock"
MAX_OBJECT_BYTES = 256 << 20
"""An object file is read no further: the largest the collector writes (a page of PAGE_MAX_BYTES,
gzip-compressed; a compacted day) is far smaller."""


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


Entry = tuple[str, Path | None]
"""A listed name and, for a folder to walk, its path."""


def _entries(directory: Path, relative: str, prefix: str) -> list[Entry]:
    """(name, None) of the folder's files under `prefix` and (name, path) of its subfolders that may
    hold some, in name order; folders that are symbolic links are not followed."""
    files: list[str] = []
    folders: list[str] = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.name.startswith("."):
                    continue
                if not entry.is_dir():
                    files.append(entry.name)
                elif not entry.is_symlink():
                    folders.append(entry.name)
    except OSError:
        return []
    inside = relative.startswith(prefix)
    found: list[Entry] = [
        (relative + name, None) for name in files if inside or (relative + name).startswith(prefix)]
    for name in folders:
        path = relative + name
        if inside or prefix.startswith(path + "/") or (path + "/").startswith(prefix):
            found.append((path, directory / name))
    # A folder's names all start with "<folder>/", so sorting it as "<folder>/" keeps name order.
    found.sort(key=(lambda item: item[0] + "/" if item[1] else item[0]) if folders else None)
    return found


class LocalStorage:
    """A folder laid out like the bucket. Writes are atomic and durable (fsync + rename)."""

    def __init__(self, root: Path, max_object_bytes: int = MAX_OBJECT_BYTES) -> None:
        self.root = Path(root)
        self._root_text = os.fspath(self.root)
        self.description = f"local folder {self.root}"
        self.max_object_bytes = max_object_bytes
        self._guard_checked = False

    def _file(self, name: str) -> str:
        """The object's file, as text: an export reads one per event and page version, and a Path
        would cost more than the read."""
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in name.split("/")):
            raise StorageError(f"invalid object name {name!r}")
        return os.path.join(self._root_text, name)

    def _path(self, name: str) -> Path:
        return Path(self._file(name))

    def get(self, name: str) -> StoredObject | None:
        try:
            data = read_regular(self._file(name), self.max_object_bytes)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"cannot read {name} in {self.description}: {error}") from error
        if len(data) > self.max_object_bytes:
            raise StorageError(f"cannot read {name} in {self.description}: larger than "
                               f"{self.max_object_bytes >> 20} MiB, not an object of this collector")
        return StoredObject(data=data, etag=_etag(data))

    def get_if_changed(self, name: str, etag: str) -> StoredObject | NotModified | None:
        stored = self.get(name)
        return NotModified(etag) if stored is not None and stored.etag == etag else stored

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise conditional writes between processes sharing the folder."""
        fd = self._open_guard()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _open_guard(self) -> int:
        """The write lock `.write.lock`, opened the guarded way: a FIFO there would block the
        write holding the run's lock, a link would be written through (files.open_regular)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return open_regular(self.root / WRITE_LOCK, os.O_WRONLY | os.O_CREAT | os.O_APPEND, follow=False)

    def _check_guard(self) -> None:
        """Before this store's first write: a write lock that cannot be used fails that first
        write, not the state write after the events, which would leave a copy of them each run."""
        if not self._guard_checked:
            os.close(self._open_guard())
            self._guard_checked = True

    def put(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        path = self._path(name)
        try:
            self._check_guard()
            if if_match is None and not if_none_match:
                atomic_write(path, data)
                return _etag(data)
            with self._guard():
                current = self.get(name)
                if if_none_match and current is not None:
                    raise PreconditionFailed(f"{name} already exists")
                if if_match is not None and (current is None or current.etag != if_match):
                    raise PreconditionFailed(f"{name} changed since it was read")
                atomic_write(path, data)
                return _etag(data)
        except OSError as error:
            raise StorageError(f"cannot write {name} in {self.description}: {error}") from error

    def list(self, prefix: str) -> Iterator[str]:
        """Names under `prefix` in name order, skipping temp files; walks lazily, one folder in
        memory at a time, so listing years of archive costs no more memory than listing a day."""
        folder = prefix.rpartition("/")[0]
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        return self._walk(start, f"{folder}/" if folder else "", prefix)

    def _walk(self, directory: Path, relative: str, prefix: str) -> Iterator[str]:
        """Depth first in name order, from one generator: a name passes no chain of nested generators
        (years of pages are hundreds of thousands of names)."""
        pending: list[Iterator[Entry]] = [iter(_entries(directory, relative, prefix))]
        while pending:
            for path, folder in pending[-1]:
                if folder is None:
                    yield path
                else:
                    pending.append(iter(_entries(folder, path + "/", prefix)))
                    break
            else:
                pending.pop()

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._file(name))
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StorageError(f"cannot delete {name} in {self.description}: {error}") from error
