#!/usr/bin/env python3
"""collect_events.py over a store that fails on purpose, for the soak test.

FAULT_PUT=N:MODE makes the N-th `put` of the run fail: `error` raises StorageError,
`kill-before` / `kill-after` send the process SIGKILL just before or just after the write,
as a crash, an OOM kill or a pulled plug would.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import storage


def install(spec: str) -> None:
    at_text, mode = spec.split(":")
    at = int(at_text)
    counter = {"calls": 0}
    lock = threading.Lock()

    class FaultyStorage(storage.LocalStorage):
        def put(self, name: str, data: bytes, **kwargs) -> str:  # type: ignore[override]
            with lock:
                counter["calls"] += 1
                hit = counter["calls"] == at
            if hit and mode == "error":
                raise storage.StorageError(f"injected failure writing {name}")
            if hit and mode == "kill-before":
                os.kill(os.getpid(), signal.SIGKILL)
            etag = super().put(name, data, **kwargs)
            if hit and mode == "kill-after":
                os.kill(os.getpid(), signal.SIGKILL)
            return etag

    storage.LocalStorage = FaultyStorage  # type: ignore[misc]


if __name__ == "__main__":
    if os.environ.get("FAULT_PUT"):
        install(os.environ["FAULT_PUT"])
    import collect_events

    sys.exit(collect_events.main())
