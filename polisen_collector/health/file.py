"""The health file every run leaves behind, read by health_check.py and monitoring."""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from polisen_collector import __version__, readback
from polisen_collector.files import NotRegularFile, atomic_write, read_regular
from polisen_collector.interrupt import Interrupted

REQUIRED_FIELDS = ("last_run", "status", "events_processed", "execution_time")
STATUSES = ("success", "failed", "interrupted")
MAX_BYTES = 1_000_000


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


class HealthFileError(Exception):
    """The health file is missing or unusable; the message says which."""


def read_health(path: Path) -> dict[str, Any]:
    """The health document, or HealthFileError saying in one line why there is none."""
    document = read_health_document(path)
    missing = [name for name in REQUIRED_FIELDS if name not in document]
    if missing:
        raise HealthFileError(f"health file {path} lacks {', '.join(missing)}")
    return document


def read_health_document(path: Path) -> dict[str, Any]:
    """A health JSON object (the collection's or the audit's), or HealthFileError saying why not."""
    try:
        data = read_regular(path, MAX_BYTES)
    except NotRegularFile:
        raise HealthFileError(f"health file {path} is not a regular file; refusing to read it") from None
    except FileNotFoundError:
        raise HealthFileError(f"health file {path} does not exist (has the collector ever run?)") from None
    except OSError as error:
        raise HealthFileError(f"health file {path} cannot be read: {error.strerror or error}") from None
    if len(data) > MAX_BYTES:
        raise HealthFileError(f"health file {path} is larger than {MAX_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        raise HealthFileError(f"health file {path} is not UTF-8 text: {error}") from None
    except (ValueError, RecursionError) as error:
        raise HealthFileError(f"health file {path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise HealthFileError(f"health file {path} does not hold a JSON object")
    return document


def audit_health_path(health_path: Path) -> Path:
    """The audit tick's own health file beside the collector's (`health.json` -> `health-audit.json`).

    A file of its own: the feed run rewrites health.json every 30 minutes and the audit
    tick runs on its own timer, so sharing one file would let either erase the other's part.
    health_check.py reads both.
    """
    path = Path(health_path)
    return path.with_name(f"{path.stem}-audit.json")


def write_audit_health(path: Path, *, finished_at: datetime, error: BaseException | None,
                       run_id: str, audit: dict[str, Any]) -> dict[str, Any]:
    return _write(path, {
        "last_tick": finished_at.isoformat(),
        "status": "success" if error is None else "interrupted" if isinstance(error, Interrupted) else "failed",
        "error": _error_of(error),
        "run_id": run_id,
        "version": __version__,
        "host": socket.gethostname(),
        **audit,
    })


def write_health(
    path: Path,
    *,
    finished_at: datetime,
    success: bool,
    interrupted: bool = False,
    events_processed: int,
    execution_time: float,
    error: BaseException | None = None,
    run_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write this run's verdict, carrying last_success and the failure streak forward.

    Status `success`, `failed`, or `interrupted` (a signal stopped the run at a safe point);
    a run that did not succeed counts in the streak either way.
    """
    try:
        previous = read_health(path)
    except HealthFileError:
        previous = {}
    previous_failures = previous.get("consecutive_failures")
    if not isinstance(previous_failures, int) or isinstance(previous_failures, bool) or previous_failures < 0:
        previous_failures = 0
    previous_success = previous.get("last_success")
    try:  # carried on only as a time health_check can read (readback.py), else its verdict is UNKNOWN until a success
        previous_success = readback.utc_time(previous_success).isoformat()
    except ValueError:
        previous_success = None
    document: dict[str, Any] = {
        "last_run": finished_at.isoformat(),
        "status": "success" if success else "interrupted" if interrupted else "failed",
        "events_processed": events_processed,
        "execution_time": round(execution_time, 3),
        "error": _error_of(error),
        "last_success": finished_at.isoformat() if success else previous_success,
        "consecutive_failures": 0 if success else previous_failures + 1,
        "version": __version__,
        "host": socket.gethostname(),
        "run_id": run_id,
        **(extra or {}),
    }
    return _write(path, document)


def _error_of(error: BaseException | None) -> dict[str, str] | None:
    return None if error is None else {"type": type(error).__name__, "message": str(error)}


def _write(path: Path, document: dict[str, Any]) -> dict[str, Any]:
    atomic_write(Path(path), json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"), durable=False)
    return document
