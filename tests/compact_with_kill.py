"""`collect_events.py --compact` that SIGKILLs itself at its Nth store write or delete (tests only).

KILL_AT_CALL=N kills just before the Nth put/delete (0: never); STORE_CALLS_FILE, when set,
receives the count of each store call of a run that was not killed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polisen_collector.storage.local as storage  # noqa: E402

KILL_AT = int(os.environ.get("KILL_AT_CALL", "0"))
calls: Counter = Counter()


def counted(method: str):
    original = getattr(storage.LocalStorage, method)

    def wrapper(self, *args, **kwargs):
        calls[method] += 1
        if method in ("put", "delete") and calls["put"] + calls["delete"] == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)

    return wrapper


for name in ("get", "put", "list", "delete"):
    setattr(storage.LocalStorage, name, counted(name))

from polisen_collector.cli import collect_events

code = collect_events.main(sys.argv[1:])
if os.environ.get("STORE_CALLS_FILE"):
    Path(os.environ["STORE_CALLS_FILE"]).write_text(json.dumps(calls))
sys.exit(code)
