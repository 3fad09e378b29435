#!/usr/bin/env python3
"""Cron entry point: run one collection of the Polisen events feed and exit.

Exit codes: 0 success (also when nothing was new), 1 the run failed, 2 bad configuration
or credentials, 3 another run holds the lock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config import ConfigError, Settings, check_writable_dir, load_settings


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
    parser.add_argument("--backfill", metavar="FIRST..LAST",
                        help="fetch these days with ?DateTime= (e.g. 2026-05-01..2026-05-20) instead of the feed")
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(
        overrides={
            "POLISEN_API_URL": args.api_url,
            "DATA_DIR": args.data_dir,
            "STORAGE": args.storage,
            "LOG_DIR": args.log_dir,
            "METRICS_DIR": args.metrics_dir,
        },
        env_file=Path(args.env_file),
    )
    check_writable_dir(settings.log_dir, "LOG_DIR")
    check_writable_dir(settings.metrics_dir, "METRICS_DIR")
    if settings.storage == "local":
        check_writable_dir(settings.data_dir, "DATA_DIR")
    return settings


def parse_backfill(text: str | None) -> list[str] | None:
    if text is None:
        return None
    from gaps import parse_day_range

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
        return 2

    from log_setup import setup_logging

    setup_logging(settings.log_dir, settings.log_level, settings.log_max_bytes, settings.log_backup_count)
    from collection_run import run_once

    return run_once(settings, dry_run=args.dry_run, backfill_days=backfill_days)


if __name__ == "__main__":
    sys.exit(main())
