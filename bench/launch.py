#!/usr/bin/env python3
"""Run a command and write its wall time, CPU time and peak RSS as JSON, measured from a tiny parent.

    python3 bench/launch.py FIGURES.json COMMAND [ARG...]

A process's peak RSS (`ru_maxrss` from `wait4`) includes what it held before `exec`: a
child forked from the benchmark (fake servers, snapshots loaded) starts out as big as the
benchmark. Forked from this launcher instead, it starts out as small as a bare interpreter
(about 10 MB), so the figure is the command's own high-water mark. The wall time runs from
the fork to the child's exit, so the launcher's own start is not counted.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    figures_path, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    # The child's ru_maxrss starts from this launcher's memory at the fork: its floor.
    with open("/proc/self/status", encoding="ascii") as status_file:
        floor = next(int(line.split()[1]) for line in status_file if line.startswith("VmHWM:"))
    figures = {"returncode": os.waitstatus_to_exitcode(status), "wall": wall,
               "cpu": usage.ru_utime + usage.ru_stime, "rss_kb": usage.ru_maxrss, "floor_kb": floor}
    with open(figures_path, "w", encoding="utf-8") as handle:
        json.dump(figures, handle)


if __name__ == "__main__":
    main()
