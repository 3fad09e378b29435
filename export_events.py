#!/usr/bin/env python3
"""Export the archive as one clean table: one row per event (its latest version), JSONL/CSV/Parquet.

Exit codes: 0 done (bad archive lines are reported and skipped), 1 the store failed,
2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from polisen_collector import __version__
from polisen_collector.config import ConfigError, load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Export the deduplicated event archive: one row per event id, its latest version.",
        epilog="Storage comes from the same settings as collect_events.py (STORAGE, DATA_DIR, OCI_*); see README.md.",
    )
    parser.add_argument("-o", "--output", help="output file (default stdout; required for Parquet)")
    parser.add_argument("--format", choices=("jsonl", "csv", "parquet"),
                        help="output format (default: from the -o extension, else jsonl)")
    parser.add_argument("--all-versions", action="store_true", help="one row per distinct version, not per id")
    parser.add_argument("--from", dest="date_from", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="first event date included")
    parser.add_argument("--to", dest="date_to", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="last event date included")
    parser.add_argument("--type", action="append", default=[], metavar="TYPE",
                        help="only these event types (repeat or separate with ';'), case-insensitive")
    parser.add_argument("--location", action="append", default=[], metavar="NAME",
                        help="only these location names (repeat or separate with ';'), case-insensitive")
    parser.add_argument("--data-dir", help="local archive folder (DATA_DIR)")
    parser.add_argument("--storage", choices=("local", "oci"), help="archive backend (STORAGE)")
    parser.add_argument("--env-file", default=".env", help="file of KEY=VALUE settings (default .env)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = Path(args.output).suffix.lower() if args.output else ""
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "jsonl")


def names(values: list[str]) -> frozenset[str]:
    return frozenset(part.strip().casefold() for value in values for part in value.split(";") if part.strip())


def show_progress(index: int, total: int, day: date) -> None:
    sys.stderr.write(f"\rexporting {day} ({index}/{total} days)")
    if index == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def report_bad(line) -> None:
    print(f"skipping bad archive line: {line}", file=sys.stderr)


def write_output(fmt: str, rows, output: str | None) -> None:
    """To stdout, or to a temp file renamed over -o at the end, so a failed export leaves no half file."""
    from polisen_collector.export import WRITERS

    writer = WRITERS[fmt]
    if output is None:
        writer(rows, sys.stdout)
        return
    path = Path(output)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if fmt == "parquet":
            os.close(fd)
            writer(rows, tmp)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                writer(rows, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fmt = output_format(args)
    if fmt == "parquet" and not args.output:
        print("error: Parquet output needs -o FILE", file=sys.stderr)
        return 2
    if args.output and not Path(args.output).resolve().parent.is_dir():
        print(f"error: the folder of {args.output} does not exist", file=sys.stderr)
        return 2
    try:
        settings = load_settings(overrides={"DATA_DIR": args.data_dir, "STORAGE": args.storage},
                                 env_file=Path(args.env_file))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if settings.storage == "local" and not settings.data_dir.is_dir():
        print(f"configuration error: DATA_DIR={str(settings.data_dir)!r} is not a folder", file=sys.stderr)
        return 2

    from polisen_collector.export import ExportError, ExportOptions, ExportSummary, iter_rows
    from polisen_collector.storage import open_storage
    from polisen_collector.storage.base import StorageError

    options = ExportOptions(all_versions=args.all_versions, date_from=args.date_from, date_to=args.date_to,
                            types=names(args.type), locations=names(args.location))
    summary = ExportSummary()
    try:
        storage = open_storage(settings)
        rows = iter_rows(storage, options, summary, report_bad,
                         show_progress if sys.stderr.isatty() else None)
        write_output(fmt, rows, args.output)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # a reader like `head` left
        return 0
    for event_id in summary.split_ids:
        print(f"warning: event {event_id} has versions dated on days more than a week apart; "
              "exported once per date", file=sys.stderr)
    print(f"exported {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
