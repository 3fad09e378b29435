"""Export the archive as one clean table: one row per event (its latest version), JSONL/CSV/Parquet/SQLite.

Exit codes: 0 done (bad archive lines are reported and skipped), 1 the store or the output
failed, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from polisen_collector.cli.common import ToolParser, add_standard_options, day, door
from polisen_collector.config import STORAGE_FIELDS, ConfigError, load_settings

if TYPE_CHECKING:
    from polisen_collector.archive.layout import BadLine
    from polisen_collector.export_months import MonthsReport
    from polisen_collector.export_update import UpdateReport

FORMATS = ("jsonl", "csv", "parquet", "sqlite")
FORMAT_OF_SUFFIX = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite",
}
FILE_ONLY = {"parquet": "Parquet", "sqlite": "SQLite"}
ARCHIVE_FOLDERS = ("events", "pages", "metadata")
"""A local archive has one of these from its first run on (the events, their pages, the collector's state)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ToolParser(
        description="Export the deduplicated event archive: one row per event id, its latest version.",
        epilog="Storage comes from the same settings as collect_events.py (STORAGE, DATA_DIR, OCI_*); see README.md.",
    )
    parser.add_argument("-o", "--output", help="output file (default stdout; required for Parquet and SQLite; "
                                              "a folder for a Parquet --update)")
    parser.add_argument("--format", choices=FORMATS,
                        help="output format (default: from the -o extension, jsonl on stdout)")
    parser.add_argument("--all-versions", action="store_true",
                        help="one row per distinct version, not per id (SQLite always has both: tables events, versions)")
    parser.add_argument("--withdrawals", action="store_true",
                        help="one row per withdrawal or republication of an event, not per id "
                             "(SQLite always has them: table withdrawals)")
    parser.add_argument("--csv-raw", action="store_true",
                        help="CSV: keep cells starting with = + - @, a tab or a carriage return as they are "
                             "(default: prefixed with ' so spreadsheets do not run them as formulas)")
    parser.add_argument("--from", dest="date_from", type=day, metavar="YYYY-MM-DD",
                        help="first event date included")
    parser.add_argument("--to", dest="date_to", type=day, metavar="YYYY-MM-DD",
                        help="last event date included")
    parser.add_argument("--type", action="append", default=[], metavar="TYPE",
                        help="only these event types (repeat or separate with ';'), case-insensitive")
    parser.add_argument("--location", action="append", default=[], metavar="NAME",
                        help="only these location names (repeat or separate with ';'), case-insensitive")
    parser.add_argument("--update", action="store_true",
                        help="bring the SQLite database -o names up to date in place (or, for Parquet, the folder -o "
                             "names, one file a month), reading only what changed in the archive since (a whole "
                             "export when it does not exist yet)")
    parser.add_argument("--store-parses", action="store_true",
                        help="store the parse of page versions that have none of the current parser (an archive "
                             "from before parses were stored), so that later exports read it (writes to the archive)")
    parser.add_argument("--data-dir", help="local archive folder (DATA_DIR)")
    parser.add_argument("--storage", choices=("local", "oci"), help="archive backend (STORAGE)")
    add_standard_options(parser)
    args = parser.parse_args(argv)
    if args.date_from and args.date_to and args.date_from > args.date_to:
        parser.error(f"--from {args.date_from} is after --to {args.date_to}: no day is in that range")
    return args


def output_format(args: argparse.Namespace) -> str | None:
    """The format asked for, else the one the -o extension names; None when it names none."""
    if args.format:
        return str(args.format)
    if not args.output:
        return "jsonl"
    return FORMAT_OF_SUFFIX.get(Path(args.output).suffix.lower())


def names(values: list[str]) -> frozenset[str]:
    return frozenset(part.strip().casefold() for value in values for part in value.split(";") if part.strip())


def show_progress(index: int, day: date) -> None:
    sys.stderr.write(f"\rexporting {day} ({index} days)")
    sys.stderr.flush()


def report_bad(line: BadLine) -> None:
    print(f"skipping bad archive line: {line}", file=sys.stderr)


