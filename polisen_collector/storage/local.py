"""The default store: a local folder laid out like the bucket."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polisen_collector.files import atomic_write, read_regular
from polisen_collector.storage.base import NotModified, PreconditionFailed, StorageError, StoredObject


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class LocalStorage:
    """A folder laid out like the bucket. Writes are atomic and durable (fsync + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"local folder {self.root}"

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise StorageError(f"invalid object name {name!r}")
        return self.root.joinpath(*parts)

    def get(self, name: str) -> StoredObject | None:
        try:
            data = read_regular(self._path(name))
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"cannot read {name} in {self.description}: {error}") from error
        return StoredObject(data=data, etag=_etag(data))

    def get_if_changed(self, name: str, etag: str) -> StoredObject | NotModified | None:
        stored = self.get(name)
        return NotModified(etag) if stored is not None and stored.etag == etag else stored

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise conditional writes between processes sharing the folder."""
        lock_path = self.root / ".write.lock"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

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
        try:
            with os.scandir(directory) as scan:
                entries = [(entry.name, entry.is_dir(), entry.is_symlink()) for entry in scan
                           if not entry.name.startswith(".")]
        except OSError:
            return
        # A folder's names all start with "<folder>/", so sorting it as "<folder>/" keeps name order.
        for name, is_dir, is_link in sorted(entries, key=lambda entry: entry[0] + "/" if entry[1] else entry[0]):
            path = relative + name
            if is_dir:  # folders that are symbolic links are not followed
                if not is_link and (prefix.startswith(path + "/") or (path + "/").startswith(prefix)):
                    yield from self._walk(directory / name, path + "/", prefix)
            elif path.startswith(prefix):
                yield path

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StorageError(f"cannot delete {name} in {self.description}: {error}") from error
