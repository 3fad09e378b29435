"""A stop asked for by SIGINT or SIGTERM, honoured at the run's safe points; and the run's waits.

Ctrl-C, `systemctl stop` and `timeout` ask a run to stop. The handler only notes the signal:
the run goes on to its next safe point (all it wrote is complete and remembered: after the
state write, between days, between pages), records itself as interrupted and exits
128 + the signal's number (130 for SIGINT, 143 for SIGTERM). Every wait of a run (retry
backoff, the API's rate limits, page pacing) goes through `pause`, which ends at once with
Interrupted: nothing is half written while a run waits. A request on the wire is cut short
at once too (`on_stop`: the API and page clients shut their sockets down and raise Interrupted), rather
than read to its end, which may take its whole deadline (65 s by default). A second signal
ends the process at once, as the signal does by default.

On a terminal the first wait of a run is said on stderr (`announce_waits`), so a run pacing
its retries is not taken for a hung one; under cron nothing is printed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TextIO

from polisen_collector.exit_codes import exit_code_of_signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SLICE = 0.1  # how often a wait looks at the flag: a stop ends a wait within this

_received: int | None = None
_announce: TextIO | None = None
_announced = False
_listening = False
_on_stop: list[Callable[[Interrupted], None]] = []


class Interrupted(BaseException):
    """The run was asked to stop by a signal.

    A BaseException, as KeyboardInterrupt is: no `except Exception` of a step takes it for the
    step's own failure.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended: 130, 143."""
        return exit_code_of_signal(self.signum)


def requested() -> Interrupted | None:
    """The stop asked for, if a signal came; for loops that stop at their own safe point."""
    return Interrupted(_received) if _received is not None else None


def check() -> None:
    """Raise Interrupted if a signal asked the run to stop."""
    if _received is not None:
        raise Interrupted(_received)


def pause(seconds: float, why: str = "") -> None:
    """Sleep, ending at once with Interrupted when a signal asks the run to stop."""
    check()
    if seconds <= 0:
        return
    if seconds >= 1:
        _say_wait(seconds, why)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, _SLICE))
        check()


def on_stop(action: Callable[[Interrupted], None]) -> None:
    """Until the job's end (the `stop_on_signals` block), a stop signal also runs `action(stop)`
    at once, for work that would otherwise hold the job until it ends by itself: a request on
    the wire (`PolisenClient.abort`). A stop already asked for runs it now; outside a job it is
    never run. `action` runs in the signal handler, on whatever thread: a flag and a system call
    (no lock, no logging, no I/O of Python's)."""
    if not _listening:
        return
    _on_stop.append(action)
    if _received is not None:
        action(Interrupted(_received))


def pauser(why: str) -> Callable[[float], None]:
    """`pause` as a sleep function for a client, saying `why` when the wait is announced."""
    return functools.partial(pause, why=why)


@contextlib.contextmanager
def stop_on_signals(announce_waits: TextIO | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM ask the run in the block to stop; with `announce_waits` its first wait
    is said there. The previous handlers come back afterwards."""
    global _received, _announce, _announced, _listening
    _received, _announce, _announced = None, announce_waits, False
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
    _listening = True
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received, _announce, _listening = None, None, False
        _on_stop.clear()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Note the first signal, cut short what `on_stop` named, and return: the run stops at its
    next safe point. A second one ends the process at once, as that signal does by default."""
    global _received
    if _received is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _received = signum
    for action in tuple(_on_stop):
        with contextlib.suppress(Exception):  # a failed cut leaves the request to its deadline, no worse
            action(Interrupted(signum))


def _say_wait(seconds: float, why: str) -> None:
    global _announced
    if _announce is None or _announced or not why:
        return
    _announced = True
    with contextlib.suppress(OSError, ValueError):
        _announce.write(f"waiting {seconds:.0f} s before {why}; the run goes on (Ctrl-C stops it safely)\n")
        _announce.flush()
