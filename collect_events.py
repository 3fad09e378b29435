#!/usr/bin/env python3
"""Cron entry point: run one collection of the Polisen events feed and exit.

Exit codes: 0 success (also when nothing was new), 1 the run failed, 2 bad configuration
or credentials, 3 another run holds the lock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polisen_collector import __version__
from polisen_collector.config import ConfigError, Settings, check_writable_dir, load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Collect new and edited events from the Polisen API into the archive.",
        epilog="Every setting can also come from the environment or a .env file; see README.md.",
    )
    parser.add_argument("--api-url", help="events endpoint (POLISEN_API_URL)")
    parser.add_argument("--data-dir", help="local archive folder (DATA_DIR)")
    parser.add_argument("--storage", choices=("local", "oci"), help="archive backend (STORAGE)")
    parser.add_argument("--log-dir", help="log, lock and health folder (LOG_DIR)")
    parser.add_argument("--metrics-dir", help="per-run metrics folder (METRICS_DIR)")
    parser.add_argument("--env-file", default=".env", help="file of KEY=VALUE settings (default .env)")
    parser.add_argument("--dry-run", action="store_true", help="fetch and report, write nothing")
    parser.add_argument("--compact", action="store_true",
                        help="do not fetch: merge the per-run objects of days older than COMPACT_AFTER_DAYS")
    parser.add_argument("--backfill", metavar="FIRST..LAST",
                        help="fetch these days with ?DateTime= (e.g. 2026-05-01..2026-05-20) instead of the feed")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def cli_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "POLISEN_API_URL": args.api_url,
        "DATA_DIR": args.data_dir,
        "STORAGE": args.storage,
        "LOG_DIR": args.log_dir,
        "METRICS_DIR": args.metrics_dir,
    }


def build_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(overrides=cli_overrides(args), env_file=Path(args.env_file))
    check_writable_dir(settings.log_dir, "LOG_DIR")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = build_settings(args)
        backfill_days = parse_backfill(args.backfill)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        record_config_failure(args, error)
        return 2

    from polisen_collector.logging_setup import setup_logging

    setup_logging(settings.log_dir, settings.log_level, settings.log_max_bytes, settings.log_backup_count)
    from polisen_collector.run.collection import run_compaction, run_once

    if args.compact:
        return run_compaction(settings)
    return run_once(settings, dry_run=args.dry_run, backfill_days=backfill_days)


def record_config_failure(args: argparse.Namespace, error: ConfigError) -> None:
    """Record the failure in the health file (and ping /fail) when the settings saying where still parse."""
    from polisen_collector.clock import utc_now
    from polisen_collector.config import health_path_of, load_some
    from polisen_collector.health.file import write_health

    try:
        some = load_some(("health_file", "log_dir", "healthcheck_ping_url"),
                         overrides=cli_overrides(args), env_file=Path(args.env_file))
    except (OSError, ValueError) as failure:  # e.g. an unreadable .env: the config error is what matters
        print(f"could not record the configuration error: {failure}", file=sys.stderr)
        return
    path = health_path_of(some.get("health_file"), some["log_dir"])
    try:
        write_health(path, finished_at=utc_now(), success=False,
                     events_processed=0, execution_time=0.0, error=error)
    except OSError as failure:
        print(f"could not record the configuration error in {path}: {failure}", file=sys.stderr)
    if some.get("healthcheck_ping_url"):
        from polisen_collector.health.ping import ping

        ping(some["healthcheck_ping_url"], success=False)


if __name__ == "__main__":
    sys.exit(main())
