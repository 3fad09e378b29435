#!/usr/bin/env python3
"""What the state and the page queue cost a run in store bytes, over weeks of simulated runs.

The end-to-end bench (bench_run.py) replays 16 recorded days, too few to reach the size the
state and the page queue have at the default retention. This one drives the real encoding
(archive/state.py, pages/queue.py, storage/delta_map.py) through simulated runs every 30
minutes: a feed window of 500 events of which about 2.5 are new each run and some are
edited, the page step fetching the pages due, days passing. It prints, per simulated week,
the bytes a run writes for the state and the queue (head, plus any new base), against
what the whole object would be (format 2 of the state, format 1 of the queue), and what
the original collector moves for its state (a plain JSON list of at most 1000 ids, read by
every run and written by every run that stores an event).

Reads are not counted: on one host the state and the queue are read with If-None-Match
against this host's copy, and a base is read at most once per host (storage/local_copy.py).
Bodies only; each request adds about 0.5 KB of HTTP headers.

    python3 bench/bench_state_size.py [--days 60] [--retention 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fake_polisen import load_snapshot, snapshot_paths

from polisen_collector.archive.events import Event, validate_event
from polisen_collector.archive.ingest import find_changes, updated_state
from polisen_collector.archive.state import decode_state, encode_state, prune
from polisen_collector.pages import queue as page_queue
from polisen_collector.storage.local import LocalStorage

WINDOW = 500
RUNS_PER_DAY = 48
PAGES_PER_RUN = 30


class CountingStorage(LocalStorage):
    """A local store that adds up the bytes written to it."""

    written = 0

    def put(self, name: str, data: bytes, *, content_type: str = "application/octet-stream",
            if_match: str | None = None, if_none_match: bool = False) -> str:
        self.written += len(data)
        return super().put(name, data, content_type=content_type, if_match=if_match, if_none_match=if_none_match)


def templates() -> list[dict]:
    return json.loads(load_snapshot(snapshot_paths()[1]))


def make_event(template: dict, event_id: int, when: datetime, edit: int = 0) -> Event:
    raw = {**template, "id": event_id, "datetime": when.strftime("%Y-%m-%d %H:%M:%S +00:00"),
           "url": f"{template['url'].rstrip('/')}-{event_id}/", "summary": f"{template['summary']} ({edit})"}
    return validate_event(raw, when + timedelta(days=1))


def original_state_bytes(ids: set[int]) -> int:
    """The original collector's metadata/last_seen.json: at most 1000 ids, JSON with indent=2."""
    kept = sorted(ids, reverse=True)[:1000]
    document = {"seen_ids": kept, "last_updated": "2026-06-05T10:00:00+00:00", "total_tracked": len(kept)}
    return len(json.dumps(document, indent=2).encode("utf-8"))


def simulate(days: int, retention: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    shapes = templates()
    with tempfile.TemporaryDirectory() as folder:
        storage = CountingStorage(Path(folder))
        start = datetime(2026, 1, 1, tzinfo=UTC)
        next_id = 700000
        window: list[Event] = []
        seen: dict = {}
        state_base = queue_base = None
        entries: dict = {}
        original_ids: set[int] = set()
        rows = []
        for run in range(days * RUNS_PER_DAY):
            now = start + timedelta(minutes=30 * run)
            for _ in range(rng.choice([1, 2, 2, 3, 3, 4])):
                next_id += rng.randint(1, 6)
                window.append(make_event(rng.choice(shapes), next_id, now))
            if rng.random() < 0.1:
                index = rng.randrange(len(window))
                old = window[index]
                window[index] = make_event(old.raw, old.id, old.when, edit=run)
            window = window[-WINDOW:]
            changes = find_changes(window, seen)
            today = now.date()
            new_seen = prune(updated_state(seen, changes.stored, window, today), today, retention)
            row = {"day": run // RUNS_PER_DAY, "ids": len(new_seen), "stored": len(changes.stored)}
            if new_seen != seen:
                whole = len(encode_state(new_seen, "run"))
                storage.written = 0
                data = encode_state(new_seen, "run", storage=storage, base=state_base)
                storage.put("metadata/last_seen.json", data)
                row.update(state_written=storage.written, state_whole=whole)
                seen, _, state_base = decode_state(data, storage)
            else:
                row.update(state_written=0, state_whole=0)
            touched = page_queue.enqueue(entries, window, now)
            entries.update(touched)
            for event_id in page_queue.due_ids(entries, now)[:PAGES_PER_RUN]:
                page_queue.record_fetched(entries[event_id], now, f"{rng.getrandbits(64):016x}", None, None)
            entries = page_queue.prune(entries, set(seen) | {event.id for event in window})
            row["queue_whole"] = len(page_queue.encode_queue(entries))
            storage.written = 0
            data = page_queue.encode_queue(entries, storage=storage, base=queue_base)
            storage.put("metadata/pages.json", data)
            row["queue_written"] = storage.written
            entries, queue_base = page_queue.decode_queue(data, storage)
            had = set(original_ids)
            original_ids |= {event.id for event in window}
            original = original_state_bytes(had)
            row["original"] = original + (original_state_bytes(original_ids) if original_ids - had else 0)
            rows.append(row)
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--retention", type=int, default=30, help="STATE_RETENTION_DAYS")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = simulate(args.days, args.retention, args.seed)
    print(f"{args.days} days of runs every 30 min, retention {args.retention} days; bytes written per run"
          " that stored something (median / mean), bodies only")
    header = ("week", "state ids", "state head+bases", "whole state (format 2)", "queue head+bases",
              "whole queue (format 1)", "original state r+w")
    print(" | ".join(header))
    for week in range(0, args.days, 7):
        storing = [row for row in rows if week <= row["day"] < week + 7 and row["stored"]]
        if not storing:
            continue

        def figure(key: str, of: list[dict] = storing) -> str:
            values = [row[key] for row in of]
            return f"{statistics.median(values):,.0f} / {statistics.fmean(values):,.0f}"

        print(" | ".join([f"{week // 7 + 1}", f"{storing[-1]['ids']:,}", figure("state_written"),
                          figure("state_whole"), figure("queue_written"), figure("queue_whole"),
                          figure("original")]))


if __name__ == "__main__":
    main()
