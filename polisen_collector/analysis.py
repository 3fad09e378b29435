"""Reading the per-run metrics files, and statistics over them: timings, events, failures, bandwidth, gaps, trends.

Kept to plain json and the statistics module so that a year of runs (17,520 files) is read
and summarised in well under a second; matplotlib is imported only by plot().
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polisen_collector.clock import utc_now
from polisen_collector.files import SMALL_FILE_BYTES, read_regular, replace_with
from polisen_collector.messages import one_line
from polisen_collector.metrics.run_metrics import CLOCK_SLACK, METRICS_FILE, STAMP, STEPS

if TYPE_CHECKING:  # matplotlib is imported only by plot()
    from matplotlib.figure import Figure

SPARK = "▁▂▃▄▅▆▇█"
WEEK = timedelta(days=7)
TREND_WEEKS = 12
WEEKS_BEFORE = 4
GAP_FACTOR = 1.5
TOP_ERRORS = 5


class BadMetricsFile(Exception):
    """A metrics file that cannot be used; str() says why."""


class MetricsFileError(Exception):
    """The metrics file or folder cannot be read; the message says which."""


class NoMetricsYet(MetricsFileError):
    """No run has left a metrics file yet (or the folder does not exist yet): not a failure."""


@dataclass(frozen=True)
class Run:
    run_id: str
    started_at: datetime
    outcome: str
    timings: dict[str, float]
    counts: dict[str, float]
    errors: list[dict[str, Any]]


@dataclass
class Loaded:
    runs: list[Run]
    skipped: list[tuple[str, str]]


NUMBER_TYPES = frozenset((int, float))
MAX_VALUE = 1e15
"""The largest timing (seconds) or count a metrics file may hold; a run writes far smaller ones."""


def parse_run(data: bytes) -> Run:
    """One metrics file's content as a Run, or BadMetricsFile saying what is wrong."""
    return run_of(metrics_document(data))


def read_metrics_file(path: str | Path) -> bytes:
    """A metrics file's bytes, read the guarded way and no further than SMALL_FILE_BYTES (a run's
    file is a few KB); OSError when unreadable, BadMetricsFile when larger."""
    data = read_regular(path, SMALL_FILE_BYTES)
    if len(data) > SMALL_FILE_BYTES:
        raise BadMetricsFile(f"larger than {SMALL_FILE_BYTES} bytes, not a run's metrics")
    return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def metrics_document(data: bytes) -> dict[str, Any]:
    """A metrics file's JSON object, or BadMetricsFile."""
    try:
        document = json.loads(data, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadMetricsFile(f"not valid JSON ({error})") from None
    except RecursionError:
        raise BadMetricsFile("not valid JSON (nested too deeply)") from None
    if not isinstance(document, dict):
        raise BadMetricsFile("not a JSON object")
    return document


def run_of(document: dict[str, Any]) -> Run:
    """A metrics document as a Run, or BadMetricsFile saying which field is missing or wrong."""
    run_id, started, outcome = document.get("run_id"), document.get("started_at"), document.get("outcome")
    timings, counts, errors = document.get("timings"), document.get("counts"), document.get("errors", [])
    if not (isinstance(run_id, str) and isinstance(started, str) and isinstance(outcome, str)):
        raise BadMetricsFile("lacks run_id, started_at or outcome")
    if not (isinstance(timings, dict) and isinstance(counts, dict) and isinstance(errors, list)):
        raise BadMetricsFile("lacks timings, counts or errors")
    for kind, values in (("timing", timings), ("count", counts)):
        for name, value in values.items():
            if type(value) not in NUMBER_TYPES or not 0 <= value <= MAX_VALUE:
                raise BadMetricsFile(f"its {kind} {one_line(name, 40)!r} is {one_line(value, 40)}, "
                                     f"not a number from 0 to {MAX_VALUE:g}")
    if not all(isinstance(e, dict) for e in errors):
        raise BadMetricsFile("has an error entry that is not an object")
    try:
        started_at = datetime.fromisoformat(started)
    except ValueError:
        raise BadMetricsFile(f"started_at {started!r} is not a date and time") from None
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=UTC)
    return Run(run_id, started_at.astimezone(UTC), outcome, timings, counts, errors)


def run_file_names(directory: Path, kind: str = "run") -> list[str]:
    """The `run-*.json` (or `audit-*.json`) names in directory, oldest first (run ids start with their UTC time);
    OSError if unreadable."""
    return sorted(name for name in os.listdir(directory) if name.startswith(f"{kind}-") and name.endswith(".json"))


