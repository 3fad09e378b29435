"""Compaction: merge each old day's per-run objects into one object holding every version once.

Steps for a day, each safe to be killed after: (1) write the sidecar of collection times,
(2) write the compacted object, both named by their content and written only if absent,
(3) delete the objects that were merged: the per-run ones, then any older compacted object
(before its sidecar). Readers merge identical versions across a day's objects
(archive.read_versions), so every intermediate layout reads the same, and a rerun merges
whatever compacted and per-run objects are left. A day compacted again (a late version
arrived) gets a compacted object of a new name: what an export's update tells changes by.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, timedelta

from polisen_collector import interrupt
from polisen_collector.archive.layout import (
    ListedReading,
    collected_times_name,
    compacted_object_name,
    encode_collected_times,
    encode_compacted,
    group_by_day,
    is_compacted,
    list_event_objects,
    read_versions,
)
from polisen_collector.storage.base import PreconditionFailed, Storage

log = logging.getLogger("polisen.compaction")


@dataclass
class CompactionReport:
    days_compacted: int = 0
    days_skipped: int = 0
    objects_removed: int = 0
    versions_kept: int = 0
    copies_dropped: int = 0

    def __str__(self) -> str:
        return (f"compaction: {self.days_compacted} days compacted, {self.objects_removed} objects merged and "
                f"removed, {self.versions_kept} versions kept, {self.copies_dropped} identical copies dropped, "
                f"{self.days_skipped} days skipped")


def days_to_compact(names: list[str], cutoff: date) -> list[tuple[date, list[str]]]:
    """Days before cutoff that still have per-run objects, or two compacted ones (a compaction killed before
    it deleted the older); from the listing alone."""
    return [
        (day, day_names) for day, day_names in group_by_day(names)
        if day < cutoff and (len(day_names) > 1 or not is_compacted(day_names[0]))
    ]


def compact(storage: Storage, today: date, after_days: int) -> CompactionReport:
    """Compact every day older than after_days; costs one listing when there is nothing to do."""
    report = CompactionReport()
    cutoff = today - timedelta(days=after_days)
    for day, names in days_to_compact(list_event_objects(storage), cutoff):
        if interrupt.requested():  # between two days: each day is compacted whole or not at all
            break
        compact_day(storage, day, names, report)
    return report


def compact_day(storage: Storage, day: date, names: list[str], report: CompactionReport) -> None:
    reading = ListedReading(storage, names)
    found = read_versions(reading, names)
    if reading.gone:  # another compaction merged it meanwhile: what was read is not the whole day
        log.warning("not compacting %s now: %s went while it was read (another compaction?); the next run "
                    "finishes it", day, reading.gone[0])
        report.days_skipped += 1
        return
    if found.bad:
        for line in found.bad:
            log.warning("not compacting %s: unreadable line %s", day, line)
        report.days_skipped += 1
        return
    compacted, collected_times = encode_compacted(found.versions), encode_collected_times(found.versions)
    target = compacted_object_name(day, compacted, collected_times)
    if target not in names:  # else a killed rerun wrote it: named by its content, it holds these versions
        for name, data, content_type in ((collected_times_name(target), collected_times, "application/json"),
                                         (target, compacted, "application/x-ndjson")):
            with suppress(PreconditionFailed):  # the same content, from a killed compaction or another at the same time
                storage.put(name, data, content_type=content_type, if_none_match=True)
    merged = [name for name in names if name != target]
    for name in merged:
        storage.delete(name)
        if is_compacted(name):
            storage.delete(collected_times_name(name))  # after its object: never an object without its times
    report.days_compacted += 1
    report.objects_removed += len(merged)
    report.versions_kept += len(found.versions)
    report.copies_dropped += found.copies
    log.info("compacted %s: %d objects into %s (%d versions)", day, len(merged), target, len(found.versions))