DESCRIPTOR = re.compile(r"/dev/(?:fd/(?P<fd>\d+)|(?P<name>stdout|stderr))|/proc/self/fd/(?P<proc>\d+)")
"""A name of one of the process's open descriptors: written to as it is open (`-o /dev/stdout >> log` appends)."""


def output_path(output: str, fmt: str, update: bool) -> tuple[Path | int, bool]:
    """(-o, or the open descriptor it names; whether it is written into as a stream): a FIFO or device is
    written into as it is, never replaced by a file (a symbolic link's target is: files.replace_with);
    NotRegularFile for such a place where a file is needed (SQLite, Parquet), or for a folder where a file
    is written; OSError when it cannot be looked at (a loop of links)."""
    import stat

    from polisen_collector.files import NotRegularFile

    if named := DESCRIPTOR.fullmatch(output):
        if fmt in FILE_ONLY:
            raise NotRegularFile(output, stat.S_IFCHR)
        name = named["name"]
        return (1 if name == "stdout" else 2) if name else int(named["fd"] or named["proc"]), True
    path = Path(output)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path, False
    if stat.S_ISREG(mode) or (stat.S_ISDIR(mode) and fmt == "parquet" and update):
        return path, False
    if fmt in FILE_ONLY or stat.S_ISDIR(mode):
        raise NotRegularFile(output, mode)
    return path, True


def write_output(fmt: str, rows: Iterable[dict[str, Any]], output: Path | int | None, csv_raw: bool, *,
                 history: bool = False, stream: bool = False) -> None:
    """To stdout; into -o as it is when it is a FIFO or a device (`stream`); or to a temp file renamed over -o
    at the end, so a failed export leaves no half file. `rows` are iter_rows' rows (of the withdrawal history
    with `history`)."""
    from polisen_collector.export import COLUMNS, HISTORY_COLUMNS, write_csv, write_jsonl, write_parquet
    from polisen_collector.files import replace_with

    columns = HISTORY_COLUMNS if history else COLUMNS

    def write_text(handle: TextIO) -> None:
        if fmt == "csv":
            write_csv(rows, handle, raw=csv_raw, columns=columns)
        else:
            write_jsonl(rows, handle)

    def write_file(path: str) -> None:
        if fmt == "parquet":
            write_parquet(rows, path, columns)
        else:
            with open(path, "w", encoding="utf-8", newline="") as handle:
                write_text(handle)

    if output is None or output == 1:
        write_text(sys.stdout)
    elif isinstance(output, int):  # an open descriptor, as it is open: a file opened to append is appended to
        with os.fdopen(os.dup(output), "w", encoding="utf-8", newline="") as handle:
            write_text(handle)
    elif stream:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            write_text(handle)
    else:
        replace_with(output, write_file)


