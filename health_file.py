"""The health file every run leaves behind, read by health_check.py and monitoring."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from storage import atomic_write
from version import __version__

REQUIRED_FIELDS = ("last_run", "status", "events_processed", "execution_time")


class HealthFileError(Exception):
    """The health file is missing or unusable; the message says which."""


def read_health(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HealthFileError(f"health file {path} does not exist (has the collector ever run?)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HealthFileError(f"health file {path} cannot be read: {error}") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise HealthFileError(f"health file {path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise HealthFileError(f"health file {path} does not hold a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in document]
    if missing:
        raise HealthFileError(f"health file {path} lacks {', '.join(missing)}")
    return document


def write_health(
    path: Path,
    *,
    finished_at: datetime,
    success: bool,
    events_processed: int,
    execution_time: float,
    error: BaseException | None = None,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write this run's verdict, carrying last_success and the failure streak forward."""
    try:
        previous = read_health(path)
    except HealthFileError:
        previous = {}
    previous_failures = previous.get("consecutive_failures")
    if not isinstance(previous_failures, int):
        previous_failures = 0
    document: dict[str, Any] = {
        "last_run": finished_at.isoformat(),
        "status": "success" if success else "failed",
        "events_processed": events_processed,
        "execution_time": round(execution_time, 3),
        "error": None if error is None else {"type": type(error).__name__, "message": str(error)},
        "last_success": finished_at.isoformat() if success else previous.get("last_success"),
        "consecutive_failures": 0 if success else previous_failures + 1,
        "version": __version__,
        "run_id": run_id,
        **(extra or {}),
    }
    atomic_write(Path(path), json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"), durable=False)
    return document
