#!/usr/bin/env python3
"""Is the collector healthy? Reads the health file every run leaves, for cron, Nagios or Prometheus.

Exit codes: 0 healthy, 1 unhealthy (missing, unreadable or odd file, stale, last run failed).
With --nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. --serve runs an HTTP endpoint instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from polisen_collector import __version__
from polisen_collector.health.verdict import NAGIOS_EXIT, UNKNOWN, Verdict, assess


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    nagios = "--nagios" in (sys.argv[1:] if argv is None else argv)

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # a usage error is UNKNOWN to a monitoring plugin
            self.print_usage(sys.stderr)
            self.exit(NAGIOS_EXIT[UNKNOWN] if nagios else 2, f"{self.prog}: error: {message}\n")

    parser = Parser(
        description="Check the collector's health file: exit 0 when healthy, 1 when not, one line saying why.",
        epilog="The health file is HEALTH_FILE, else health.json in LOG_DIR (environment or .env).",
    )
    parser.add_argument("--health-file", help="health JSON to read (HEALTH_FILE)")
    parser.add_argument("--env-file", default=".env", help="file of KEY=VALUE settings (default .env)")
    parser.add_argument("--max-age-minutes", type=_minutes, default=45.0,
                        help="older than this is unhealthy (default 45: 30 min interval + 15 min grace)")
    parser.add_argument("--json", action="store_true", help="print the verdict and the health data as JSON")
    parser.add_argument("--nagios", action="store_true",
                        help="monitoring-plugin output and exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
    parser.add_argument("--warning", type=_minutes, default=45.0, help="--nagios: WARNING age in minutes (45)")
    parser.add_argument("--critical", type=_minutes, default=90.0, help="--nagios: CRITICAL age in minutes (90)")
    parser.add_argument("--serve", action="store_true", help="serve GET /healthz and GET /metrics over HTTP")
    parser.add_argument("--host", default="127.0.0.1", help="--serve: address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=9108, help="--serve: port (default 9108; 0 picks a free one)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if args.warning > args.critical:
        parser.error("--warning must not be above --critical")
    return args


def _minutes(text: str) -> float:
    value = float(text)
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of minutes")
    return value


def health_path(args: argparse.Namespace) -> Path:
    """--health-file, else the collector's own rule (HEALTH_FILE, else LOG_DIR/health.json)."""
    if args.health_file:
        return Path(args.health_file)
    from polisen_collector.config import health_path_of, load_some

    some = load_some(("health_file", "log_dir"), env_file=Path(args.env_file))
    return health_path_of(some.get("health_file"), some["log_dir"])


def report(verdict: Verdict, args: argparse.Namespace) -> int:
    if args.nagios:
        warning, critical = timedelta(minutes=args.warning), timedelta(minutes=args.critical)
        code = NAGIOS_EXIT[verdict.state]
        perfdata = verdict.perfdata(warning, critical)
        line = f"POLISEN_COLLECTOR {verdict.state}: {verdict.message}" + (f" | {perfdata}" if perfdata else "")
    else:
        code = 0 if verdict.healthy else 1
        line = f"{'HEALTHY' if verdict.healthy else 'UNHEALTHY'}: {verdict.message}"
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(line)
        if verdict.healthy:
            print("\n".join(verdict.details))
    return code


def limits(args: argparse.Namespace) -> dict[str, timedelta]:
    """Age limits: --warning/--critical for Nagios; --max-age-minutes for both otherwise."""
    if args.nagios:
        return {"warning": timedelta(minutes=args.warning), "critical": timedelta(minutes=args.critical)}
    return {"warning": timedelta(minutes=args.max_age_minutes), "critical": timedelta(minutes=args.max_age_minutes)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path = health_path(args)
    except (OSError, ValueError) as error:  # e.g. an unreadable .env
        return report(Verdict(UNKNOWN, f"cannot tell where the health file is: {error}", Path(".")), args)
    if args.serve:
        from polisen_collector.health.server import serve

        return serve(path, host=args.host, port=args.port, max_age=timedelta(minutes=args.max_age_minutes))
    return report(assess(path, **limits(args)), args)


if __name__ == "__main__":
    sys.exit(main())
