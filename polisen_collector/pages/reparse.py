"""Store the parse of stored page versions that have none of the current parser.

The page step stores a version's parsed fields right after the version (pages/store.py), so
readers never parse HTML. Versions stored before it did, by a run killed between the two
writes, or parsed by an older parser version (parse.PARSER_VERSION) have none: the daily
compaction job (`collect_events.py --compact`) parses and stores them here, the oldest day
first, for at most a given time; the next day's job goes on with those left. Their names
tell which versions have a current parse, so a job with nothing to do costs one listing of
pages/.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from polisen_collector import interrupt
from polisen_collector.pages.parse import PARSER_VERSION, parse_page
from polisen_collector.pages.store import iter_day_names, page_versions, read_page_html, write_parsed
from polisen_collector.storage.base import Storage

log = logging.getLogger("polisen.pages")


@dataclass
class ReparseReport:
    parsed: int = 0
    stale_removed: int = 0
    unreadable: int = 0
    left: int = 0

    def __str__(self) -> str:
        text = f"page parses: {self.parsed} page versions parsed and stored (parser v{PARSER_VERSION})"
        if self.stale_removed:
            text += f", {self.stale_removed} older parses removed"
        if self.unreadable:
            text += f", {self.unreadable} unreadable (missing or not gzip)"
        if self.left:
            text += f", {self.left} left for the next run"
        return text


def store_missing_parses(storage: Storage, budget_seconds: float | None = None,
                         clock: Callable[[], float] = time.monotonic) -> ReparseReport:
    """Parse and store every version without a parse of the current parser, until `budget_seconds`
    have passed (None: all of them; at least one in any case); the versions left are counted."""
    report = ReparseReport()
    deadline = clock() + budget_seconds if budget_seconds is not None else None
    for _day, names in iter_day_names(storage):
        for versions in page_versions(names).values():
            for version in versions:
                if version.parsed is not None:
                    for stale in version.stale:  # a run killed after storing the parse, before this
                        storage.delete(stale)
                    report.stale_removed += len(version.stale)
                    continue
                if (deadline is not None and report.parsed and clock() > deadline) or interrupt.requested():
                    report.left += 1
                    continue
                html = read_page_html(storage, version.name)
                if html is None:
                    log.warning("page version %s is missing or not gzip: not parsed", version.name)
                    report.unreadable += 1
                    continue
                write_parsed(storage, version, parse_page(html))
                report.parsed += 1
                report.stale_removed += len(version.stale)
    return report