@dataclass
class Latest:
    """The newest run's metrics document, and the names of the files dated after now (flagged:
    written while the clock was wrong, they are not the last run)."""

    document: dict[str, Any]
    future: list[str]


def future_names(names: list[str], now: datetime | None = None) -> list[str]:
    """The metrics file names dated (by their run id) later than now plus CLOCK_SLACK."""
    cutoff = ((now or utc_now()) + CLOCK_SLACK).astimezone(UTC).strftime(STAMP)
    return [name for name in names if (match := METRICS_FILE.match(name)) and match.group(1) > cutoff]


def latest_run(directory: Path, now: datetime | None = None) -> Latest:
    """The metrics document of the newest run in `directory` not dated in the future, checked as
    analyze_metrics.py checks every run."""
    try:
        names = run_file_names(directory)
    except FileNotFoundError:
        raise NoMetricsYet(f"no metrics yet in {directory}") from None
    except OSError as error:
        raise MetricsFileError(f"cannot read the metrics folder {directory}: {error.strerror}") from None
    future = future_names(names, now)
    names = [name for name in names if name not in future]
    if not names:
        raise NoMetricsYet(f"no metrics yet in {directory}" + (f" but {len(future)} dated in the future" if future else ""))
    path = Path(directory) / names[-1]
    try:
        document = metrics_document(read_metrics_file(path))
        run_of(document)  # the fields the summary line reads
    except OSError as error:
        raise MetricsFileError(f"{path} is unreadable: {error.strerror}") from None
    except BadMetricsFile as error:
        raise MetricsFileError(f"{path} is unreadable: {error}") from None
    return Latest(document, future)


def load_runs(directory: Path, since: datetime | None = None, kind: str = "run", now: datetime | None = None,
              ) -> Loaded:
    """Every readable `run-*.json` in directory (started at or after since), sorted by time; with
    kind="audit" the audit ticks' `audit-*.json`.

    Names start with the run's UTC time, so files before `since` are never opened.
    Unreadable or partial files are skipped and listed with the reason; so are files dated in
    the future (the clock was wrong when they were written), which would else pose as the last run.
    """
    try:
        names = run_file_names(directory, kind)
    except (FileNotFoundError, NotADirectoryError):
        return Loaded([], [])
    if since is not None:
        first = f"{kind}-" + since.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        names = [name for name in names if name >= first]
    runs: list[Run] = []
    future = future_names(names, now)
    skipped = [(name, "dated in the future (was the clock wrong when it ran?)") for name in future]
    for name in names:
        if name in future:
            continue
        try:
            run = parse_run(read_metrics_file(os.path.join(directory, name)))
        except OSError as error:
            skipped.append((name, f"cannot be read ({error.strerror})"))
            continue
        except BadMetricsFile as error:
            skipped.append((name, str(error)))
            continue
        if since is None or run.started_at >= since:
            runs.append(run)
    runs.sort(key=lambda run: run.started_at)
    return Loaded(runs, skipped)


def describe(values: list[float]) -> dict[str, Any]:
    """count, mean, median, p95, min, max, stdev (None where undefined); p95 interpolates."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p95": None, "min": None, "max": None, "stdev": None}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "mean": statistics.fmean(ordered),
        "median": statistics.median(ordered),
        "p95": statistics.quantiles(ordered, n=20, method="inclusive")[18] if len(ordered) > 1 else ordered[0],
        "min": ordered[0],
        "max": ordered[-1],
        "stdev": _stdev(ordered) if len(ordered) > 1 else None,
    }


def _stdev(values: list[float]) -> float:
    """Sample standard deviation, like statistics.stdev but in float arithmetic (10x faster)."""
    mean = statistics.fmean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


class Series:
    """All values of one measure, and their sums per trend week (0 = the newest week)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.sums = [0.0] * TREND_WEEKS
        self.counts = [0] * TREND_WEEKS

    def add(self, value: float, week: int) -> None:
        self.values.append(value)
        if week < TREND_WEEKS:
            self.sums[week] += value
            self.counts[week] += 1

    def trend(self, totals: bool = False) -> dict[str, Any]:
        """This week (the 7 days up to the newest run) against the 4 weeks before, and the
        weekly values of the last 12 weeks, oldest first: means, or sums with totals=True."""
        weekly: list[float | None]
        before: float | None
        if totals:
            weekly = list(self.sums[::-1])
            before = sum(self.sums[1:WEEKS_BEFORE + 1]) / WEEKS_BEFORE
        else:
            weekly = [total / n if n else None for total, n in zip(self.sums[::-1], self.counts[::-1], strict=True)]
            n_before = sum(self.counts[1:WEEKS_BEFORE + 1])
            before = sum(self.sums[1:WEEKS_BEFORE + 1]) / n_before if n_before else None
        this_week = weekly[-1]
        change = this_week / before - 1 if this_week is not None and before else None
        return {"this_week": this_week, "weeks_before": before, "change": change,
                "weekly": weekly, "sparkline": sparkline(weekly)}


