"""Time that moves only when the code under test sleeps: for the rate limiter, page pacing and the fake API."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock (call it) with a `sleep` that moves it on at once and records each wait."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
