"""The object store behind the archive: one small interface, a local-folder backend here.

Both backends hold the same layout (`events/YYYY/MM/DD/*.jsonl`, `metadata/*.json`).
The OCI backend lives in oci_storage.py and is imported only when configured.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """The store failed; the message is meant for an operator."""


class PreconditionFailed(StorageError):
    """A conditional write lost: someone else changed the object since it was read."""


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str


class Storage(Protocol):
    """What the collector needs from a store.

    `put` with `if_match` writes only if the object still has that etag; with
    `if_none_match` only if it does not exist. Either raises PreconditionFailed otherwise.
    """

    description: str

    def get(self, name: str) -> StoredObject | None: ...

    def put(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def delete(self, name: str) -> None: ...


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
            data = self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"cannot read {name} in {self.description}: {error}") from error
        return StoredObject(data=data, etag=_etag(data))

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
        """Names under `prefix`, sorted; walks only the folder the prefix points into and skips temp files."""
        folder = prefix.rpartition("/")[0]
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        names = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for filename in filenames:
                if filename.startswith("."):
                    continue
                name = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                if name.startswith(prefix):
                    names.append(name)
        return iter(sorted(names))

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StorageError(f"cannot delete {name} in {self.description}: {error}") from error


def open_storage(settings) -> Storage:
    """The backend the settings name; OCI's SDK is imported only when it is chosen."""
    if settings.storage == "oci":
        from oci_storage import open_oci_storage

        return open_oci_storage(settings)
    return LocalStorage(settings.data_dir)
