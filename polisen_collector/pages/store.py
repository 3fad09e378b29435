"""Event pages in the archive: one gzip object per distinct version, and its parsed fields beside it.

    pages/YYYY/MM/DD/<event id>-<fetched UTC YYYYMMDDTHHMMSSZ>-<fingerprint[:16]>.html.gz
    pages/YYYY/MM/DD/<event id>-<fetched UTC YYYYMMDDTHHMMSSZ>-<fingerprint[:16]>.parsed-v<N>.json

YYYY/MM/DD is the event's own date, as for its events; the `.html.gz` object holds the exact
bytes the site served, gzip-compressed, and is the version. The `.parsed-v<N>.json` object
holds what parser version N (parse.PARSER_VERSION) read in it, written right after the page,
so readers never parse HTML: a version without a parse of the current parser (stored before
parses were, by a run killed between the two writes, or parsed by an older parser) is parsed
by its reader and stored by pages/reparse.py. Names sort by event id, then fetch time, so a
day's listing gives each page's versions in order. A version is written only when its
fingerprint (pages/parse.py) differs from the one stored before it; a kill between the
write and the queue update can store the same version twice, and readers skip a version
identical to the one before it (`page_versions`).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from itertools import groupby

from polisen_collector.files import gunzip
from polisen_collector.pages.parse import PARSER_VERSION, ParsedPage, content_fingerprint
from polisen_collector.storage.base import Storage

PAGES_PREFIX = "pages/"
PAGE_SUFFIX = ".html.gz"
_NAME = re.compile(r"^pages/\d{4}/\d{2}/\d{2}/(\d+)-(\d{8}T\d{6}Z)-([0-9a-f]{16})\.html\.gz$")
_PARSED_NAME = re.compile(r"^(pages/\d{4}/\d{2}/\d{2}/\d+-\d{8}T\d{6}Z-[0-9a-f]{16})\.parsed-v(\d{1,6})\.json$")
_FETCHED_FORMAT = "%Y%m%dT%H%M%SZ"
PARSED_FIELDS = ("title", "preamble", "body", "author", "published", "reason")
MAX_STORED_PAGE_BYTES = 100_000_000
"""The most a stored page inflates to: the largest PAGE_MAX_BYTES allows."""


@dataclass(frozen=True)
class PageVersion:
    """One stored version of an event's page, and where its fields are stored.

    `parsed` names the object holding the current parser's fields (None when there is none:
    the reader parses the page); `stale` the parses of older parsers, of this version and of
    its skipped copies, which pages/reparse.py removes once the current one is stored."""

    name: str
    event_id: int
    fetched: datetime
    fingerprint: str
    parsed: str | None = None
    stale: tuple[str, ...] = ()


def day_prefix(day: str) -> str:
    """`2026-05-20` -> `pages/2026/05/20/`."""
    year, month, dom = day.split("-")
    return f"{PAGES_PREFIX}{year}/{month}/{dom}/"


def page_object_name(day: str, event_id: int, fetched: datetime, fingerprint: str) -> str:
    return f"{day_prefix(day)}{event_id}-{fetched.astimezone(UTC):{_FETCHED_FORMAT}}-{fingerprint[:16]}{PAGE_SUFFIX}"


def parsed_object_name(page_name: str, parser: int = PARSER_VERSION) -> str:
    """`...-<fingerprint[:16]>.html.gz` -> `...-<fingerprint[:16]>.parsed-v1.json`: not `*.html.gz`,
    and the parser's version in the name, so a listing tells which versions need parsing."""
    return f"{page_name.removesuffix(PAGE_SUFFIX)}.parsed-v{parser}.json"


def page_version_of(name: str) -> PageVersion | None:
    """The version a page object's name describes; None for any other name."""
    match = _NAME.match(name)
    if not match:
        return None
    try:  # the name's basic ISO 8601 time (20260520T093809Z); strptime took 50 times longer, per page version
        fetched = datetime.fromisoformat(match.group(2))
    except ValueError:
        return None  # no time (20261399T...): not a version the collector stored
    return PageVersion(name, int(match.group(1)), fetched, match.group(3))


