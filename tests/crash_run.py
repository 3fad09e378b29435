"""Run collect_events.py and SIGKILL it at a chosen point of its writes.

    CRASH_POINT=after-put CRASH_AT=2 crash_run.py [collect_events.py arguments...]
    CRASH_POINT=before-change CRASH_AT=5 STORE_CALLS_FILE=calls.json crash_run.py --compact

CRASH_POINT is `before-put` (kill just before the Nth object write), `mid-put` (the Nth write's
temp file is on disk, not yet renamed into place), `after-put` (right after the Nth write),
`error-put` (the Nth write raises StorageError, as a failing store would) or `before-change`
(kill just before the Nth write or delete: compaction deletes what it merged);
CRASH_AT is N (0, the default: never). STORE_CALLS_FILE, when set, receives the count of each
store call (get, put, list, delete) of a run that was not killed. With CRASH_MATCH=TEXT only
writes whose object name contains TEXT count (`pages` for the page objects and the page queue). With CRASH_LOG=FILE each write's
number and object name is appended to FILE before the write starts, so a test knows which
object the kill hit. The process dies exactly as under `kill -9`: no cleanup, no finally
blocks. With CRASH_SIGNAL=TERM (or INT) the process sends itself that signal at the point
instead of SIGKILL, and the write goes on: the run's handler decides where it stops.
`store_faults` is the same injection for a test's own process, for `error-put` only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polisen_collector.storage.local as storage
from polisen_collector.cli import collect_events


def die() -> None:
    """SIGKILL, or the signal CRASH_SIGNAL names (after which the process goes on, as its handler decides)."""
    os.kill(os.getpid(), signal.Signals[f"SIG{os.environ.get('CRASH_SIGNAL', 'KILL')}"])


@contextlib.contextmanager
def store_faults(point: str, nth: int, log_path: str | None = None, match: str = "") -> Iterator[None]:
    """LocalStorage writes fail or die at the Nth write while the block runs (kill points: own process only)."""
    calls = {"put": 0}
    counting = threading.Lock()
    original_put = storage.LocalStorage.put
    original_delete = storage.LocalStorage.delete
    original_replace = os.replace
    doomed = {"thread": None}

    def delete(self, name):
        if point == "before-change" and match in name:
            with counting:
                calls["put"] += 1
                number = calls["put"]
            if number == nth:
                die()
        return original_delete(self, name)

    def replace(*args, **kwargs):
        """Die at the rename of the chosen write only, not of another thread's write."""
        if doomed["thread"] == threading.get_ident():
            doomed["thread"] = None
            die()
        return original_replace(*args, **kwargs)

    def put(self, name, data, **kwargs):
        if match not in name:
            return original_put(self, name, data, **kwargs)
        with counting:  # the collector writes event objects in parallel
            calls["put"] += 1
            number = calls["put"]
            if log_path:
                with open(log_path, "a", encoding="utf-8") as log:
                    log.write(f"{number} {name}\n")
        if number == nth and point in ("before-put", "before-change"):
            die()
        if number == nth and point == "error-put":
            raise storage.StorageError(f"injected failure writing {name}")
        if number == nth and point == "mid-put":
            doomed["thread"] = threading.get_ident()
        result = original_put(self, name, data, **kwargs)
        if number == nth and point == "after-put":
            die()
        return result

    storage.LocalStorage.put = put
    storage.LocalStorage.delete = delete
    os.replace = replace
    try:
        yield
    finally:
        storage.LocalStorage.put = original_put
        storage.LocalStorage.delete = original_delete
        os.replace = original_replace


@contextlib.contextmanager
def counted_store_calls(calls: Counter[str]) -> Iterator[None]:
    """Count each LocalStorage call by method while the block runs."""
    originals = {method: getattr(storage.LocalStorage, method) for method in ("get", "put", "list", "delete")}

    def counting(method, original):
        def call(self, *args, **kwargs):
            calls[method] += 1
            return original(self, *args, **kwargs)
        return call

    for method, original in originals.items():
        setattr(storage.LocalStorage, method, counting(method, original))
    try:
        yield
    finally:
        for method, original in originals.items():
            setattr(storage.LocalStorage, method, original)


def main() -> int:
    calls: Counter[str] = Counter()
    with counted_store_calls(calls), store_faults(os.environ.get("CRASH_POINT", "before-put"),
                                                  int(os.environ.get("CRASH_AT", "0")), os.environ.get("CRASH_LOG"),
                                                  os.environ.get("CRASH_MATCH", "")):
        code = collect_events.main(sys.argv[1:])
    if os.environ.get("STORE_CALLS_FILE"):
        Path(os.environ["STORE_CALLS_FILE"]).write_text(json.dumps(calls))
    return code


if __name__ == "__main__":
    sys.exit(main())
