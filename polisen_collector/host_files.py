"""The files a host keeps in LOG_DIR for the jobs beside the log: locks, markers and local copies.

They are this host's own (two hosts sharing a bucket each keep theirs) and can be deleted
while no job runs: each then costs a job at most a full read of what it stood for. Named
elsewhere: the log (logging_setup.py), the rate-limit ledger (api/rate_limit.py), the
withdrawal hints (recovery/withdrawals.py) and the health files (HEALTH_FILE, health/file.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostFiles:
    log_dir: Path

    @property
    def run_lock(self) -> Path:
        """Held by a collection run, an on-demand backfill and compaction: one of them at a time."""
        return self.log_dir / "collect_events.lock"

    @property
    def audit_lock(self) -> Path:
        """Held by an audit tick, which runs beside the collection, never inside it."""
        return self.log_dir / "audit.lock"

    @property
    def backfill_marker(self) -> Path:
        """Present while this host has backfill days queued in the store: only then does a run
        read the queue (or import the backfill), so a run that finds nothing new costs one API
        request and one conditional state read."""
        return self.log_dir / "backfill-pending"

    @property
    def api_cache(self) -> Path:
        """The validators (ETag, Last-Modified) of the last answer whose events are stored."""
        return self.log_dir / "api-cache.json"

    @property
    def pages_hint(self) -> Path:
        """When the page queue next has a page due, as this host last saw it ("idle": none).
        A run that stored no event skips the page step (and its queue read) until then."""
        return self.log_dir / "pages-next-due"

    @property
    def state_copy(self) -> Path:
        """This host's copy of the state as it last read or wrote it: a remote store sends no
        body while it has not changed since (storage/local_copy.py)."""
        return self.log_dir / "state-cache"

    @property
    def queue_copy(self) -> Path:
        """The same for the page queue."""
        return self.log_dir / "pages-cache"

    @property
    def bases(self) -> Path:
        """Copies of the write-once bases of the state and the queue (storage/delta_map.py), read once."""
        return self.log_dir / "bases"
