"""Event pages in the archive: one gzip object per distinct version, beside the events.

    pages/YYYY/MM/DD/<event id>-<fetched UTC YYYYMMDDTHHMMSSZ>-<fingerprint[:16]>.html.gz

YYYY/MM/DD is the event's own date, as for its events; the object holds the exact bytes
the site served, gzip-compressed. Names sort by event id, then fetch time, so a day's
listing gives each page's versions in order. A version is written only when its
fingerprint (pages/parse.py) differs from the one stored before it; a kill between the
write and the queue update can store the same version twice, and readers skip a
version identical to the one before it (`day_page_versions`).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from polisen_collector.storage.base import Storage

PAGES_PREFIX = "pages/"
_NAME = re.compile(r"^pages/\d{4}/\d{2}/\d{2}/(\d+)-(\d{8}T\d{6}Z)-([0-9a-f]{16})\.html\.gz$")
_FETCHED_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class PageVersion:
    """One stored version of an event's page."""

    name: str
    event_id: int
    fetched: datetime
    fingerprint: str


def day_prefix(day: str) -> str:
    """`2026-05-20` -> `pages/2026/05/20/`."""
    year, month, dom = day.split("-")
    return f"{PAGES_PREFIX}{year}/{month}/{dom}/"


def page_object_name(day: str, event_id: int, fetched: datetime, fingerprint: str) -> str:
    return f"{day_prefix(day)}{event_id}-{fetched.astimezone(UTC):{_FETCHED_FORMAT}}-{fingerprint[:16]}.html.gz"


def page_version_of(name: str) -> PageVersion | None:
    """The version a page object's name describes; None for any other name."""
    match = _NAME.match(name)
    if not match:
        return None
    fetched = datetime.strptime(match.group(2), _FETCHED_FORMAT).replace(tzinfo=UTC)
    return PageVersion(name, int(match.group(1)), fetched, match.group(3))


def write_page_version(storage: Storage, day: str, event_id: int, fetched: datetime, fingerprint: str,
                       html: bytes) -> str:
    """Store the page's exact bytes, compressed; returns the object name."""
    name = page_object_name(day, event_id, fetched, fingerprint)
    storage.put(name, gzip.compress(html, mtime=0), content_type="application/gzip")
    return name


def read_page_html(storage: Storage, name: str) -> bytes | None:
    """The exact bytes of a stored version; None when it is missing or not gzip."""
    stored = storage.get(name)
    if stored is None:
        return None
    try:
        return gzip.decompress(stored.data)
    except (OSError, EOFError):
        return None


def day_page_versions(storage: Storage, day: date | str) -> dict[int, list[PageVersion]]:
    """The page versions of a day's events, oldest first, repeats of the same version skipped."""
    versions: dict[int, list[PageVersion]] = {}
    day_text = day.isoformat() if isinstance(day, date) else day
    for name in storage.list(day_prefix(day_text)):
        version = page_version_of(name)
        if version is None:
            continue
        versions.setdefault(version.event_id, []).append(version)
    for event_id, found in versions.items():
        found.sort(key=lambda v: v.fetched)
        versions[event_id] = [v for i, v in enumerate(found) if i == 0 or found[i - 1].fingerprint != v.fingerprint]
    return versions
