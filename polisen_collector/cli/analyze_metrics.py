"""Trends of the collector from its per-run metrics files: is it healthy, slower, failing more?

Exit codes: 0 report printed (also when there are no metrics yet), 1 the plot could not be
written, 2 bad arguments or configuration, or --plot without matplotlib installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from polisen_collector.cli.common import ToolParser, add_standard_options, door, value_of
from polisen_collector.clock import utc_now
from polisen_collector.config import ConfigError, check_not_a_file, load_settings


def _moment(value: str) -> datetime:
    """YYYY-MM-DD or an ISO date and time; UTC unless it says otherwise."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _whole_at_least_1(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError
    return int(value)


parse_since = value_of("a date (YYYY-MM-DD) or an ISO date and time", _moment)
positive_int = value_of("a whole number of at least 1", _whole_at_least_1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ToolParser(
        description="Summarise the collector's per-run metrics: timings, events, failures, bandwidth, "
                    "missed runs and trends.",
        epilog="Defaults come from the environment or a .env file (METRICS_DIR, RUN_INTERVAL_MINUTES).",
    )
    parser.add_argument("--metrics-dir", help="folder of run-*.json files (METRICS_DIR)")
    period = parser.add_mutually_exclusive_group()
    period.add_argument("--since", type=parse_since, help="only runs started at or after this date/time (UTC)")
    period.add_argument("--days", type=positive_int, help="only runs of the last N days")
    parser.add_argument("--interval", type=positive_int, help="expected minutes between runs (RUN_INTERVAL_MINUTES)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--plot", metavar="FILE.png", type=Path, help="also draw the trends into a PNG (matplotlib)")
    add_standard_options(parser)
    return parser.parse_args(argv)


@door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(
            overrides={"METRICS_DIR": args.metrics_dir,
                       "RUN_INTERVAL_MINUTES": str(args.interval) if args.interval else None},
            env_file=args.env_file, only=("metrics_dir", "run_interval_minutes"),
        )
        check_not_a_file(settings.metrics_dir, "METRICS_DIR")
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401 - imported only to learn whether the extra is installed and loads
        except ImportError:
            from polisen_collector.installation import extra_hint

            print(f"--plot needs matplotlib, the optional extra 'plots': {extra_hint('plots')}", file=sys.stderr)
            return 2

    from polisen_collector.analysis import analyze, format_report, load_runs, plot

    since = args.since or (utc_now() - timedelta(days=args.days) if args.days else None)
    loaded = load_runs(settings.metrics_dir, since)
    if loaded.skipped:
        print(f"warning: skipped {len(loaded.skipped)} unreadable, partial or future-dated metrics files:",
              file=sys.stderr)
        for name, reason in loaded.skipped[:5]:
            print(f"  {name}: {reason}", file=sys.stderr)
        if len(loaded.skipped) > 5:
            print(f"  ... and {len(loaded.skipped) - 5} more", file=sys.stderr)
    audits = load_runs(settings.metrics_dir, since, kind="audit")
    doc = analyze(loaded, settings.run_interval_minutes, audits)
    doc = {"metrics_dir": str(settings.metrics_dir), "since": since.isoformat() if since else None, **doc}
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    elif not loaded.runs:
        print(f"No metrics yet in {settings.metrics_dir}" + (f" since {since:%Y-%m-%d %H:%M} UTC" if since else "")
              + ": every run of collect_events.py leaves one run-*.json file there.")
    else:
        print(format_report(doc, settings.metrics_dir))
    if args.plot and loaded.runs:
        try:
            plot(loaded.runs, args.plot, settings.run_interval_minutes, audits.runs)
        except OSError as error:
            print(f"could not write the plot {args.plot}: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
