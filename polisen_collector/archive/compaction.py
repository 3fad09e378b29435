"""Compaction: merge each old day's per-run objects into one object holding every version once.

Steps for a day, each safe to be killed after: (1) write the sidecar of collection times,
(2) write the compacted object, both under deterministic names and with conditional
writes, (3) delete the per-run objects that were merged. Readers merge identical versions
across a day's objects (archive.read_versions), so every intermediate layout reads the same,
and a rerun merges an existing compacted object with whatever per-run objects are left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from polisen_collector import interrupt
from polisen_collector.archive.layout import (
    collected_times_name,
    compacted_object_name,
    encode_collected_times,
    encode_compacted,
    group_by_day,
    is_compacted,
    list_event_objects,
    read_versions,
)
from polisen_collector.storage.base import PreconditionFailed, Storage, StoredObject

log = logging.getLogger("polisen.compaction")


@dataclass
class CompactionReport:
    days_compacted: int = 0
    days_skipped: int = 0
    objects_removed: int = 0
    versions_kept: int = 0
    copies_dropped: int = 0

    def __str__(self) -> str:
        return (f"compaction: {self.days_compacted} days compacted, {self.objects_removed} per-run objects "
                f"removed, {self.versions_kept} versions kept, {self.copies_dropped} identical copies dropped, "
                f"{self.days_skipped} days skipped")


def days_to_compact(names: list[str], cutoff: date) -> list[tuple[date, list[str]]]:
    """Days before cutoff that still have per-run objects; from the listing alone."""
    return [
        (day, day_names) for day, day_names in group_by_day(names)
        if day < cutoff and any(not is_compacted(name) for name in day_names)
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
    target = compacted_object_name(day)
    sidecar = collected_times_name(target)
    reading = _ReadOnce(storage)
    # Etags before reading, so a compaction elsewhere that changes them makes our writes fail.
    etags = {name: (stored.etag if (stored := reading.get(name)) else None) for name in (sidecar, target)}
    found = read_versions(reading, names)  # the compacted object and its sidecar are not read again
    if found.bad:
        for line in found.bad:
            log.warning("not compacting %s: unreadable line %s", day, line)
        report.days_skipped += 1
        return
    try:
        for name, data, content_type in (
            (sidecar, encode_collected_times(found.versions), "application/json"),
            (target, encode_compacted(found.versions), "application/x-ndjson"),
        ):
            storage.put(name, data, content_type=content_type,
                        if_match=etags[name], if_none_match=etags[name] is None)
    except PreconditionFailed as error:
        log.warning("not compacting %s now: %s (another compaction?); the next run finishes it", day, error)
        report.days_skipped += 1
        return
    merged = [name for name in names if not is_compacted(name)]
    for name in merged:
        storage.delete(name)
    report.days_compacted += 1
    report.objects_removed += len(merged)
    report.versions_kept += len(found.versions)
    report.copies_dropped += found.copies
    log.info("compacted %s: %d objects into %s (%d versions)", day, len(merged), target, len(found.versions))


class _ReadOnce:
    """`storage` for reading one day: each object is read once, however often it is asked for."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.read: dict[str, StoredObject | None] = {}

    def get(self, name: str) -> StoredObject | None:
        if name not in self.read:
            self.read[name] = self.storage.get(name)
        return self.read[name]
