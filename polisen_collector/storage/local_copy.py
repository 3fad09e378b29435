"""A store that keeps a local copy of chosen objects, so reading them again costs no body.

The run reads the state at its start and wrote it at the end of the last run. With a copy of
what was last read or written (bytes and etag, in a file per object, e.g. in LOG_DIR), the
read becomes a conditional one (If-None-Match): when the object still has that etag the
store answers 304 and the copy is used. The copy is trusted only then, for exactly that
etag, and only when its checksum matches; any other answer (changed, deleted, an error)
goes to the store as before, so a lost or stale copy costs a full read, never an event.

Objects that are never changed once written (the bases of storage/delta_map.py) are kept
too, one file each in a folder: their copy is used without asking the store at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from polisen_collector.files import atomic_write, read_regular
from polisen_collector.readback import is_short_text
from polisen_collector.storage.base import NotModified, Storage, StoredObject

log = logging.getLogger("polisen.storage")

KEEP_WRITE_ONCE = 3
HEADER_BYTES = 4096


class LocalCopy:
    """`storage` with the objects named in `copies` (name -> local file) read conditionally,
    and those under a prefix of `write_once` (prefix -> local folder) read once."""

    def __init__(self, storage: Storage, copies: Mapping[str, Path], write_once: Mapping[str, Path] | None = None,
                 max_bytes: int | None = None) -> None:
        self.storage = storage
        self.copies = dict(copies)
        self.write_once = dict(write_once or {})
        self.description = storage.description
        self.max_bytes = max_bytes
        """A copy larger than this (plus its header line) is not read, and costs a full read of the object."""

    def get(self, name: str) -> StoredObject | None:
        if self._write_once_path(name) is not None:
            kept = self._load(name)
            if kept is not None:
                return kept
            found = self.storage.get(name)
            if found is not None:
                self._keep(name, found)
            return found
        if name not in self.copies:
            return self.storage.get(name)
        kept = self._load(name)
        answer = self.storage.get(name) if kept is None else self.storage.get_if_changed(name, kept.etag)
        if isinstance(answer, NotModified):
            assert kept is not None and answer.etag == kept.etag
            return kept
        self._keep(name, answer)
        return answer

    def get_if_changed(self, name: str, etag: str) -> StoredObject | NotModified | None:
        return self.storage.get_if_changed(name, etag)

    def put(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        etag = self.storage.put(name, data, content_type=content_type, if_match=if_match, if_none_match=if_none_match)
        if name in self.copies or self._write_once_path(name) is not None:
            self._keep(name, StoredObject(data=data, etag=etag))
        return etag

    def list(self, prefix: str) -> Iterator[str]:
        return self.storage.list(prefix)

    def delete(self, name: str) -> None:
        self.storage.delete(name)
        if name in self.copies or self._write_once_path(name) is not None:
            self._keep(name, None)

    @staticmethod
    def _drop_older_copies(path: Path) -> None:
        """Keep the newest KEEP_WRITE_ONCE copies of a kind (the text before the first `-`;
        names then sort by when they were written), so the folder does not grow forever."""
        kind = path.name.split("-", 1)[0] + "-"
        older = sorted((p for p in path.parent.glob(f"{kind}*") if not p.name.startswith(".")), reverse=True)
        for stale in older[KEEP_WRITE_ONCE:]:
            stale.unlink(missing_ok=True)

    def _write_once_path(self, name: str) -> Path | None:
        """The file of a write-once object's copy; None for other objects."""
        for prefix, folder in self.write_once.items():
            rest = name[len(prefix):]
            if name.startswith(prefix) and rest and "/" not in rest and not rest.startswith("."):
                return folder / rest
        return None

    def _path(self, name: str) -> Path:
        path = self.copies.get(name) or self._write_once_path(name)
        if path is None:  # only the objects named in copies or write_once have a local copy
            raise KeyError(f"{name} has no local copy")
        return path

    def _load(self, name: str) -> StoredObject | None:
        """The copy, if it is intact and of this object in this store."""
        limit = None if self.max_bytes is None else self.max_bytes + HEADER_BYTES
        try:
            whole = read_regular(self._path(name), limit)
            if limit is not None and len(whole) > limit:
                return None
            header, _, data = whole.partition(b"\n")
            meta = json.loads(header)
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(meta, dict) or meta.get("store") != self.description or meta.get("name") != name:
            return None
        # The etag goes out as a header (If-None-Match): a line break in it would fail every request.
        if meta.get("sha256") != hashlib.sha256(data).hexdigest() or not is_short_text(meta.get("etag")):
            return None
        return StoredObject(data=data, etag=meta["etag"])

    def _keep(self, name: str, stored: StoredObject | None) -> None:
        """Replace the copy (None: the object is gone); a copy that cannot be written is only a lost saving."""
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if stored is None:
                path.unlink(missing_ok=True)
                return
            meta = {"store": self.description, "name": name, "etag": stored.etag,
                    "sha256": hashlib.sha256(stored.data).hexdigest()}
            atomic_write(path, json.dumps(meta).encode("utf-8") + b"\n" + stored.data, durable=False)
            if name not in self.copies:
                self._drop_older_copies(path)
        except OSError as error:
            log.warning("could not keep a local copy of %s in %s: %s", name, path, error)
