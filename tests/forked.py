"""The kill tests' processes, forked from one that has imported the collector already.

A kill -9 test needs a process of its own (the kill is the point), not a new interpreter: a fresh
`python tests/crash_run.py` spends most of its time importing. One server per test process
(`python tests/forked.py`, started at the first run, gone when the test process closes its stdin)
imports the wrappers' modules once and forks a child for each run. The child takes the run's
arguments, environment, folder and umask, writes its stdout and stderr to files, runs the script
as `__main__` and leaves through the interpreter's own exit (atexit, threads joined, streams
flushed), as a process of its own would. The server answers with the child's pid, then with its
exit status as subprocess gives it (-9 for a SIGKILL). A real process, killed for real.

A run whose environment sets the locale (LANG, LC_*) or a PYTHON* variable, read as an interpreter starts,
gets a new interpreter instead (conftest.Collector.run).

Protocol: one JSON line per run on the server's stdin, {"script", "argv", "env", "cwd", "umask",
"stdout", "stderr"}; answers, one JSON line each on its stdout: {"pid"} at once, {"returncode"} at the end.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PRELOADED = [
    "concurrent.futures", "gzip", "http.client", "logging.handlers", "sqlite3", "ssl", "requests", "urllib3",
    "pyarrow.parquet", "polisen_collector.cli.collect_events", "polisen_collector.cli.export_events",
    "polisen_collector.parts", "polisen_collector.run.collection", "polisen_collector.run.compaction",
    "polisen_collector.run.audit_tick", "polisen_collector.run.backfill", "polisen_collector.storage.local",
    "polisen_collector.export", "polisen_collector.export_update", "polisen_collector.export_months",
]


ROOT = str(Path(__file__).resolve().parent.parent)


def serve() -> dict[str, Any] | None:
    """Answer runs until stdin ends (None); in a forked child, return its run."""
    import importlib

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C at the terminal is the test process's to handle
    sys.path.insert(0, ROOT)
    for module in PRELOADED:
        importlib.import_module(module)
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            replies.close()
            return request
        replies.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
    return None


def become(request: dict[str, Any]) -> None:
    """In the forked child: the run's process as `python SCRIPT ARGV...` would start it."""
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()  # TZ, as a new interpreter reads it
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_TRUNC)):
        opened = os.open(path, flags)
        os.dup2(opened, fd)
        os.close(opened)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts
    sys.argv = [request["script"], *request["argv"]]
    sys.path[:] = [str(Path(request["script"]).parent), *(path for path in sys.path[1:] if path != ROOT)]


class Server:
    """The test process's side: one server, started at the first run."""

    process: subprocess.Popen[bytes] | None = None
    folder: Path | None = None
    pending = b""

    @classmethod
    def run(cls, script: str, argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float
            ) -> subprocess.CompletedProcess[str]:
        """`python script argv...` forked from the server: the answer has the shape of subprocess.run's."""
        if cls.process is None or cls.process.poll() is not None:
            import shutil
            import tempfile

            cls.folder = Path(tempfile.mkdtemp(prefix="forked-"))
            cls.process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           bufsize=0)
            cls.pending = b""
            atexit.register(shutil.rmtree, cls.folder, ignore_errors=True)
            atexit.register(cls.process.stdin.close)  # type: ignore[union-attr]  # the server ends at EOF
        assert cls.process.stdin is not None and cls.folder is not None
        out, err = cls.folder / "stdout", cls.folder / "stderr"
        out.write_bytes(b"")
        err.write_bytes(b"")
        umask = os.umask(0o022)
        os.umask(umask)
        cls.process.stdin.write(json.dumps({"script": str(script), "argv": argv, "env": env, "cwd": str(cwd),
                                            "umask": umask, "stdout": str(out), "stderr": str(err)}).encode() + b"\n")
        pid = cls._answer(60)["pid"]
        try:
            returncode = cls._answer(timeout)["returncode"]
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            cls._answer(60)
            raise subprocess.TimeoutExpired([script, *argv], timeout) from None
        return subprocess.CompletedProcess([sys.executable, script, *argv], returncode,
                                           out.read_text(errors="replace"), err.read_text(errors="replace"))

    @classmethod
    def _answer(cls, timeout: float) -> dict[str, Any]:
        """The server's next line (read from the pipe as it is, so that no line waits in a buffer)."""
        assert cls.process is not None and cls.process.stdout is not None
        fd = cls.process.stdout.fileno()
        while b"\n" not in cls.pending:
            if not select.select([fd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired("tests/forked.py", timeout)
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("tests/forked.py ended: see its stderr above")
            cls.pending += chunk
        line, cls.pending = cls.pending.split(b"\n", 1)
        return json.loads(line)


if __name__ == "__main__":
    run = serve()
    if run is None:
        sys.exit(0)
    become(run)
    import runpy

    runpy.run_path(run["script"], run_name="__main__")
