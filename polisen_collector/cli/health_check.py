"""Is the collector healthy? Reads the health file every run leaves, for cron, Nagios or Prometheus.

Exit codes: 0 healthy, 1 unhealthy (missing, unreadable or odd file, stale, last run failed),
2 a usage error. With --nagios, the monitoring-plugin guidelines: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN (a usage error too); one status line `POLISEN_COLLECTOR <STATE>: ...` with
performance data, the details only with -v; -w and -c take plugin ranges of minutes
(docs/monitoring.md says what they mean). --serve runs an HTTP endpoint instead.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import NoReturn, TypedDict

from polisen_collector.cli.common import ToolParser, add_standard_options, door, missing_dependency, value_of
from polisen_collector.config import ConfigError
from polisen_collector.health.ranges import RANGE_FORMS, PluginRange
from polisen_collector.health.verdict import CRITICAL_FAILURES, NAGIOS_EXIT, UNKNOWN, Verdict, assess

SERVICE = "POLISEN_COLLECTOR"
"""The service a --nagios status line names: `POLISEN_COLLECTOR OK: ...`, the guidelines' `SERVICE STATUS: text`."""


def status_line(state: str, text: str) -> str:
    """A plugin's status line, every state alike (a usage error is an UNKNOWN like any other)."""
    return f"{SERVICE} {state}: {plugin_text(text)}"


class PluginParser(ToolParser):
    """With --nagios a usage error is UNKNOWN: one status line on stdout, where the monitoring
    system reads a plugin's status, and exit 3."""

    nagios = False

    def error(self, message: str) -> NoReturn:
        if not self.nagios:
            super().error(message)
        print(status_line(UNKNOWN, f"{self.prog}: {message} (see --help)"), flush=True)
        self.exit(NAGIOS_EXIT[UNKNOWN])


def _positive(unit: str, below: int) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not 0 < value < below:
            raise ValueError
        return value

    return value_of(f"a number of {unit} above 0 and below {below}", parse)