@door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fmt = output_format(args)
    if fmt is None:
        print(f"error: cannot tell the format from the name {args.output}: use --format {'|'.join(FORMATS)}",
              file=sys.stderr)
        return 2
    if fmt in FILE_ONLY and not args.output:
        print(f"error: {FILE_ONLY[fmt]} output needs -o FILE", file=sys.stderr)
        return 2
    if args.withdrawals and args.update:
        print("error: --withdrawals is not kept up to date by --update (SQLite has it: table withdrawals)",
              file=sys.stderr)
        return 2
    if args.withdrawals and (args.all_versions or fmt == "sqlite"):
        print("error: --withdrawals is a table of its own: not with --all-versions, and SQLite always has it",
              file=sys.stderr)
        return 2
    if args.csv_raw and fmt != "csv":
        print("error: --csv-raw applies only to CSV output", file=sys.stderr)
        return 2
    if args.update and fmt not in FILE_ONLY:
        print("error: --update applies to SQLite (-o FILE.db) and Parquet (-o FOLDER --format parquet)",
              file=sys.stderr)
        return 2
    if fmt == "sqlite" and args.all_versions:
        print("error: --all-versions does not apply to SQLite, which holds every version (table versions)",
              file=sys.stderr)
        return 2
    output: Path | int | None = None
    stream = False
    if args.output:
        from polisen_collector.files import NotRegularFile

        try:
            if not DESCRIPTOR.fullmatch(args.output) and not Path(args.output).resolve().parent.is_dir():
                print(f"error: the folder of {args.output} does not exist", file=sys.stderr)
                return 2
            output, stream = output_path(args.output, fmt, args.update)
        except NotRegularFile as refused:
            print(f"error: {refused}: {FILE_ONLY.get(fmt, 'the export')} is written to a file, renamed into place "
                  "when complete", file=sys.stderr)
            return 2
        except (OSError, RuntimeError) as error:  # RuntimeError: Path.resolve of a loop of links
            print(f"error: -o {args.output}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
            return 2
    try:
        settings = load_settings(overrides={"DATA_DIR": args.data_dir, "STORAGE": args.storage},
                                 env_file=args.env_file, only=(*STORAGE_FIELDS, "api_url", "site_url"))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if settings.storage == "local" and not settings.data_dir.is_dir():
        problem = "is a file, not a folder" if settings.data_dir.exists() else "does not exist"
        print(f"configuration error: DATA_DIR={str(settings.data_dir)!r} {problem}", file=sys.stderr)
        return 2
    if settings.storage == "local" and not any((settings.data_dir / folder).is_dir() for folder in ARCHIVE_FOLDERS):
        # A wrong DATA_DIR exported nothing and said so only in its summary; --update then emptied the site.
        print(f"configuration error: DATA_DIR={str(settings.data_dir)!r} holds no archive (no events/, pages/ "
              "or metadata/ in it): give the folder the collector writes", file=sys.stderr)
        return 2

    from polisen_collector.export import (
        ExportError,
        ExportOptions,
        ExportSummary,
        iter_rows,
    )
    from polisen_collector.parts import open_store
    from polisen_collector.storage.base import StorageError

    options = ExportOptions(all_versions=args.all_versions, withdrawals=args.withdrawals,
                            date_from=args.date_from, date_to=args.date_to,
                            types=names(args.type), locations=names(args.location),
                            page_origin=settings.page_origin, store_parses=args.store_parses)
    summary = ExportSummary()
    progress = show_progress if sys.stderr.isatty() else None
    updated: UpdateReport | MonthsReport | None = None
    try:
        storage = open_store(settings)
        if fmt == "sqlite":
            from polisen_collector import export_update
            from polisen_collector.files import replace_with

            assert isinstance(output, Path)  # FILE_ONLY formats refuse a descriptor
            if args.update and output.exists():
                updated = export_update.update(storage, options, output, summary, on_bad=report_bad,
                                               progress=progress)
            else:
                replace_with(output, partial(export_update.write_new, storage, options, summary=summary,
                                             on_bad=report_bad, progress=progress))
        elif args.update:
            from polisen_collector.export_months import update_months

            assert isinstance(output, Path)
            updated = update_months(storage, options, output, summary, report_bad)
        else:
            write_output(fmt, iter_rows(storage, options, summary, report_bad, progress), output, args.csv_raw,
                         history=args.withdrawals, stream=stream)
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
        raise  # a reader like `head` left: door ends the tool, not a failed output
    except OSError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    if sys.stderr.isatty() and summary.days:
        sys.stderr.write("\n")
    for event_id in summary.split_ids:
        print(f"warning: event {event_id} has versions dated on days more than a week apart; "
              + ("merged into one row of events" if fmt == "sqlite" else "exported once per date"), file=sys.stderr)
    if fmt == "sqlite" and updated is not None and updated.how == "rebuilt":
        print(f"{args.output} rebuilt in place: {updated.reason}", file=sys.stderr)
    if updated is None or (fmt == "sqlite" and updated.how == "rebuilt"):
        print(f"exported {summary}", file=sys.stderr)
    else:  # the update's own line: the export's summary counts what it read, not what the output holds
        skipped = f"; {summary.bad_lines} bad lines skipped" if summary.bad_lines else ""
        print(f"{args.output} {updated}{skipped}{summary.notes()}", file=sys.stderr)
    return 0
