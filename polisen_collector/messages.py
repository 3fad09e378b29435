"""How anything reads in the one line an operator sees: one line, and short."""

from __future__ import annotations

from typing import Any


def one_line(value: Any, limit: int = 200) -> str:
    """`value` (a string as it is, anything else as its repr) with its whitespace runs made one
    space, cut to `limit` characters ending in `...`: a server's text, a bad setting or an SDK's
    message may be anything, many lines long."""
    text = " ".join((value if isinstance(value, str) else repr(value)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