def sparkline(values: Sequence[float | None]) -> str:
    """One block character per value, scaled between the smallest and largest; blank for None."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = high - low
    return "".join(
        " " if v is None else SPARK[3 if span == 0 else min(len(SPARK) - 1, int((v - low) / span * len(SPARK)))]
        for v in values
    )


def schedule_gaps(runs: list[Run], interval_minutes: int) -> dict[str, Any]:
    """Runs missing from the schedule: consecutive runs more than 1.5 intervals apart."""
    interval = timedelta(minutes=interval_minutes)
    gaps = []
    for previous, run in pairwise(runs):
        delta = run.started_at - previous.started_at
        if delta > interval * GAP_FACTOR:
            gaps.append({
                "after": previous.started_at.isoformat(), "before": run.started_at.isoformat(),
                "minutes": delta.total_seconds() / 60, "missed_runs": max(1, round(delta / interval) - 1),
            })
    expected = round((runs[-1].started_at - runs[0].started_at) / interval) + 1 if runs else 0
    return {"interval_minutes": interval_minutes, "expected_runs": expected,
            "missed_runs": sum(gap["missed_runs"] for gap in gaps), "gaps": gaps}


AUDIT_TOTALS = {"withdrawn": "audit_withdrawn", "republished": "audit_republished", "found_missing": "audit_new",
                "found_edited": "audit_updated", "doubted_days": "audit_doubted_days"}
"""The audit ticks' counts summed in the analysis, by the name it gives them."""


def analyze_audits(ticks: list[Run], anchor: datetime | None) -> dict[str, Any]:
    """What the audit ticks found: totals, and the withdrawals and returns per week (weeks end at `anchor`,
    the newest run's start, as the runs' trends do)."""
    anchor = anchor or (ticks[-1].started_at if ticks else None)
    totals = dict.fromkeys(AUDIT_TOTALS, 0.0)
    weekly: dict[str, Series] = {name: Series() for name in ("withdrawn", "republished")}
    outcomes: Counter[str] = Counter()
    for tick in ticks:
        outcomes[tick.outcome] += 1
        for name, key in AUDIT_TOTALS.items():
            totals[name] += tick.counts.get(key, 0)
        if anchor is not None and tick.started_at <= anchor:
            week = int((anchor - tick.started_at) / WEEK)
            for name, series in weekly.items():
                series.add(tick.counts.get(AUDIT_TOTALS[name], 0), week)
    return {"ticks": len(ticks), "outcomes": dict(outcomes.most_common()), **totals,
            "trends": {f"{name}_per_week": series.trend(totals=True) for name, series in weekly.items()} if ticks else {}}


