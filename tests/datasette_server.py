"""The real Datasette as its own process on 127.0.0.1 and a free port, for the site's tests."""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def serving(cwd: Path, args: list[str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`datasette ARGS --host 127.0.0.1 --port 0` in `cwd`: its URL and process, stopped at the end."""
    process = subprocess.Popen([sys.executable, "-m", "datasette", *args, "--host", "127.0.0.1", "--port", "0"],
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read_stderr() -> None:  # to its end, so that the pipe never fills
        for line in process.stderr:  # type: ignore[union-attr]
            lines.put(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        url, said, deadline = None, [], time.monotonic() + 60
        while url is None and time.monotonic() < deadline and process.poll() is None:
            try:
                said.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", said[-1])
            url = found.group(1) if found else None
        assert url, "".join(said)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        process.stderr.close()  # type: ignore[union-attr]
