"""The last run's performance metrics: its summary line or its JSON.

Each run writes `METRICS_DIR/run-<run id>.json` (see docs/metrics.md); this prints the
newest one. Before the first run (no folder, or no file in it) it says "no metrics yet in
DIR" (with --json: `null`) and exits 0, as analyze_metrics.py does: a new install is not a
failure. Exit codes: 0 printed, 1 the newest file or the folder is unreadable, 2 bad
arguments or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys

from polisen_collector.cli.common import ToolParser, add_standard_options, door
from polisen_collector.config import ConfigError, check_not_a_file, load_settings
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_FAILED, EXIT_OK


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ToolParser(description="Show the metrics of the collector's last run.")
    parser.add_argument("--metrics-dir", help="folder of run-*.json files (METRICS_DIR)")
    parser.add_argument("--json", action="store_true", help="print the run's whole JSON document")
    add_standard_options(parser)
    return parser.parse_args(argv)


@door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(overrides={"METRICS_DIR": args.metrics_dir}, env_file=args.env_file,
                                 only=("metrics_dir",))
        check_not_a_file(settings.metrics_dir, "METRICS_DIR")
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    from polisen_collector.analysis import MetricsFileError, NoMetricsYet, latest_run
    from polisen_collector.metrics.run_metrics import summary_line

    try:
        latest = latest_run(settings.metrics_dir)
    except NoMetricsYet as nothing:
        print("null" if args.json else f"{nothing}: every run of collect_events.py leaves one run-*.json file there.")
        return EXIT_OK
    except MetricsFileError as error:
        print(str(error), file=sys.stderr)
        return EXIT_FAILED
    if latest.future:
        print(f"warning: {len(latest.future)} newer metrics files are dated in the future (was the clock wrong "
              f"when they were written?), the newest {latest.future[-1]}; showing the last run before now",
              file=sys.stderr)
    print(json.dumps(latest.document, indent=2, ensure_ascii=False) if args.json else summary_line(latest.document))
    return EXIT_OK
