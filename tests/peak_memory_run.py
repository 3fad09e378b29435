"""Run collect_events.py, then write its peak resident memory (VmHWM, in kB) to the file PEAK_RSS_FILE names.

    PEAK_RSS_FILE=/tmp/peak peak_memory_run.py [collect_events.py arguments...]

The figure is this process's own high-water mark (exec starts it afresh), for the tests that
bound what a hostile input may cost in memory. The process's data segment is limited to
DATA_LIMIT, so a regression (a gzip bomb inflated whole: 8 GB) fails with MemoryError
instead of taking a shared machine's memory.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polisen_collector.cli import collect_events

DATA_LIMIT = 1 << 30


def peak_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, DATA_LIMIT))
    code = collect_events.program()
    Path(os.environ["PEAK_RSS_FILE"]).write_text(str(peak_kb()))
    sys.exit(code)
