"""The real Datasette as its own process on 127.0.0.1 and a free port, for the site's tests."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

READ_ONLY_BIND = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'


def read_only(folder: Path, command: list[str]) -> list[str]:
    """`command` in a mount namespace of its own where `folder` is a read-only bind mount of itself: it may
    read there, never write (EROFS), as polisen-site.service's ProtectSystem=strict makes the site's
    folder. util-linux's unshare; as root it needs no user namespace."""
    namespace = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]
    return [*namespace, "sh", "-c", READ_ONLY_BIND, "sh", str(folder), *command]


@contextlib.contextmanager
def serving(cwd: Path, args: list[str], *, read_only_folder: Path | None = None
            ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`datasette ARGS --host 127.0.0.1 --port 0` in `cwd`: its URL and process, stopped at the end; with
    `read_only_folder`, Datasette may not write there (read_only)."""
    command = [sys.executable, "-m", "datasette", *args, "--host", "127.0.0.1", "--port", "0"]
    if read_only_folder is not None:
        command = read_only(read_only_folder, command)  # the shell execs Datasette: the same process
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
