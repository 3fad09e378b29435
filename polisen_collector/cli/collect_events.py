"""Cron entry point: run one collection of the Polisen events feed and exit.

Exit codes: 0 success (also when nothing was new), 1 the run failed, 2 bad configuration
or credentials, 3 another run holds the lock, 130/143 SIGINT/SIGTERM stopped the run at a
safe point (recorded as interrupted). Cron's convention: a successful run prints
nothing; any other exit leaves exactly one line on stderr saying why; the rest is in the log.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Mapping
from pathlib import Path

from polisen_collector.cli.common import ToolParser, add_standard_options, door
from polisen_collector.config import (
    ConfigError,
    Settings,
    check_file_path,
    check_not_a_file,
    check_writable_dir,
    environment_with,
    load_settings,
)
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_OK
from polisen_collector.interrupt import stop_on_signals


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ToolParser(
        description="Collect new and edited events from the Polisen API into the archive.",
        epilog="Every setting can also come from the environment or a .env file; see README.md.",
    )
    parser.add_argument("--api-url", help="events endpoint (POLISEN_API_URL)")
    parser.add_argument("--data-dir", help="local archive folder (DATA_DIR)")
    parser.add_argument("--storage", choices=("local", "oci"), help="archive backend (STORAGE)")
    parser.add_argument("--log-dir", help="log, lock and health folder (LOG_DIR)")
    parser.add_argument("--metrics-dir", help="per-run metrics folder (METRICS_DIR)")
    parser.add_argument("--dry-run", action="store_true", help="fetch and report, write nothing")
    parser.add_argument("--compact", action="store_true",
                        help="do not fetch: merge the per-run objects of days older than COMPACT_AFTER_DAYS, "
                             "then store the parse of page versions that lack one (for at most a minute)")
    parser.add_argument("--audit", action="store_true",
                        help="one tick of the rolling audit: re-read the past days due now with ?DateTime=, then exit")
    parser.add_argument("--backfill", metavar="FIRST..LAST",
                        help="fetch these days with ?DateTime= (e.g. 2026-05-01..2026-05-20) instead of the feed")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print the log to stderr (a run by hand; cron wants silence)")
    add_standard_options(parser)
    args = parser.parse_args(argv)
    chosen = [flag for flag, on in (("--compact", args.compact), ("--audit", args.audit),
                                    ("--backfill", args.backfill is not None)) if on]
    if len(chosen) > 1:
        parser.error(f"{' and '.join(chosen)} are separate jobs: give one of them")
    args.other_job = bool(chosen)  # compaction, an audit tick or a backfill: not a collection run
    return args


def cli_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "POLISEN_API_URL": args.api_url,
        "DATA_DIR": args.data_dir,
        "STORAGE": args.storage,
        "LOG_DIR": args.log_dir,
        "METRICS_DIR": args.metrics_dir,
    }


def build_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    settings = load_settings(environ, overrides=cli_overrides(args), env_file=None)
    if settings.health_file:
        check_file_path(settings.health_path, "HEALTH_FILE")
    if settings.prometheus_textfile_dir:
        check_not_a_file(Path(settings.prometheus_textfile_dir), "PROMETHEUS_TEXTFILE_DIR")
    check_writable_dir(settings.log_dir, "LOG_DIR")
    if not settings.health_file:
        check_file_path(settings.health_path, "LOG_DIR/health.json")
    check_writable_dir(settings.metrics_dir, "METRICS_DIR")
    if settings.storage == "local":
        check_writable_dir(settings.data_dir, "DATA_DIR")
    return settings


def parse_backfill(text: str | None) -> list[str] | None:
    if text is None:
        return None
    from polisen_collector.recovery.gaps import parse_day_range

    try:
        return parse_day_range(text)
    except ValueError as error:
        raise ConfigError(f"--backfill: {error}") from None


def program() -> int:
    """The process: `python collect_events.py`, the `polisen-collect` command.

    What the job leaves is frozen (gc.freeze) before the interpreter exits, so the exit's last
    cyclic collection does not scan the objects of the ~780 modules a run imports, which the
    process frees with its memory anyway: a fifth of an OCI run's CPU time (docs/performance.md).
    The collector runs normally during the job. What is left in reference cycles is then never
    finalized: no open file may be among it (tests/test_run_cost.py checks that none is).
    """
    try:
        return main()
    finally:
        gc.freeze()


@door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    echo = args.verbose or args.dry_run  # a dry run is for reading what it would do
    # From here SIGINT and SIGTERM stop the job at its next safe point (exit 130, 143); on a
    # terminal, not under cron, its first wait is said.
    with stop_on_signals(announce_waits=sys.stderr if sys.stderr.isatty() and not echo else None):
        return run_job(args, echo)


def run_job(args: argparse.Namespace, echo: bool) -> int:
    """Settings, logging, then the job the arguments name; its exit code."""
    from polisen_collector.logging_setup import LOG_FILE_NAME, print_failure, setup_logging

    environ: dict[str, str] | None = None  # None: the .env could not be read
    try:
        environ = environment_with(args.env_file)
        settings = build_settings(args, environ)
        backfill_days = parse_backfill(args.backfill)
        last_error = setup_logging(settings.log_dir, settings.log_level, settings.log_max_bytes,
                                   settings.log_backup_count, echo=echo)
    except ConfigError as error:
        from polisen_collector.logging_setup import silence_logging

        silence_logging()
        # Only a collection run speaks for health.json: a dry run writes nothing, and the audit,
        # compaction and an on-demand backfill are other jobs (the audit has health-audit.json).
        collection = not (args.dry_run or args.other_job)
        problem = record_config_failure(args, error, environ) if collection else None
        print_failure(f"configuration error: {error}" + (f" ({problem})" if problem else ""))
        return EXIT_CONFIG

    if args.compact:
        from polisen_collector.run.compaction import run_compaction

        code = run_compaction(settings)
    elif args.audit:
        from polisen_collector.run.audit_tick import audit_once

        code = audit_once(settings)
    elif backfill_days is not None:
        from polisen_collector.run.backfill import backfill_once

        code = backfill_once(settings, backfill_days)
    else:
        from polisen_collector.run.collection import run_once

        code = run_once(settings, dry_run=args.dry_run)
    if code != EXIT_OK and not echo:
        reason = last_error.message or f"collect_events.py exited {code}"
        print_failure(f"{reason} (log: {settings.log_dir / LOG_FILE_NAME})")
    return code


def record_config_failure(args: argparse.Namespace, error: ConfigError, environ: Mapping[str, str] | None) -> str | None:
    """Record the failure in the health file (and ping /fail) when the settings saying where still parse
    (from `environ`, what the run read: None when the .env itself could not be read).

    Returns what went wrong doing so, for the one stderr line, or None.
    """
    from polisen_collector.clock import utc_now
    from polisen_collector.config import load_some
    from polisen_collector.health.file import write_health

    if environ is None:  # the error line says why; no setting can be read
        return "not recorded in the health file"
    some, bad = load_some(("health_file", "log_dir", "healthcheck_ping_url"), environ,
                          overrides=cli_overrides(args), env_file=None)
    if "log_dir" in bad:  # LOG_DIR itself is the bad setting: nowhere to record it
        return None
    path = some.health_path
    if path.parent.exists() and not path.parent.is_dir():  # LOG_DIR (or HEALTH_FILE's folder) is a file
        return f"not recorded in the health file: {path.parent} is a file"
    if path.is_dir():  # HEALTH_FILE names a folder: the error line says so
        return None
    try:
        write_health(path, finished_at=utc_now(), success=False,
                     events_processed=0, execution_time=0.0, error=error)
        problem = None
    except OSError as failure:
        problem = f"not recorded in {path}: {failure.strerror or failure}"
    if some.healthcheck_ping_url:
        from polisen_collector.health.ping import ping

        ping(some.healthcheck_ping_url, success=False)
    return problem