def _whole_at_least_1(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError
    return int(text)


TIMEOUT_SECONDS = 10.0
HOST, PORT_NUMBER = "127.0.0.1", 9108
MAX_AGE_MINUTES = 45.0  # the plain check's limit: the 30-minute interval + 15 minutes grace
WARNING_MINUTES, CRITICAL_MINUTES = 45.0, 90.0  # the plugin's
MINUTES = _positive("minutes", 10**7)
SECONDS = _positive("seconds", 10**6)
AGE_RANGE = value_of(f"a range of minutes ({RANGE_FORMS})", PluginRange.parse)
COUNT = value_of("a whole number of at least 1", _whole_at_least_1)
PORT = value_of("a port number from 0 to 65535 (0 picks a free one)", _port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = PluginParser(
        description="Check the collector's health file: exit 0 when healthy, 1 when not, one line saying why.",
        epilog="The health file is HEALTH_FILE, else health.json in LOG_DIR (environment or .env).",
    )
    parser.add_argument("--health-file", help="health JSON to read (HEALTH_FILE)")
    parser.add_argument("--max-age-minutes", type=MINUTES,
                        help=f"without --nagios: older than this is unhealthy (default {MAX_AGE_MINUTES:g}: 30 min "
                             "interval + 15 min grace)")
    parser.add_argument("--json", action="store_true", help="print the verdict and the health data as JSON")
    parser.add_argument("--nagios", action="store_true",
                        help="monitoring-plugin output and exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
    parser.add_argument("-w", "--warning", type=AGE_RANGE, metavar="RANGE",
                        help="--nagios: WARNING when the last run's age in minutes is outside this plugin range "
                             f"({WARNING_MINUTES:g}: older than {WARNING_MINUTES:g} minutes, the default, or -c when "
                             "that is lower; also N:, ~:N, N:M, @N:M)")
    parser.add_argument("-c", "--critical", type=AGE_RANGE, metavar="RANGE",
                        help="--nagios: CRITICAL when the last run's age in minutes is outside this range "
                             f"(default {CRITICAL_MINUTES:g}, or -w when that is higher)")
    parser.add_argument("--critical-failures", type=COUNT, metavar="N",
                        help="--nagios: a failed last run is WARNING, CRITICAL from N failures in a row "
                             f"(default {CRITICAL_FAILURES}, as deploy/prometheus-alerts.yml)")
    parser.add_argument("-t", "--timeout", type=SECONDS, metavar="SECONDS",
                        help=f"give up reading the health file after this long: UNKNOWN (default {TIMEOUT_SECONDS:g})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print the details after the status line (without --nagios they follow a "
                             "healthy line anyway)")
    add_standard_options(parser)
    parser.add_argument("--serve", action="store_true", help="serve GET /healthz and GET /metrics over HTTP")
    parser.add_argument("--host", help=f"--serve: address to bind (default {HOST}, loopback)")
    parser.add_argument("--port", type=PORT, help=f"--serve: port (default {PORT_NUMBER}; 0 picks a free one)")
    parser.nagios = "--nagios" in (sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    check_mode_options(parser, args)
    args.warning, args.critical = age_limits(parser, args.warning, args.critical)
    if args.max_age_minutes is None:
        args.max_age_minutes = MAX_AGE_MINUTES
    if args.critical_failures is None:
        args.critical_failures = CRITICAL_FAILURES
    args.timeout = TIMEOUT_SECONDS if args.timeout is None else args.timeout
    args.host = HOST if args.host is None else args.host
    args.port = PORT_NUMBER if args.port is None else args.port
    return args


PLUGIN_ONLY = (("warning", "-w/--warning"), ("critical", "-c/--critical"), ("critical_failures", "--critical-failures"))
CHECK_ONLY = (("nagios", "--nagios"), ("json", "--json"), ("verbose", "-v/--verbose"), ("timeout", "-t/--timeout"))
SERVE_ONLY = (("host", "--host"), ("port", "--port"))


def _listed(flags: list[str]) -> str:
    return " and ".join((", ".join(flags[:-1]), flags[-1])) if len(flags) > 1 else flags[0]


def check_mode_options(parser: PluginParser, args: argparse.Namespace) -> None:
    """An option of the other mode is refused, never silently ignored: -w, -c and --critical-failures
    are the plugin's (--nagios), --max-age-minutes the plain check's and --serve's; --nagios, --json,
    -v and -t a check's, --host and --port --serve's."""
    if args.serve:
        given = [flag for name, flag in CHECK_ONLY if getattr(args, name)]
        if given:
            parser.error(f"{_listed(given)} {'applies' if len(given) == 1 else 'apply'} to a check, not to --serve "
                         "(it answers each request from the health file: /healthz and /metrics)")
    elif args.host is not None or args.port is not None:
        given = [flag for name, flag in SERVE_ONLY if getattr(args, name) is not None]
        parser.error(f"{_listed(given)} {'applies' if len(given) == 1 else 'apply'} only with --serve")
    if not args.nagios:
        given = [flag for name, flag in PLUGIN_ONLY if getattr(args, name) is not None]
        if given:
            parser.error(f"{_listed(given)} {'applies' if len(given) == 1 else 'apply'} only with --nagios "
                         "(without it, --max-age-minutes is the limit and any failed run is unhealthy)")
    elif args.max_age_minutes is not None and not args.serve:
        parser.error("--max-age-minutes is the limit of the check without --nagios: with --nagios give "
                     "-w/--warning and -c/--critical")


def age_limits(parser: PluginParser, warning: PluginRange | None,
               critical: PluginRange | None) -> tuple[PluginRange, PluginRange]:
    """-w and -c, a default yielding to the limit given: `-c 30` alone makes -w 30 too (not the default
    45, above it), `-w 120` alone makes -c 120. Both given as plain numbers, -w must not be above -c."""
    if warning is None:
        warning = PluginRange.up_to(WARNING_MINUTES)
        if critical is not None and critical.is_upper_limit and critical.end < warning.end:
            warning = critical
    elif critical is None:
        critical = PluginRange.up_to(CRITICAL_MINUTES)
        if warning.is_upper_limit and warning.end > critical.end:
            critical = warning
    critical = critical or PluginRange.up_to(CRITICAL_MINUTES)
    if warning.is_upper_limit and critical.is_upper_limit and warning.end > critical.end:
        parser.error(f"-w/--warning {warning.text} is above -c/--critical {critical.text}: a run older than "
                     "--critical minutes must also be older than --warning")
    return warning, critical


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
        line = status_line(verdict.state, verdict.message) + (f" | {perfdata}" if perfdata else "")
    else:
        code = 0 if verdict.healthy else 1
        line = f"{'HEALTHY' if verdict.healthy else 'UNHEALTHY'}: {verdict.message}"
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(line)
        # A plugin's long output follows its status line only when asked for (the guidelines' -v);
        # the plain check shows a healthy run's details anyway, for an operator at a terminal.
        if (args.verbose or (verdict.healthy and not args.nagios)) and verdict.details:
            print("\n".join(plugin_text(detail) if args.nagios else detail for detail in verdict.details))
    return code


def plugin_text(text: str) -> str:
    """Monitoring plugins split output at `|` (perfdata follows it): a `|` from the file becomes `/`."""
    return text.replace("|", "/")


class Limits(TypedDict):
    warning: PluginRange
    critical: PluginRange


def limits(args: argparse.Namespace) -> Limits:
    """Age limits: --warning/--critical for Nagios; --max-age-minutes for both otherwise."""
    if args.nagios:
        return {"warning": args.warning, "critical": args.critical}
    plain = PluginRange.up_to(args.max_age_minutes)
    return {"warning": plain, "critical": plain}


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


@door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        path = health_path(args)
    except (OSError, ValueError, ConfigError) as error:  # e.g. an unreadable .env, an empty LOG_DIR
        return report(Verdict(UNKNOWN, f"cannot tell where the health file is: {error}", Path(".")), args)
    except ModuleNotFoundError as missing:  # python-dotenv, for a .env: a plugin still answers UNKNOWN
        if not args.nagios or (line := missing_dependency(missing)) is None:
            raise
        return report(Verdict(UNKNOWN, line, Path(".")), args)
    if args.serve:
        from polisen_collector.health.server import serve

        return serve(path, host=args.host, port=args.port, max_age=timedelta(minutes=args.max_age_minutes))
    return report(assess_within(path, args), args)
