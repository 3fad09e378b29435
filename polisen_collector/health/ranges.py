"""Threshold ranges as monitoring plugins take them (`-w`, `-c`): `10`, `10:`, `~:10`, `10:20`, `@10:20`.

The monitoring-plugin guidelines' syntax: `start:end` alerts when the value is outside
start..end (both included as fine), `@start:end` when it is inside. An omitted start is 0,
an omitted end infinity, `~` as the start minus infinity; a plain number N is `0:N`, so
`-w 45` alerts above 45, as before ranges were taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RANGE_FORMS = "N, N:, ~:N, N:M or @N:M"


class RangeError(ValueError):
    """Not a range; the message says what is wrong, for `-w VALUE: <message>`."""


@dataclass(frozen=True)
class PluginRange:
    start: float
    end: float
    inside: bool = False
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> PluginRange:
        body = text.strip()
        inside = body.startswith("@")
        if inside:
            body = body[1:]
        if ":" in body:
            low, _, high = body.partition(":")
            start = -math.inf if low == "~" else _number(low) if low else 0.0
            end = _number(high) if high else math.inf
        else:
            start, end = 0.0, _number(body, alone=True)
        if start > end:
            raise RangeError(f"its start {start:g} is above its end {end:g}")
        return cls(start, end, inside, text.strip())

    @classmethod
    def up_to(cls, end: float) -> PluginRange:
        """The plain range 0..end (alert above end)."""
        return cls(0.0, end, False, f"{end:g}")

    @property
    def is_upper_limit(self) -> bool:
        """A plain `N` (0..N): only a value above N alerts, as for an age."""
        return self.start == 0 and not self.inside and math.isfinite(self.end)

    def alerts(self, value: float) -> bool:
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def perfdata(self, scale: float = 1.0) -> str:
        """The range in performance data, its numbers times `scale` (minutes in seconds: 60)."""
        end = "" if math.isinf(self.end) else _plain(self.end * scale)
        if self.is_upper_limit:
            return end
        start = "~" if math.isinf(self.start) else _plain(self.start * scale)
        return f"{'@' if self.inside else ''}{start}:{end}"


def _number(text: str, alone: bool = False) -> float:
    """A number of the range; `alone`, the whole range (its error then need not repeat it)."""
    try:
        value = float(text)
    except ValueError:
        raise RangeError("" if alone else f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise RangeError(f"{text!r} is not a finite number (leave the end out for infinity, ~ for minus infinity)")
    return value


def _plain(value: float) -> str:
    """A number as perfdata wants it: 2700, 2712.5, never 2.7e+03."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