def analyze(loaded: Loaded, interval_minutes: int, audits: Loaded | None = None) -> dict[str, Any]:
    """The whole analysis as one JSON-ready document (keys documented in README.md).

    Step timings count every run but those that found the lock taken (they did nothing);
    events count successful runs; bytes count every run that got an answer. `audits`, the
    audit ticks' files, add what the audit found (`audit`).
    """
    runs = loaded.runs
    series: dict[str, Series] = defaultdict(Series)
    steps: dict[str, Series] = defaultdict(Series)
    runs_per_week, success, failed = series["runs"], series["success_rate"], series["failure_rate"]
    new, updated, wire = series["new_events_per_run"], series["updated_events_per_run"], series["bytes_wire_per_run"]
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    months: dict[str, dict[str, float]] = defaultdict(lambda: {"runs": 0, "bytes": 0})
    for run in runs:
        week = int((runs[-1].started_at - run.started_at) / WEEK)  # 0 = the week up to the newest run
        outcome, counts = run.outcome, run.counts
        outcomes[outcome] += 1
        runs_per_week.add(1, week)
        success.add(outcome == "success", week)
        failed.add(outcome == "failed", week)
        for error in run.errors:
            errors[f"{error.get('type', '?')}: {error.get('message', '')}"] += 1
        if outcome != "locked":
            for step, seconds in run.timings.items():
                steps[step].add(seconds, week)
        if outcome == "success":
            if "new_events" in counts:
                new.add(counts["new_events"], week)
            if "updated_events" in counts:
                updated.add(counts["updated_events"], week)
        if "bytes_wire" in counts:
            wire.add(counts["bytes_wire"], week)
            month = months[f"{run.started_at.year:04d}-{run.started_at.month:02d}"]
            month["runs"] += 1
            month["bytes"] += counts["bytes_wire"]
    step_names = ordered_steps(steps)
    trends = {name: values.trend(totals=name == "runs") for name, values in series.items()} if runs else {}
    if runs:
        trends.update({f"{step}_seconds": steps[step].trend() for step in step_names})
    return {
        "period": {"runs": len(runs), "first_run": runs[0].started_at.isoformat() if runs else None,
                   "last_run": runs[-1].started_at.isoformat() if runs else None},
        "files": {"read": len(runs), "skipped": len(loaded.skipped),
                  "skipped_files": [{"file": name, "reason": reason} for name, reason in loaded.skipped]},
        "outcomes": dict(outcomes.most_common()),
        "success_rate": outcomes["success"] / len(runs) if runs else None,
        "failure_rate": outcomes["failed"] / len(runs) if runs else None,
        "top_errors": [{"error": text, "count": n} for text, n in errors.most_common(TOP_ERRORS)],
        "steps": {step: describe(steps[step].values) for step in step_names},
        "events": {kind: {**describe(values.values), "total": sum(values.values)}
                   for kind, values in (("new", new), ("updated", updated))},
        "bytes_wire": {"per_run": describe(wire.values), "total": sum(wire.values),
                       "per_month": dict(sorted(months.items()))},
        "schedule": schedule_gaps(runs, interval_minutes),
        "trends": trends,
        "audit": analyze_audits(audits.runs if audits else [], runs[-1].started_at if runs else None),
    }


def ordered_steps(names: Iterable[str]) -> list[str]:
    """The feed's steps in the order a run takes them, then any others (pages, backfill) by name."""
    names = set(names)
    return [step for step in STEPS if step in names] + sorted(names - set(STEPS))