def encode_parsed(version: PageVersion, page: ParsedPage) -> bytes:
    """The parsed object of a version: the same bytes for the same page and parser, whoever writes it."""
    document = {
        "event_id": version.event_id,
        "fetched": version.fetched.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parser": PARSER_VERSION,
        "fingerprint": content_fingerprint(page),
        **{field: getattr(page, field) for field in PARSED_FIELDS},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def decode_parsed(data: bytes) -> ParsedPage | None:
    """The fields of a parsed object of the current parser; None when it is unreadable or of another."""
    try:
        document = json.loads(data)
        if document["parser"] != PARSER_VERSION:
            return None
        values = {field: document[field] for field in PARSED_FIELDS}
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if not all(value is None or isinstance(value, str) for value in values.values()):
        return None
    return ParsedPage(**values)


def write_page_version(storage: Storage, day: str, event_id: int, *, fetched: datetime, fingerprint: str,
                       html: bytes, page: ParsedPage) -> str:
    """Store the page's exact bytes, compressed, then its parsed fields; returns the page's object name.

    The page first: a kill between the two writes leaves a version without its parse, which
    readers parse themselves, never a parse without its page."""
    name = page_object_name(day, event_id, fetched, fingerprint)
    storage.put(name, gzip.compress(html, mtime=0), content_type="application/gzip")
    write_parsed(storage, PageVersion(name, event_id, fetched, fingerprint[:16]), page)
    return name


def write_parsed(storage: Storage, version: PageVersion, page: ParsedPage) -> str:
    """Store the current parser's fields of a stored version, then remove its older parsers' (the
    current one first, so a kill between leaves a parse); returns the object's name."""
    name = parsed_object_name(version.name)
    storage.put(name, encode_parsed(version, page), content_type="application/json")
    for stale in version.stale:
        storage.delete(stale)
    return name


def read_page_html(storage: Storage, name: str) -> bytes | None:
    """The exact bytes of a stored version; None when it is missing, not gzip, or inflates to more
    than MAX_STORED_PAGE_BYTES (a gzip bomb planted among the pages)."""
    stored = storage.get(name)
    if stored is None:
        return None
    try:
        return bytes(gunzip(stored.data, MAX_STORED_PAGE_BYTES))
    except ValueError:
        return None


def read_parsed(storage: Storage, version: PageVersion) -> ParsedPage | None:
    """The stored fields of a version; None when it has none of the current parser, or they are unreadable."""
    if version.parsed is None:
        return None
    stored = storage.get(version.parsed)
    return decode_parsed(stored.data) if stored is not None else None


def page_versions(names: Iterable[str]) -> dict[int, list[PageVersion]]:
    """The page versions among a day's object names, per event oldest first, each with its parse.

    Repeats of the same version (a run killed before its queue write fetches the page again)
    are skipped: the first keeps its fetch time, and takes a repeat's parse when it has none
    (the same fingerprint is the same fields)."""
    found: dict[int, list[PageVersion]] = {}
    parses: dict[str, dict[int, str]] = {}
    for name in names:
        version = page_version_of(name)
        if version is not None:
            found.setdefault(version.event_id, []).append(version)
        elif (match := _PARSED_NAME.match(name)) is not None:
            parses.setdefault(match.group(1) + PAGE_SUFFIX, {})[int(match.group(2))] = name
    versions: dict[int, list[PageVersion]] = {}
    for event_id, stored in found.items():
        stored.sort(key=lambda v: v.fetched)
        kept: list[PageVersion] = []
        for version in stored:
            own = parses.get(version.name, {})
            current = own.get(PARSER_VERSION)
            stale = tuple(name for parser, name in sorted(own.items()) if parser < PARSER_VERSION)
            if kept and kept[-1].fingerprint == version.fingerprint:
                first = kept[-1]
                kept[-1] = replace(first, parsed=first.parsed or current, stale=first.stale + stale)
            else:
                kept.append(replace(version, parsed=current, stale=stale))
        versions[event_id] = kept
    return versions


def day_page_versions(storage: Storage, day: date | str) -> dict[int, list[PageVersion]]:
    """The page versions of a day's events, oldest first, repeats of the same version skipped."""
    day_text = day.isoformat() if isinstance(day, date) else day
    return page_versions(storage.list(day_prefix(day_text)))


_DAY_FOLDER = re.compile(r"pages/(\d{4})/(\d{2})/(\d{2})")


def _day_of_folder(folder: str) -> date | None:
    """`pages/2026/05/20` -> date(2026, 5, 20); None for any other folder."""
    match = _DAY_FOLDER.fullmatch(folder)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def day_of_page_object(name: str) -> date | None:
    """`pages/2026/05/20/...` -> date(2026, 5, 20); None for a name outside a day's folder."""
    folder, _, base = name.rpartition("/")
    return _day_of_folder(folder) if base else None


def iter_day_names(storage: Storage) -> Iterator[tuple[date, list[str]]]:
    """(day, its page object names) of every day with pages, in date order, streamed from the listing
    (grouped by folder: years of pages are hundreds of thousands of names, each day's checked once)."""
    for folder, group in groupby(storage.list(PAGES_PREFIX), key=lambda name: name.rpartition("/")[0]):
        day = _day_of_folder(folder)
        if day is not None:
            yield day, list(group)
