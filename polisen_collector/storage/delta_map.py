"""A large shared map kept as a small head over a write-once base, so a run rewrites only what changed.

The state and the page queue each remember a few thousand ids and are rewritten by most runs.
Their object (the head, changed only through storage.base.update_object) names a base under
`metadata/bases/`, written once and never changed, and carries only the rows that differ from
it and the ids gone from it. Once the heads written since the base have carried, together,
more rows than the base holds, the next write starts a new base holding every row: rent until
the rent paid equals the price, then buy, which keeps a run's bytes within twice the best
schedule whatever the rate of change (about sqrt(2 x rows x changes a run) rows a run).
A map too small to be worth a base (MIN_BASE_ROWS) lives in its head.

Bases never change, so a host keeps a copy of each (storage/local_copy.py) and reads one from
a remote store at most once. A run that stores a few events then moves a head of a few KB,
not the whole map. A new base is written before the head that names it, so a kill in between
leaves only an unused base; bases no head has named for KEEP_UNUSED are deleted when the next
base is written.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from polisen_collector.clock import utc_now
from polisen_collector.files import gunzip
from polisen_collector.storage.base import Storage, StorageError

log = logging.getLogger("polisen.storage")

BASES = "metadata/bases/"
MIN_BASE_ROWS = 256
KEEP_UNUSED = timedelta(hours=1)
STAMP = "%Y%m%dT%H%M%SZ"
BASE_CONTENT_TYPE = "application/gzip"
MIN_DECODED_BYTES = 32 << 20
DECODED_BYTES_PER_DAY = 1 << 20
"""A head or base decompresses to at most max(32 MiB, STATE_RETENTION_DAYS x 1 MiB) (`decoded_limit`).
The ids a map holds are those seen within the retention; at the default 30 days that is about
4,200 ids, 0.2 MB as a state and 1.7 MB as a page queue decompressed, so the bound leaves room for
large backfills while a gzip bomb (a few MB inflating to GBs) is refused after 32 MiB."""

Row = TypeVar("Row")


class UnusableBase(StorageError):
    """The base a head names is missing or unreadable."""


@dataclass(frozen=True)
class Base:
    """The base a head was read with (name None: the head holds every row), and how many
    rows the heads written since that base have carried in all (the head's `carried`)."""

    name: str | None = None
    rows: Mapping[int, Any] = field(default_factory=dict)
    carried: int = 0


@dataclass(frozen=True)
class Split:
    """What a head must carry over its base; `base.carried` counts these rows too."""

    base: Base
    changed: dict[int, Any]
    removed: list[int]


def gzip_json(document: Any) -> bytes:
    """Compact JSON, gzip-compressed the same way every time (no timestamp), as heads and bases are stored."""
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"), compresslevel=9, mtime=0)


def decoded_limit(retention_days: int) -> int:
    """The most bytes a head or base may decompress to, for a state kept `retention_days`."""
    return max(MIN_DECODED_BYTES, retention_days * DECODED_BYTES_PER_DAY)


DEFAULT_LIMIT = decoded_limit(30)


def json_of(data: bytes, max_bytes: int = DEFAULT_LIMIT) -> Any:
    """The JSON in `data`, gzip-compressed or plain (as older heads were), of at most `max_bytes`
    decompressed; ValueError when it is neither, or larger (files.TooLarge)."""
    if data[:2] == b"\x1f\x8b":
        text: bytes | bytearray = gunzip(data, max_bytes)
    elif len(data) > max_bytes:
        raise ValueError(f"more than {max_bytes} bytes")
    else:
        text = data
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load_head(
    storage: Storage | None, head: dict[str, Any], unpack: Callable[[Any], dict[int, Row]], rows_key: str,
    removed_key: str, *, max_bytes: int = DEFAULT_LIMIT,
) -> tuple[dict[int, Row], Base]:
    """The whole map of a head (its base read from `storage` and merged in), and that base.

    ValueError, TypeError or KeyError when the head is malformed; UnusableBase when its base is.
    """
    changed = unpack(head[rows_key])
    removed = head.get(removed_key, [])
    if not isinstance(removed, list) or not all(isinstance(key, int) for key in removed):
        raise ValueError(f"{removed_key!r} is not a list of ids")
    name = head.get("base")
    if name is None:
        return changed, Base()
    if storage is None:
        raise UnusableBase(f"it names the base {name} but was read without its store")
    base = read_base(storage, str(name), unpack, head.get("carried", 0), max_bytes)
    return merge(base, changed, removed), base


def head_fields(
    storage: Storage | None, kind: str, rows: Mapping[int, Row], base: Base | None, *,
    pack: Callable[[Mapping[int, Row]], Any], rows_key: str, removed_key: str,
) -> dict[str, Any]:
    """The fields of a head holding `rows`: over `base`, or over a new base written now, or
    (no `storage`) over none."""
    found = Split(Base(), dict(rows), []) if storage is None else split(storage, kind, rows, base or Base(), pack)
    return {"base": found.base.name, rows_key: pack(found.changed), removed_key: found.removed,
            "carried": found.base.carried}


def read_base(storage: Storage, name: str, unpack: Callable[[Any], dict[int, Row]], carried: Any,
              max_bytes: int = DEFAULT_LIMIT) -> Base:
    """The rows of the base `name`, with the head's count of rows `carried` since; UnusableBase
    when the base is gone or does not decode."""
    if isinstance(carried, bool) or not isinstance(carried, int) or carried < 0:
        raise UnusableBase(f"its count of rows carried since the base is not a count: {carried!r}")
    if not name.startswith(BASES):
        raise UnusableBase(f"{name} is not a base object (they live under {BASES})")
    stored = storage.get(name)
    if stored is None:
        raise UnusableBase(f"its base {name} is missing")
    try:
        return Base(name, unpack(json_of(stored.data, max_bytes)["rows"]), carried)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise UnusableBase(f"its base {name} is unreadable: {error}") from None


def merge(base: Base, changed: Mapping[int, Row], removed: list[int]) -> dict[int, Row]:
    """The whole map: the base, overlaid with the head's rows, less the ids the head removed."""
    rows = {**base.rows, **changed}
    for key in removed:
        rows.pop(key, None)
    return rows


def split(
    storage: Storage, kind: str, rows: Mapping[int, Row], base: Base, pack: Callable[[Mapping[int, Row]], Any],
) -> Split:
    """How to store `rows` over `base`: the rows that differ from it, or a new base written now."""
    if len(rows) < MIN_BASE_ROWS:
        return Split(Base(), dict(rows), [])
    changed = {key: row for key, row in rows.items() if key not in base.rows or base.rows[key] != row}
    removed = sorted(key for key in base.rows if key not in rows)
    carried = base.carried + len(changed) + len(removed)
    if base.name is not None and carried <= len(base.rows):
        return Split(replace(base, carried=carried), changed, removed)
    new_base = write_base(storage, kind, rows, pack)
    drop_unused_bases(storage, kind, keep={new_base.name, base.name})
    return Split(new_base, {}, [])


def write_base(storage: Storage, kind: str, rows: Mapping[int, Row], pack: Callable[[Mapping[int, Row]], Any]) -> Base:
    data = gzip_json({"rows": pack(rows)})
    name = f"{BASES}{kind}-{utc_now().strftime(STAMP)}-{hashlib.sha256(data).hexdigest()[:16]}.json.gz"
    storage.put(name, data, content_type=BASE_CONTENT_TYPE)
    log.info("wrote %s (%d rows, %d bytes)", name, len(rows), len(data))
    return Base(name, dict(rows))


def drop_unused_bases(storage: Storage, kind: str, keep: set[str | None]) -> None:
    """Delete this kind's bases other than `keep` written more than KEEP_UNUSED ago.

    A head names either its predecessor's base or one written just before it, so an older
    base that is not kept is named by no head a run can still be reading. Failing to delete
    one costs only space.
    """
    cutoff = utc_now() - KEEP_UNUSED
    try:
        for name in list(storage.list(f"{BASES}{kind}-")):
            written = base_written_at(name)
            if name not in keep and written is not None and written < cutoff:
                storage.delete(name)
    except StorageError as error:
        log.warning("could not delete unused bases of %s: %s", kind, error)


def base_written_at(name: str) -> datetime | None:
    """When a base was written, from its name; None for a name not of this module's form."""
    try:
        stamp = name.rsplit("/", 1)[-1].split("-")[-2]
        return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None
