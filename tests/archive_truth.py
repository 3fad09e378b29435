"""What a complete archive must hold, computed from the snapshots without the collector's code."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import defaultdict
from pathlib import Path


def canonical(event: dict) -> str:
    return json.dumps(event, sort_keys=True, ensure_ascii=False)


@functools.cache
def served_events(body: bytes) -> tuple[tuple[int, str], ...]:
    """(id, canonical content) of each event of one answer; kept, as the tests ask of the same
    recorded answers again and again (kill loops recompute the truth after every kill)."""
    if not body.strip():
        return ()
    return tuple((event["id"], canonical(event)) for event in json.loads(body))


def versions_in_snapshots(bodies: list[bytes]) -> dict[int, list[str]]:
    """Each id's distinct contents in the order they were first served."""
    versions: dict[int, list[str]] = defaultdict(list)
    for body in bodies:
        for event_id, text in served_events(body):
            if text not in versions[event_id]:
                versions[event_id].append(text)
    return dict(versions)


def archived_lines(data_dir: Path) -> list[tuple[str, dict]]:
    """(object name, event) for every line of every events object, in name order."""
    lines = []
    for path in sorted((data_dir / "events").rglob("*.jsonl")):
        name = path.relative_to(data_dir).as_posix()
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                lines.append((name, json.loads(line)))
    return lines


def archived_versions(data_dir: Path) -> dict[int, list[str]]:
    """Each id's archived contents in collection order (object names sort by run time)."""
    versions: dict[int, list[str]] = defaultdict(list)
    for _, event in archived_lines(data_dir):
        versions[event["id"]].append(canonical(event))
    return dict(versions)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def assert_archive_complete(data_dir: Path, bodies: list[bytes], *, copies_allowed: bool = True) -> None:
    """Every version served is archived and each id's latest version was stored last.

    After a crash an identical copy may stand in a later object (readers drop it); without
    crashes, `copies_allowed=False` demands each distinct version exactly once.
    """
    truth = versions_in_snapshots(bodies)
    archived = archived_versions(data_dir)
    assert set(archived) == set(truth)
    for event_id, versions in truth.items():
        assert set(archived[event_id]) == set(versions), event_id
        assert archived[event_id][-1] == versions[-1], event_id
        if not copies_allowed:
            assert len(archived[event_id]) == len(versions), event_id
