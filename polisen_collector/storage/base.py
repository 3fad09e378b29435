"""The object store behind the archive: one small interface, and its errors.

Both backends (storage/local.py, storage/oci.py) hold the same layout
(`events/YYYY/MM/DD/*.jsonl`, `metadata/*`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
