"""The page and geography columns of the export: what the event's page says, and where it happened.

export.py builds a row per event (or per event version) from the feed, `page_url` included;
`PageColumns.add` gives those rows of one event the parsed text of its archived page, as
stored beside it (pages/store.py), and its place (geography.place_event). A version without
a stored parse of the current parser is parsed here, counted, and with `store_parses` its
parse is stored, so the next export reads it. By default the event's latest page version (of
any day its versions are dated); with all versions, each page version beside the feed version
that was current when it was fetched (one row per page version, and a row without page for a
feed version that has none).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from polisen_collector.geography import place_event
from polisen_collector.pages.parse import ParsedPage, parse_page
from polisen_collector.pages.store import (
    PageVersion,
    day_prefix,
    page_versions,
    read_page_html,
    read_parsed,
    write_parsed,
)
from polisen_collector.storage.base import Storage

PAGE_COLUMNS = ["page_title", "page_preamble", "page_body", "page_author", "page_published", "page_fetched"]
CACHED_DAYS = 16


class PageColumns:
    """Adds page and geography columns to export rows. The export hands it each day's page objects from
    its one listing of pages/ (export.list_days), as the days advance; a day not handed (an event's
    versions dated days apart, older than the days kept) is listed alone. It reads a page's fields
    once for all the rows of its event (they come one after the other).
    `parsed` counts the versions whose HTML had to be parsed, `stored` the parses stored."""

    def __init__(self, storage: Storage, store_parses: bool = False) -> None:
        self.storage = storage
        self.store_parses = store_parses
        self.parsed = 0
        self.stored = 0
        self._days: OrderedDict[str, dict[int, list[PageVersion]]] = OrderedDict()
        self._last: tuple[str, dict[str, Any]] | None = None

    def know(self, day: str, names: Iterable[str]) -> None:
        """The day's page objects, from a listing the caller made already."""
        self._days[day] = page_versions(names)
        while len(self._days) > CACHED_DAYS:
            self._days.popitem(last=False)

    def versions(self, event_id: int, day: str) -> list[PageVersion]:
        if day not in self._days:
            self.know(day, self.storage.list(day_prefix(day)))
        return self._days[day].get(event_id, [])

    def page_fields(self, version: PageVersion | None) -> dict[str, Any]:
        if version is None:
            return dict.fromkeys(PAGE_COLUMNS)
        if self._last is None or self._last[0] != version.name:
            self._last = version.name, self._read_fields(version)
        return dict(self._last[1])

    def _read_fields(self, version: PageVersion) -> dict[str, Any]:
        fields: dict[str, Any] = dict.fromkeys(PAGE_COLUMNS)
        page = read_parsed(self.storage, version) or self._parse(version)
        fields["page_fetched"] = version.fetched
        if page is not None and page.reason is None:
            fields.update(page_title=page.title, page_preamble=page.preamble, page_body=page.body,
                          page_author=page.author,
                          page_published=datetime.fromisoformat(page.published) if page.published else None)
        return fields

    def _parse(self, version: PageVersion) -> ParsedPage | None:
        """The page's fields from its HTML: for a version whose parse by this parser is not stored."""
        html = read_page_html(self.storage, version.name)
        if html is None:
            return None
        self.parsed += 1
        page = parse_page(html)
        if self.store_parses:
            write_parsed(self.storage, version, page)
            self.stored += 1
        return page

    def add(self, rows: list[dict[str, Any]], all_versions: bool, days: Iterable[str]) -> list[dict[str, Any]]:
        """The rows of one event (rows_of_id's, oldest version first) with page and place columns. Its page
        versions are looked for on each of `days`, the days its versions are dated (a page is stored under
        the date of the version it was fetched for: an edit that moved the event's date leaves pages on both)."""
        if not rows:
            return rows
        event_id, dated = rows[-1]["id"], sorted(set(days))
        pages = self.versions(event_id, dated[0]) if len(dated) == 1 else sorted(
            (version for day in dated for version in self.versions(event_id, day)),
            key=lambda version: (version.fetched, version.name))
        if not all_versions:
            return [self._complete(row, pages[-1] if pages else None) for row in rows]
        paired: dict[int, list[PageVersion]] = {}
        for version in pages:
            current = [i for i, row in enumerate(rows) if row["first_collected"] and row["first_collected"] <= version.fetched]
            paired.setdefault(current[-1] if current else 0, []).append(version)
        return [self._complete(row, version) for i, row in enumerate(rows) for version in paired.get(i, [None])]

    def _complete(self, row: dict[str, Any], version: PageVersion | None) -> dict[str, Any]:
        place = place_event(row.get("location_name"), row.get("name"))
        fields = self.page_fields(version)
        return {**row, **fields, "location_level": place.location_level, "municipality_code": place.municipality_code,
                "municipality_name": place.municipality_name, "county_code": place.county_code,
                "county_name": place.county_name}
