"""The object store behind the archive: one small interface, and its errors.

Both backends (storage/local.py, storage/oci.py) hold the same layout
(`events/YYYY/MM/DD/*.jsonl`, `metadata/*`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol

log = logging.getLogger("polisen.storage")


class StorageError(Exception):
    """The store failed; the message is meant for an operator."""


class PreconditionFailed(StorageError):
    """A conditional write lost: someone else changed the object since it was read."""


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str


@dataclass(frozen=True)
class NotModified:
    """A conditional read's answer: the object still has exactly this etag; no body travelled."""

    etag: str


class Reader(Protocol):
    """The part of a store that reading objects back needs."""

    def get(self, name: str) -> StoredObject | None: ...


class Storage(Protocol):
    """What the collector needs from a store.

    `get_if_changed` reads the object unless it still has `etag` (If-None-Match), then
    answers NotModified. `put` with `if_match` writes only if the object still has that
    etag; with `if_none_match` only if it does not exist. Either raises PreconditionFailed
    otherwise.
    """

    description: str

    def get(self, name: str) -> StoredObject | None: ...

    def get_if_changed(self, name: str, etag: str) -> StoredObject | NotModified | None: ...

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


WRITE_ATTEMPTS = 5


class _Unread(Enum):
    UNREAD = "unread"


UNREAD = _Unread.UNREAD
"""`update_object`'s default for `current`: read the object first."""


def update_object(
    storage: Storage,
    name: str,
    change: Callable[[StoredObject | None], bytes | None],
    *,
    current: StoredObject | None | Literal[_Unread.UNREAD] = UNREAD,
    content_type: str = "application/json",
    attempts: int = WRITE_ATTEMPTS,
) -> str | None:
    """Read-change-write a shared object with a conditional write, again on a lost race.

    `change` gets the object as it is (None when absent) and returns its new bytes, or
    None when nothing needs writing. `current` passes an object already read, which
    `change` then gets back as the very same object on the first attempt. Returns the etag
    of what is stored; StorageError when the object kept changing for `attempts` tries.
    """
    stored = storage.get(name) if current is UNREAD else current
    for _ in range(attempts):
        data = change(stored)
        if data is None:
            return stored.etag if stored is not None else None
        try:
            return storage.put(name, data, content_type=content_type,
                               if_match=stored.etag if stored is not None else None, if_none_match=stored is None)
        except PreconditionFailed:
            log.info("%s changed under us (another collector?); reading it again", name)
            stored = storage.get(name)
    raise StorageError(f"could not write {name}: it kept changing during {attempts} attempts")
