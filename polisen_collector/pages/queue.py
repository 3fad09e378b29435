"""The page queue: which event pages are waiting, and what is known of each page fetched.

One gzip-compressed JSON object in the store, `metadata/pages.json`, changed only through
storage.base.update_object. Format 2 is a head over a write-once base (storage/delta_map.py):
`base` names it, `pages` holds the entries that differ from it, `removed` the ids gone
from it and `carried` the entries the heads have carried since the base, so a run that
fetches a page rewrites a few KB. Format 1 (every entry in the one
object, gzip-compressed or plain JSON) is still read. Per event id it keeps the event content hash the page was
queued for (so a feed edit queues the page again), the page's status, when it is due,
failed tries, and the fingerprint and validators of its latest stored version (a page
re-checked and `done` keeps only its hash, fingerprint and first fetch).

Statuses: `new` (never fetched), `changed` (the feed's content changed), `recheck` (one
look again RECHECK_AFTER the first fetch) are pending; `done`, `gone` (404/410 on
GONE_AFTER runs) and `failed` (FAILED_AFTER failures of another kind) are not.
Entries that are no longer pending are dropped once the feed's state (archive/state.py)
no longer remembers their id, so the object stays the size of the state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from polisen_collector.archive.events import Event
from polisen_collector.storage.base import Storage
from polisen_collector.storage.delta_map import Base, UnusableBase, gzip_json, head_fields, json_of, load_head

log = logging.getLogger("polisen.pages")

QUEUE_OBJECT = "metadata/pages.json"
QUEUE_FORMAT = 2
BASE_KIND = "pages"
PENDING = frozenset({"new", "changed", "recheck"})
RECHECK_AFTER = timedelta(days=1)
RETRY_AFTER = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24), timedelta(hours=24))
GONE_AFTER = 3
FAILED_AFTER = 5


@dataclass
class PageEntry:
    url: str
    day: str
    hash: str
    status: str = "new"
    due: str | None = None
    tries: int = 0
    fingerprint: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    first_fetched: str | None = None

    @property
    def pending(self) -> bool:
        return self.status in PENDING


def unpack(pages: Any) -> dict[int, PageEntry]:
    return {int(event_id): PageEntry(**fields) for event_id, fields in pages.items()}


def pack(entries: Mapping[int, PageEntry]) -> dict[str, dict[str, Any]]:
    return {str(event_id): {k: v for k, v in asdict(entry).items() if v is not None}
            for event_id, entry in sorted(entries.items())}


def decode_queue(data: bytes | None, storage: Storage | None = None) -> tuple[dict[int, PageEntry], Base]:
    """The queue's entries (its base, read from `storage`, merged in) and that base.

    An unreadable queue counts as empty: its pages are queued again from the state.
    """
    if data is None:
        return {}, Base()
    try:
        entries, base = load_head(storage, json_of(data), unpack, "pages", "removed")
    except (ValueError, TypeError, KeyError, AttributeError, UnusableBase) as error:
        log.warning("%s is unreadable (%s); starting a new page queue", QUEUE_OBJECT, error)
        return {}, Base()
    return entries, base


def encode_queue(entries: dict[int, PageEntry], *, storage: Storage | None = None, base: Base | None = None) -> bytes:
    """The queue's bytes; with `storage`, a head over `base` (or over a new base written now)."""
    return gzip_json({"format": QUEUE_FORMAT, **head_fields(storage, BASE_KIND, entries, base, pack=pack, rows_key="pages",
                                                                 removed_key="removed")})


def enqueue(entries: dict[int, PageEntry], events: list[Event], now: datetime) -> dict[int, PageEntry]:
    """Entries for the events whose page is not queued for their current content: new or edited."""
    queued: dict[int, PageEntry] = {}
    for event in events:
        url = event.raw.get("url")
        known = entries.get(event.id)
        if not isinstance(url, str) or not url.startswith("/"):
            if known is None or known.hash != event.hash:  # no page to fetch; known, so never looked up again
                queued[event.id] = unfetchable(event.day, event.hash)
            continue
        if known is None:
            queued[event.id] = PageEntry(url=url, day=event.day, hash=event.hash, due=now.isoformat())
        elif known.hash != event.hash:
            queued[event.id] = PageEntry(**{**asdict(known), "url": url, "day": event.day, "hash": event.hash,
                                            "status": "changed", "due": now.isoformat(), "tries": 0})
    return queued


def unfetchable(day: str, content_hash: str) -> PageEntry:
    """An entry for an event whose page cannot be fetched (no usable url): `failed` at once."""
    return PageEntry(url="", day=day, hash=content_hash, status="failed")


def due_ids(entries: dict[int, PageEntry], now: datetime) -> list[int]:
    """Pending pages whose time has come, the longest waiting first."""
    ready = [(entry.due or "", event_id) for event_id, entry in entries.items()
             if entry.pending and (entry.due is None or datetime.fromisoformat(entry.due) <= now)]
    return [event_id for _, event_id in sorted(ready)]


def record_fetched(entry: PageEntry, now: datetime, fingerprint: str, etag: str | None, last_modified: str | None) -> None:
    """A 200 or 304: the page is known; a first fetch is looked at once more a day later."""
    entry.fingerprint, entry.etag, entry.last_modified, entry.tries = fingerprint, etag, last_modified, 0
    if entry.first_fetched is None:
        entry.first_fetched = now.isoformat()
        entry.status, entry.due = "recheck", (now + RECHECK_AFTER).isoformat()
    else:
        # Re-checked: nothing will fetch it again unless the feed's content changes, and then
        # from the event's own url, without validators. Only the hash and the fingerprint stay,
        # so the queue (rewritten by every run that fetches a page) keeps small.
        entry.status, entry.due = "done", None
        entry.url, entry.etag, entry.last_modified = "", None, None


def record_failure(entry: PageEntry, now: datetime, missing: bool) -> None:
    """A failed try: again on a later run, until GONE_AFTER misses (404/410) or FAILED_AFTER failures."""
    entry.tries += 1
    limit = GONE_AFTER if missing else FAILED_AFTER
    if entry.tries >= limit:
        entry.status, entry.due = ("gone" if missing else "failed"), None
        return
    entry.due = (now + RETRY_AFTER[min(entry.tries, len(RETRY_AFTER)) - 1]).isoformat()


def prune(entries: dict[int, PageEntry], remembered: set[int]) -> dict[int, PageEntry]:
    """Drop what is no longer pending once the state forgot the event."""
    return {event_id: entry for event_id, entry in entries.items() if entry.pending or event_id in remembered}


def next_due(entries: dict[int, PageEntry]) -> str | None:
    """When the earliest pending page is due (ISO 8601), None when none is pending."""
    return min((entry.due or "" for entry in entries.values() if entry.pending), default=None)


def backlog(entries: dict[int, PageEntry], now: datetime) -> int:
    return len(due_ids(entries, now))

