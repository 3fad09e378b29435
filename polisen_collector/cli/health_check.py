"""Is the collector healthy? Reads the health file every run leaves, for cron, Nagios or Prometheus.

Exit codes: 0 healthy, 1 unhealthy (missing, unreadable or odd file, stale, last run failed).
With --nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, with the plugin options -w -c -t -v -V
(docs/monitoring.md says what the thresholds mean). --serve runs an HTTP endpoint instead.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import NoReturn, TypedDict

from polisen_collector.cli.common import add_standard_options, quiet_on_closed_pipe
from polisen_collector.config import ConfigError
from polisen_collector.health.verdict import CRITICAL_FAILURES, NAGIOS_EXIT, UNKNOWN, Verdict, assess


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    nagios = "--nagios" in (sys.argv[1:] if argv is None else argv)

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # a usage error is UNKNOWN to a monitoring plugin
            self.print_usage(sys.stderr)
            self.exit(NAGIOS_EXIT[UNKNOWN] if nagios else 2, f"{self.prog}: error: {message}\n")

    parser = Parser(
        description="Check the collector's health file: exit 0 when healthy, 1 when not, one line saying why.",
        epilog="The health file is HEALTH_FILE, else health.json in LOG_DIR (environment or .env).",
    )
    parser.add_argument("--health-file", help="health JSON to read (HEALTH_FILE)")
    parser.add_argument("--max-age-minutes", type=_minutes, default=45.0,
                        help="older than this is unhealthy (default 45: 30 min interval + 15 min grace)")
    parser.add_argument("--json", action="store_true", help="print the verdict and the health data as JSON")
    parser.add_argument("--nagios", action="store_true",
                        help="monitoring-plugin output and exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
    parser.add_argument("-w", "--warning", type=_minutes, default=45.0, metavar="MINUTES",
                        help="--nagios: WARNING when the last run is older than this (default 45)")
    parser.add_argument("-c", "--critical", type=_minutes, default=90.0, metavar="MINUTES",
                        help="--nagios: CRITICAL when the last run is older than this (default 90)")
    parser.add_argument("--critical-failures", type=_count, default=CRITICAL_FAILURES, metavar="N",
                        help="a failed last run is WARNING, CRITICAL from N failures in a row "
                             f"(default {CRITICAL_FAILURES}, as deploy/prometheus-alerts.yml)")
    parser.add_argument("-t", "--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                        help="give up reading the health file after this long: UNKNOWN (default 10)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print the details after the status line, also when unhealthy")
    add_standard_options(parser)
    parser.add_argument("--serve", action="store_true", help="serve GET /healthz and GET /metrics over HTTP")
    parser.add_argument("--host", default="127.0.0.1", help="--serve: address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=9108, help="--serve: port (default 9108; 0 picks a free one)")
    args = parser.parse_args(argv)
    if args.warning > args.critical:
        parser.error("--warning must not be above --critical")
    return args


def _minutes(text: str) -> float:
    value = float(text)
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of minutes")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < 10**6:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def health_path(args: argparse.Namespace) -> Path:
    """--health-file, else the collector's own rule (HEALTH_FILE, else LOG_DIR/health.json)."""
    if args.health_file:
        return Path(args.health_file)
    from polisen_collector.config import load_settings

    return load_settings(env_file=args.env_file, only=("health_file", "log_dir")).health_path


def report(verdict: Verdict, args: argparse.Namespace) -> int:
    if args.nagios:
        code = NAGIOS_EXIT[verdict.state]
        perfdata = verdict.perfdata(**limits(args), critical_failures=args.critical_failures)
        line = f"POLISEN_COLLECTOR {verdict.state}: {plugin_text(verdict.message)}" + (f" | {perfdata}" if perfdata else "")
    else:
        code = 0 if verdict.healthy else 1
        line = f"{'HEALTHY' if verdict.healthy else 'UNHEALTHY'}: {verdict.message}"
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(line)
        if (verdict.healthy or args.verbose) and verdict.details:
            print("\n".join(plugin_text(detail) if args.nagios else detail for detail in verdict.details))
    return code


def plugin_text(text: str) -> str:
    """Monitoring plugins split output at `|` (perfdata follows it): a `|` from the file becomes `/`."""
    return text.replace("|", "/")


class Limits(TypedDict):
    warning: timedelta
    critical: timedelta


def limits(args: argparse.Namespace) -> Limits:
    """Age limits: --warning/--critical for Nagios; --max-age-minutes for both otherwise."""
    if args.nagios:
        return {"warning": timedelta(minutes=args.warning), "critical": timedelta(minutes=args.critical)}
    return {"warning": timedelta(minutes=args.max_age_minutes), "critical": timedelta(minutes=args.max_age_minutes)}


class _TimedOut(Exception):
    pass


def assess_within(path: Path, args: argparse.Namespace) -> Verdict:
    """assess() under -t: a health file on a hung disk or network mount is UNKNOWN, not a hung check."""

    def give_up(signum: int, frame: object) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    try:
        return assess(path, critical_failures=args.critical_failures, **limits(args))
    except _TimedOut:
        return Verdict(UNKNOWN, f"no answer within {args.timeout:g} s reading the health file {path} "
                                "(a hung disk or network file system?)", path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@quiet_on_closed_pipe
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path = health_path(args)
    except (OSError, ValueError, ConfigError) as error:  # e.g. an unreadable .env, an empty LOG_DIR
        return report(Verdict(UNKNOWN, f"cannot tell where the health file is: {error}", Path(".")), args)
    if args.serve:
        from polisen_collector.health.server import serve

        return serve(path, host=args.host, port=args.port, max_age=timedelta(minutes=args.max_age_minutes))
    return report(assess_within(path, args), args)
