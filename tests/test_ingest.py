"""The small steps of storing events: what changed, the next state, the state write that loses a race."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import state_view

from polisen_collector.archive.events import validate_event
from polisen_collector.archive.ingest import Changes, commit_state, find_changes, updated_state
from polisen_collector.archive.state import STATE_OBJECT, encode_state, read_state
from polisen_collector.clock import utc_today
from polisen_collector.metrics.run_metrics import RunMetrics
from polisen_collector.storage.base import StorageError, update_object
from polisen_collector.storage.local import LocalStorage

TODAY = date(2026, 6, 5)


def event(event_id: int, summary: str = "s", day: str = "2026-06-01"):
    return validate_event({"id": event_id, "datetime": f"{day} 9:05:00 +02:00", "name": "n", "summary": summary,
                           "url": "/u", "type": "Brand", "location": {"name": "Skåne län", "gps": "55.9,13.5"}})


def test_find_changes_splits_new_edited_and_known_versions_once_each():
    known, edited, fresh = event(1), event(2, "first text"), event(3)
    seen = {1: (known.hash, known.day, "2026-06-01"), 2: (edited.hash, edited.day, "2026-06-01")}
    again_edited = event(2, "corrected text")
    changes = find_changes([fresh, known, again_edited, fresh, again_edited], seen)
    assert changes == Changes(new=[fresh], updated=[again_edited], unchanged=1)
    assert changes.stored == [fresh, again_edited]
    assert find_changes([], seen) == Changes()


def test_updated_state_records_stored_versions_and_marks_answered_ids_seen_today():
    old, kept, gone = event(1), event(2), event(3, day="2026-05-20")
    seen = {1: (old.hash, old.day, "2026-06-01"), 2: (kept.hash, kept.day, "2026-06-03"),
            3: (gone.hash, gone.day, "2026-05-21")}
    edited, fresh = event(1, "corrected"), event(4, day="2026-06-04")
    result = updated_state(seen, [edited, fresh], [edited, kept, fresh, event(99)], TODAY)
    assert result == {
        1: (edited.hash, "2026-06-01", "2026-06-05"),
        2: (kept.hash, "2026-06-01", "2026-06-05"),
        3: (gone.hash, "2026-05-20", "2026-05-21"),
        4: (fresh.hash, "2026-06-04", "2026-06-05"),
    }
    assert seen[1] == (old.hash, old.day, "2026-06-01"), "the input is not changed"


def test_commit_state_that_lost_the_race_merges_into_the_other_collectors_state(tmp_path):
    storage = LocalStorage(tmp_path)
    today = utc_today().isoformat()
    ours, theirs, both = event(10), event(20), event(30, "edited by us")
    storage.put(STATE_OBJECT, encode_state({30: (event(30).hash, "2026-06-01", today)}, "run-0"))
    state = read_state(storage.get(STATE_OBJECT), storage)
    # Another collector commits between our read and our write: it stored event 20.
    storage.put(STATE_OBJECT, encode_state({**state.seen, 20: (theirs.hash, theirs.day, today)}, "run-other"))
    metrics = RunMetrics("run-1")

    etag = commit_state(storage, state, [ours, both], [ours, both], run_id="run-1", retention_days=60, metrics=metrics)

    written = storage.get(STATE_OBJECT)
    assert written.etag == etag
    document = state_view(storage)
    assert document["updated_by_run"] == "run-1"
    assert document["seen"] == {
        "10": [ours.hash, ours.day, today],
        "20": [theirs.hash, theirs.day, today],
        "30": [both.hash, both.day, today],
    }
    assert metrics.counts["state_conflicts"] == 1
    assert metrics.counts["state_ids"] == 3


class RacedStorage(LocalStorage):
    """A folder where another writer changes the object right before each of our conditional writes."""

    races = 0

    def put(self, name, data, **kwargs):
        if kwargs.get("if_match") or kwargs.get("if_none_match"):
            self.races += 1
            super().put(name, b"theirs %d" % self.races)
        return super().put(name, data, **kwargs)


def test_update_object_gives_up_when_the_object_keeps_changing(tmp_path):
    storage = RacedStorage(tmp_path)
    seen = []

    def change(current):
        seen.append(current.data if current else None)
        return b"ours"

    with pytest.raises(StorageError, match="kept changing during 3 attempts"):
        update_object(storage, "metadata/x.json", change, attempts=3)
    assert seen == [None, b"theirs 1", b"theirs 2"]


def test_update_object_writes_nothing_when_change_says_so(tmp_path):
    storage = LocalStorage(tmp_path)
    assert update_object(storage, "metadata/x.json", lambda current: None) is None
    assert storage.get("metadata/x.json") is None
    etag = storage.put("metadata/x.json", b"{}")
    assert update_object(storage, "metadata/x.json", lambda current: None) == etag


def test_a_held_state_is_decoded_again_only_when_the_stored_one_changed(tmp_path, monkeypatch):
    """A backfill or audit tick holds the state from day to day: a day that stored nothing decodes none."""
    from polisen_collector.archive import ingest

    storage = LocalStorage(tmp_path)
    today = utc_today().isoformat()
    storage.put(STATE_OBJECT, encode_state({1: (event(1).hash, "2026-06-01", today)}, "run-0"))
    decoded: list[str] = []
    monkeypatch.setattr(ingest, "read_state",
                        lambda stored, storage, *bound: decoded.append(stored.etag) or read_state(stored, storage, *bound))
    held = ingest.HeldState()

    first = held.load(storage, "run-1", 60)
    assert held.load(storage, "run-2", 60) is first and held.load(storage, "run-3", 60) is first
    assert len(decoded) == 1
    commit_state(storage, first, [event(2)], [], run_id="run-4", retention_days=60, metrics=RunMetrics("run-4"))
    second = held.load(storage, "run-5", 60)
    assert second is not first and set(second.seen) == {1, 2}
    assert len(decoded) == 2
