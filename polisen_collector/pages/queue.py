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
GONE_AFTER runs) and `failed` (FAILED_AFTER failures of another kind, 429 included, or
no path on the site to fetch) are not. A failed try is tried again after RETRY_AFTER,
or after the site's Retry-After when that is longer (up to MAX_SITE_WAIT).
Entries that are no longer pending are dropped once the feed's state (archive/state.py)
no longer remembers their id, so the object stays the size of the state.

Every entry read back is checked as strictly as a setting (`entry_of`): a malformed one is
dropped with one WARNING naming it, and its page is queued again from the state, while the
rest of the queue goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from polisen_collector import readback
from polisen_collector.archive.events import Event
from polisen_collector.messages import one_line
from polisen_collector.readback import shown
from polisen_collector.storage.base import Storage
from polisen_collector.storage.delta_map import (
    DEFAULT_LIMIT,
    Base,
    UnusableBase,
    gzip_json,
    head_fields,
    json_of,
    load_head,
)
from polisen_collector.urls import is_site_path

log = logging.getLogger("polisen.pages")

QUEUE_OBJECT = "metadata/pages.json"
QUEUE_FORMAT = 2
READABLE_FORMATS = (1, 2)
BASE_KIND = "pages"
PENDING = frozenset({"new", "changed", "recheck"})
STATUSES = PENDING | {"done", "gone", "failed"}
RECHECK_AFTER = timedelta(days=1)
RETRY_AFTER = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24), timedelta(hours=24))
MAX_SITE_WAIT = timedelta(hours=24)
GONE_AFTER = 3
FAILED_AFTER = 5
LOGGED_PROBLEMS = 5


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


def unpack(pages: Any, problems: list[str] | None = None) -> dict[int, PageEntry]:
    """The entries of a queue's (or base's) `pages` mapping; a malformed entry is left out and
    described in `problems` (ValueError without it). TypeError when `pages` is no mapping."""
    if not isinstance(pages, dict):
        raise TypeError(f"'pages' is a {type(pages).__name__}, not a mapping")
    entries = {}
    for key, value in pages.items():
        try:
            event_id = readback.event_id(key)
            entries[event_id] = entry_of(value)
        except ValueError as error:
            if problems is None:
                raise
            problems.append(f"entry {one_line(key, 30)}: {error}")
    return entries


_TEXT_FIELDS = ("url", "day", "hash", "status", "fingerprint", "etag", "last_modified", "due", "first_fetched")


def entry_of(value: Any) -> PageEntry:
    """A queue entry read back, checked as strictly as a setting; ValueError says what is wrong.

    A time is repaired to UTC (`due`, `first_fetched` with another offset); everything else
    must be as this module writes it."""
    if not isinstance(value, dict):
        raise ValueError(f"it is a {type(value).__name__}, not an object")
    unknown = set(value) - {field.name for field in fields(PageEntry)}
    if unknown:
        raise ValueError(f"unknown field {shown(sorted(unknown)[0])}")
    for name in ("url", "day", "hash"):
        if name not in value:
            raise ValueError(f"it lacks {name!r}")
    for name in _TEXT_FIELDS:
        text = value.get(name)
        if text is not None and not readback.is_short_text(text):
            raise ValueError(f"{name} {shown(text)} is not a short line of text")
    entry = PageEntry(**value)
    if entry.status not in STATUSES:
        raise ValueError(f"status {shown(entry.status)} is not one of {', '.join(sorted(STATUSES))}")
    if entry.pending and not is_site_path(entry.url):
        raise ValueError(f"url {shown(entry.url)} of a pending page is not a path on the site")
    if not entry.hash:
        raise ValueError("its hash is empty")
    readback.named("day", readback.iso_day, entry.day)
    if type(entry.tries) is not int or not 0 <= entry.tries <= 1000:
        raise ValueError(f"tries {shown(entry.tries)} is not a count")
    return replace(entry, due=_utc_time("due", entry.due), first_fetched=_utc_time("first_fetched", entry.first_fetched))


def _utc_time(name: str, text: str | None) -> str | None:
    return None if text is None else readback.named(name, readback.utc_time, text).isoformat()


def pack(entries: Mapping[int, PageEntry]) -> dict[str, dict[str, Any]]:
    return {str(event_id): {k: v for k, v in asdict(entry).items() if v is not None}
            for event_id, entry in sorted(entries.items())}


def decode_queue(data: bytes | None, storage: Storage | None = None, max_bytes: int = DEFAULT_LIMIT,
                 ) -> tuple[dict[int, PageEntry], Base]:
    """The queue's entries (its base, read from `storage`, merged in) and that base.

    An unreadable queue (one decompressing to more than `max_bytes` too, delta_map.decoded_limit)
    counts as empty: its pages are queued again from the state.
    """
    if data is None:
        return {}, Base()
    problems: list[str] = []
    try:
        document = json_of(data, max_bytes)
        if not isinstance(document, dict) or document.get("format") not in READABLE_FORMATS:
            raise ValueError(f"not a page queue of format {' or '.join(map(str, READABLE_FORMATS))}")
        entries, base = load_head(storage, document, lambda pages: unpack(pages, problems), "pages", "removed",
                                  max_bytes=max_bytes)
    except (ValueError, TypeError, KeyError, AttributeError, UnusableBase) as error:
        log.warning("%s is unreadable (%s); starting a new page queue", QUEUE_OBJECT, error)
        return {}, Base()
    if problems:
        more = f"; and {len(problems) - LOGGED_PROBLEMS} more" if len(problems) > LOGGED_PROBLEMS else ""
        log.warning("%s: dropped %d malformed entries, their pages are queued again from the state: %s%s",
                    QUEUE_OBJECT, len(problems), "; ".join(problems[:LOGGED_PROBLEMS]), more)
        if base.name is not None:  # counted as used up, so the next write starts a new base without them
            base = replace(base, carried=len(base.rows) + 1)
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
        if not is_site_path(url):
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


def record_failure(entry: PageEntry, now: datetime, missing: bool, site_wait: float | None = None) -> None:
    """A failed try: again on a later run, until GONE_AFTER misses (404/410) or FAILED_AFTER failures.

    The next try waits RETRY_AFTER, or the site's Retry-After (`site_wait` seconds, at most
    MAX_SITE_WAIT) when that is longer."""
    entry.tries += 1
    limit = GONE_AFTER if missing else FAILED_AFTER
    if entry.tries >= limit:
        entry.status, entry.due = ("gone" if missing else "failed"), None
        return
    wait = RETRY_AFTER[min(entry.tries, len(RETRY_AFTER)) - 1]
    if site_wait is not None:
        wait = max(wait, min(timedelta(seconds=site_wait), MAX_SITE_WAIT))
    entry.due = (now + wait).isoformat()


def prune(entries: dict[int, PageEntry], remembered: set[int]) -> dict[int, PageEntry]:
    """Drop what is no longer pending once the state forgot the event."""
    return {event_id: entry for event_id, entry in entries.items() if entry.pending or event_id in remembered}


def next_due(entries: dict[int, PageEntry]) -> str | None:
    """When the earliest pending page is due (ISO 8601), None when none is pending."""
    return min((entry.due or "" for entry in entries.values() if entry.pending), default=None)


def backlog(entries: dict[int, PageEntry], now: datetime) -> int:
    return len(due_ids(entries, now))

