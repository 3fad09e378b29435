"""export_events.py that SIGKILLs itself as soon as a chosen step of an export returns (tests only).

    KILL_AFTER=export_update._replace_rows export_with_kill.py [export_events.py arguments...]

KILL_AFTER names a function of a module of polisen_collector: `export_update._replace_rows` (an
update's rows are rewritten, its bookkeeping not, nothing committed), `export_update._write_all`
(every row of a rebuild in place or of a new file written, nothing committed or renamed) or
`export_months._write_month` (one monthly Parquet file written, the others and the state not).
The process dies as under `kill -9`. UPDATE_CACHE_KIB, when set, is the update's page cache
(export_update.UPDATE_CACHE_KIB): a small one makes the update write to the database before it
commits.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import importlib

from polisen_collector.cli.export_events import main

module_name, function = os.environ["KILL_AFTER"].rsplit(".", 1)
module = importlib.import_module(f"polisen_collector.{module_name}")
original = getattr(module, function)


def killed_after(*args, **kwargs):
    original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


setattr(module, function, killed_after)
if "UPDATE_CACHE_KIB" in os.environ:
    from polisen_collector import export_update

    export_update.UPDATE_CACHE_KIB = int(os.environ["UPDATE_CACHE_KIB"])
sys.exit(main(sys.argv[1:]))