def human_bytes(size: float | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _change(trend: dict[str, Any] | None) -> str:
    if not trend or trend["change"] is None:
        return ""
    return f"{trend['change'] * 100:+.1f}%"


def _plural(count: int, noun: str) -> str:
    """`1 run`, `4,342 runs`: a count with its noun."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _spark(trend: dict[str, Any] | None) -> str:
    return trend["sparkline"] if trend else ""


def format_report(doc: dict[str, Any], metrics_dir: Path) -> str:
    """The analysis as text an operator reads in a terminal."""
    period, trend = doc["period"], doc["trends"]
    runs = period["runs"]
    lines = [
        (f"{_plural(runs, 'run')} in {metrics_dir} from {period['first_run'][:16].replace('T', ' ')} "
         f"to {period['last_run'][:16].replace('T', ' ')} UTC"),
        "",
        "Outcomes: " + ", ".join(f"{name} {n:,} ({n / runs:.1%})" for name, n in doc["outcomes"].items())
        + f"   trend {_spark(trend.get('failure_rate'))} (failure rate, {TREND_WEEKS} weeks)",
    ]
    if doc["top_errors"]:
        lines.append("Most common errors:")
        lines += [f"  {e['count']:>6,}  {e['error'][:110]}" for e in doc["top_errors"]]
    schedule = doc["schedule"]
    lines.append(
        f"Schedule (every {schedule['interval_minutes']} min): {_plural(schedule['expected_runs'], 'run')} expected, "
        f"{schedule['missed_runs']:,} missed in {_plural(len(schedule['gaps']), 'gap')}"
    )
    for gap in sorted(schedule["gaps"], key=lambda g: -g["minutes"])[:3]:
        lines.append(f"  {gap['after'][:16].replace('T', ' ')} -> {gap['before'][:16].replace('T', ' ')}: "
                     f"{gap['minutes'] / 60:.1f} h, {_plural(gap['missed_runs'], 'run')} missed")

    header = f"{'':<18}{'count':>8}{'mean':>9}{'median':>9}{'p95':>9}{'min':>9}{'max':>9}{'stdev':>9}"
    trend_header = f"  {TREND_WEEKS} weeks{'':<{max(0, TREND_WEEKS - 8)}}  week vs 4 before"
    lines += ["", "Step timings (s)" + header[16:] + trend_header]
    for step, s in doc["steps"].items():
        t = trend.get(f"{step}_seconds")
        lines.append(f"  {step:<16}{s['count']:>8,}{_num(s['mean']):>9}{_num(s['median']):>9}{_num(s['p95']):>9}"
                     f"{_num(s['min']):>9}{_num(s['max']):>9}{_num(s['stdev']):>9}  {_spark(t)}  {_change(t)}")
    lines += ["", f"Events per successful run{'':<1}{'mean':>9}{'median':>9}{'max':>9}{'total':>10}" + trend_header]
    for kind in ("new", "updated"):
        e, t = doc["events"][kind], trend.get(f"{kind}_events_per_run")
        lines.append(f"  {kind:<24}{_num(e['mean'], 2):>9}{_num(e['median'], 1):>9}{_num(e['max'], 0):>9}"
                     f"{e['total']:>10,.0f}  {_spark(t)}  {_change(t)}")
    wire, t = doc["bytes_wire"], trend.get("bytes_wire_per_run")
    per_run = wire["per_run"]
    # The same columns as the events table above, so the sparklines line up.
    lines += ["", f"Bytes on the wire per run{'':<1}{'mean':>9}{'median':>9}{'max':>9}{'total':>10}" + trend_header,
              f"  {'all runs':<24}{human_bytes(per_run['mean']):>9}{human_bytes(per_run['median']):>9}"
              f"{human_bytes(per_run['max']):>9}{human_bytes(wire['total']):>10}  {_spark(t)}  {_change(t)}"]
    for month, m in wire["per_month"].items():
        label = f"{month} ({_plural(m['runs'], 'run')})"
        lines.append(f"  {label:<24}{human_bytes(m['bytes'] / m['runs']):>9}{'':>18}{human_bytes(m['bytes']):>10}")
    audit = doc.get("audit") or {}
    if audit.get("ticks"):
        doubted = f"; {audit['doubted_days']:,.0f} day answers could not confirm an absence" if audit["doubted_days"] else ""
        lines += ["", f"Audit: {_plural(audit['ticks'], 'tick')}, {audit['found_missing']:,.0f} missing and "
                      f"{audit['found_edited']:,.0f} edited events found{doubted}",
                  f"Withdrawals (from the audit){'':<27}{'total':>8}" + trend_header]  # lined up with the tables above
        for name in ("withdrawn", "republished"):
            t = audit["trends"].get(f"{name}_per_week")
            lines.append(f"  {name:<53}{audit[name]:>8,.0f}  {_spark(t)}  {_change(t)}")
    success = trend.get("success_rate")
    if success and success["this_week"] is not None:
        before = success["weeks_before"]
        lines += ["", f"This week: success rate {success['this_week']:.1%}"
                      + (f" against {before:.1%} in the 4 weeks before" if before is not None else "")
                      + f"; {trend['runs']['this_week']:,.0f} runs this week, "
                      f"{trend['runs']['weeks_before']:,.0f} a week before"]
    return "\n".join(lines)


# A history shorter than this (a first day) is drawn run by run, a longer one day by day.
PER_RUN_SPAN = timedelta(days=3)
# Fewer points than this get markers, so a single run or day still shows as a dot.
SPARSE_POINTS = 60


def plot(runs: list[Run], path: Path, interval_minutes: int, audits: Iterable[Run] = ()) -> None:
    """The trends drawn into a PNG (see trend_figure), written beside `path` and renamed over it:
    a page or a dashboard showing it never reads half a picture; its mode follows the umask."""
    import matplotlib.pyplot as plt

    figure = trend_figure(runs, interval_minutes, audits)
    try:
        replace_with(path, lambda name: figure.savefig(name, format="png", dpi=80))
    finally:
        plt.close(figure)


def trend_figure(runs: list[Run], interval_minutes: int, audits: Iterable[Run] = ()) -> Figure:
    """Step timings, events per run, failures and bytes over time (UTC), missed runs shaded grey; with the
    audit ticks' files, a fifth panel of the withdrawals and returns they confirmed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    from matplotlib.patches import Patch

    runs = sorted(runs, key=lambda run: run.started_at)
    per_run = runs[-1].started_at - runs[0].started_at < PER_RUN_SPAN
    buckets: dict[datetime, dict[str, Series]] = defaultdict(lambda: defaultdict(Series))
    timed: set[str] = set()
    for run in runs:
        bucket = buckets[run.started_at if per_run else run.started_at.replace(hour=0, minute=0, second=0,
                                                                                microsecond=0)]
        bucket["failed"].add(run.outcome == "failed", 0)
        if run.outcome != "locked":
            for step, seconds in run.timings.items():
                bucket[f"step:{step}"].add(seconds, 0)
                timed.add(step)
        for name in ("new_events", "updated_events") if run.outcome == "success" else ():
            if name in run.counts:
                bucket[name].add(run.counts[name], 0)
        if "bytes_wire" in run.counts:
            bucket["bytes_wire"].add(run.counts["bytes_wire"] / 1000, 0)
    x = sorted(buckets)

    def series(name: str, total: bool = False) -> list[float]:
        values = [buckets[when][name].values if name in buckets[when] else [] for when in x]
        return [sum(v) if total else (statistics.fmean(v) if v else math.nan) for v in values]

    line = {"linewidth": 1, **({"marker": "o", "markersize": 4} if len(x) < SPARSE_POINTS else {})}
    each = "per run" if per_run else "daily mean"
    ticks = list(audits)
    figure, axes = plt.subplots(5 if ticks else 4, 1, figsize=(11, 13.5 if ticks else 11), sharex=True)
    for step in ordered_steps(timed):
        axes[0].plot(x, series(f"step:{step}"), label=step, **line)
    axes[0].set(title="Step timings", ylabel=f"seconds ({each})", yscale="log")
    for name in ("new_events", "updated_events"):
        axes[1].plot(x, series(name), label=name.replace("_", " "), **line)
    axes[1].set(title="Events per successful run", ylabel=each)
    width = interval_minutes / 1440 * 0.8 if per_run else 0.8  # date units are days
    failed = series("failed", total=True)
    axes[2].bar(x, failed, width=width, color="tab:red")
    axes[2].set_ylim(0, max(1, *failed) * 1.1)
    axes[2].set(title="Failures", ylabel="failed runs" + ("" if per_run else " per day"))
    axes[3].plot(x, series("bytes_wire"), **line)
    axes[3].set(title="Bytes on the wire", ylabel=f"kB per run ({each})")
    if ticks:
        found: dict[datetime, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for tick in ticks:
            when = tick.started_at if per_run else tick.started_at.replace(hour=0, minute=0, second=0, microsecond=0)
            found[when][0] += tick.counts.get("audit_withdrawn", 0)
            found[when][1] += tick.counts.get("audit_republished", 0)
        days = sorted(found)
        axes[4].bar(days, [found[day][0] for day in days], width=width, color="tab:purple", label="withdrawn")
        axes[4].plot(days, [found[day][1] for day in days], color="tab:green", label="republished", **line)
        axes[4].set(title="Withdrawals the audit confirmed", ylabel="events" + ("" if per_run else " per day"))
        axes[4].yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axes[4].legend(fontsize="small")

    schedule = schedule_gaps(runs, interval_minutes)
    for gap in schedule["gaps"]:
        for axis in axes:
            axis.axvspan(datetime.fromisoformat(gap["after"]), datetime.fromisoformat(gap["before"]),
                         color="0.88", zorder=0)
    missed = [Patch(color="0.88", label=f"missed runs ({schedule['missed_runs']})")] if schedule["gaps"] else []
    for axis, extra in ((axes[0], missed), (axes[1], [])):
        handles, _ = axis.get_legend_handles_labels()
        axis.legend(handles=handles + extra, fontsize="small", ncol=3)
    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")  # 0.01, 1, 2 rather than 10^-2
    low, high = axes[0].get_ylim()
    axes[0].yaxis.set_major_formatter(plain)
    axes[0].yaxis.set_minor_formatter(plain if high < 10 * low else ticker.NullFormatter())
    axes[2].yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    if len(x) == 1:  # one point: give the axis a span, or matplotlib draws a zero-width one
        axes[-1].set_xlim(x[0] - timedelta(hours=1), x[0] + timedelta(hours=1))
    locator = mdates.AutoDateLocator(tz=UTC)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    axes[-1].set_xlabel("time (UTC)")
    first, last = runs[0].started_at.astimezone(UTC), runs[-1].started_at.astimezone(UTC)
    figure.suptitle(f"Polisen events collector: {len(runs)} run{'s' if len(runs) != 1 else ''}, {first:%Y-%m-%d %H:%M} to "
                    f"{last:%Y-%m-%d %H:%M} UTC, {schedule['missed_runs']} missed ({each})")
    figure.tight_layout()
    return figure
