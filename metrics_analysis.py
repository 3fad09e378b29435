"""Statistics over the per-run metrics files: timings, events, failures, bandwidth, gaps, trends.

Kept to plain json and the statistics module so that a year of runs (17,520 files) is read
and summarised in well under a second; matplotlib is imported only by plot().
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from performance_metrics import STEPS

SPARK = "▁▂▃▄▅▆▇█"
WEEK = timedelta(days=7)
TREND_WEEKS = 12
WEEKS_BEFORE = 4
GAP_FACTOR = 1.5
TOP_ERRORS = 5


class BadMetricsFile(Exception):
    """A metrics file that cannot be used; str() says why."""


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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_run(data: bytes) -> Run:
    """One metrics file's content as a Run, or BadMetricsFile saying what is wrong."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadMetricsFile(f"not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise BadMetricsFile("not a JSON object")
    run_id, started, outcome = document.get("run_id"), document.get("started_at"), document.get("outcome")
    timings, counts, errors = document.get("timings"), document.get("counts"), document.get("errors", [])
    if not (isinstance(run_id, str) and isinstance(started, str) and isinstance(outcome, str)):
        raise BadMetricsFile("lacks run_id, started_at or outcome")
    if not (isinstance(timings, dict) and isinstance(counts, dict) and isinstance(errors, list)):
        raise BadMetricsFile("lacks timings, counts or errors")
    if not all(_number(v) for v in timings.values()) or not all(_number(v) for v in counts.values()):
        raise BadMetricsFile("has a timing or count that is not a number")
    if not all(isinstance(e, dict) for e in errors):
        raise BadMetricsFile("has an error entry that is not an object")
    try:
        started_at = datetime.fromisoformat(started)
    except ValueError:
        raise BadMetricsFile(f"started_at {started!r} is not a date and time") from None
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=UTC)
    return Run(run_id, started_at.astimezone(UTC), outcome, timings, counts, errors)


def load_runs(directory: Path, since: datetime | None = None) -> Loaded:
    """Every readable `run-*.json` in directory (started at or after since), sorted by time.

    Names start with the run's UTC time, so files before `since` are never opened.
    Unreadable or partial files are skipped and listed with the reason.
    """
    try:
        names = sorted(name for name in os.listdir(directory) if name.startswith("run-") and name.endswith(".json"))
    except FileNotFoundError:
        return Loaded([], [])
    if since is not None:
        first = "run-" + since.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        names = [name for name in names if name >= first]
    runs, skipped = [], []
    for name in names:
        try:
            with open(os.path.join(directory, name), "rb") as handle:
                run = parse_run(handle.read())
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
        "stdev": statistics.stdev(ordered) if len(ordered) > 1 else None,
    }


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _collecting(runs: list[Run]) -> list[Run]:
    """Runs that tried to collect (a run that found the lock taken did nothing)."""
    return [run for run in runs if run.outcome != "locked"]


def _step_names(runs: list[Run]) -> list[str]:
    found = {name for run in runs for name in run.timings}
    return [s for s in STEPS if s in found] + sorted(found - set(STEPS))


def _rate(outcome: str) -> Callable[[list[Run]], float | None]:
    return lambda runs: sum(run.outcome == outcome for run in runs) / len(runs) if runs else None


def _count_mean(name: str, successful: bool) -> Callable[[list[Run]], float | None]:
    return lambda runs: _mean([run.counts[name] for run in runs
                               if name in run.counts and (run.outcome == "success" or not successful)])


def _step_mean(step: str) -> Callable[[list[Run]], float | None]:
    return lambda runs: _mean([run.timings[step] for run in _collecting(runs) if step in run.timings])


def sparkline(values: list[float | None]) -> str:
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


def trends(runs: list[Run], metrics: dict[str, Callable[[list[Run]], float | None]]) -> dict[str, Any]:
    """Each metric this week (the 7 days up to the newest run) against the 4 weeks before,
    with its weekly values over the last 12 weeks, oldest first."""
    if not runs:
        return {}
    anchor = runs[-1].started_at
    weeks: list[list[Run]] = [[] for _ in range(TREND_WEEKS)]
    for run in runs:
        index = int((anchor - run.started_at) / WEEK)
        if index < TREND_WEEKS:
            weeks[index].append(run)
    before = [run for week in weeks[1:WEEKS_BEFORE + 1] for run in week]
    result = {}
    for name, measure in metrics.items():
        weekly = [measure(week) for week in reversed(weeks)]
        this_week, earlier = weekly[-1], measure(before)
        change = this_week / earlier - 1 if this_week is not None and earlier else None
        result[name] = {"this_week": this_week, "weeks_before": earlier, "change": change,
                        "weekly": weekly, "sparkline": sparkline(weekly)}
    return result


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


def analyze(loaded: Loaded, interval_minutes: int) -> dict[str, Any]:
    """The whole analysis as one JSON-ready document (keys documented in README.md)."""
    runs = loaded.runs
    collecting = _collecting(runs)
    successful = [run for run in runs if run.outcome == "success"]
    steps = _step_names(collecting)
    outcomes = Counter(run.outcome for run in runs)
    errors = Counter(f"{e.get('type', '?')}: {e.get('message', '')}" for run in runs for e in run.errors)
    wire = [(run, run.counts["bytes_wire"]) for run in runs if "bytes_wire" in run.counts]
    months: dict[str, dict[str, float]] = defaultdict(lambda: {"runs": 0, "bytes": 0})
    for run, size in wire:
        month = months[run.started_at.strftime("%Y-%m")]
        month["runs"] += 1
        month["bytes"] += size

    def events(name: str) -> dict[str, Any]:
        values = [run.counts[name] for run in successful if name in run.counts]
        return {**describe(values), "total": sum(values)}

    trend_metrics: dict[str, Callable[[list[Run]], float | None]] = {
        "runs": len, "success_rate": _rate("success"), "failure_rate": _rate("failed"),
        "new_events_per_run": _count_mean("new_events", True),
        "updated_events_per_run": _count_mean("updated_events", True),
        "bytes_wire_per_run": _count_mean("bytes_wire", False),
    }
    trend_metrics.update({f"{step}_seconds": _step_mean(step) for step in steps})
    return {
        "period": {"runs": len(runs), "first_run": runs[0].started_at.isoformat() if runs else None,
                   "last_run": runs[-1].started_at.isoformat() if runs else None},
        "files": {"read": len(runs), "skipped": len(loaded.skipped),
                  "skipped_files": [{"file": name, "reason": reason} for name, reason in loaded.skipped]},
        "outcomes": dict(outcomes.most_common()),
        "success_rate": outcomes["success"] / len(runs) if runs else None,
        "failure_rate": outcomes["failed"] / len(runs) if runs else None,
        "top_errors": [{"error": text, "count": n} for text, n in errors.most_common(TOP_ERRORS)],
        "steps": {step: describe([run.timings[step] for run in collecting if step in run.timings]) for step in steps},
        "events": {"new": events("new_events"), "updated": events("updated_events")},
        "bytes_wire": {"per_run": describe([size for _, size in wire]), "total": sum(size for _, size in wire),
                       "per_month": dict(sorted(months.items()))},
        "schedule": schedule_gaps(runs, interval_minutes),
        "trends": trends(runs, trend_metrics),
    }


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
    return f"{trend['change'] * 100:+.0f}%"


def _spark(trend: dict[str, Any] | None) -> str:
    return trend["sparkline"] if trend else ""


def format_report(doc: dict[str, Any], metrics_dir: Path) -> str:
    """The analysis as text an operator reads in a terminal."""
    period, trend = doc["period"], doc["trends"]
    runs = period["runs"]
    lines = [
        (f"{runs:,} runs in {metrics_dir} from {period['first_run'][:16].replace('T', ' ')} "
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
        f"Schedule (every {schedule['interval_minutes']} min): {schedule['expected_runs']:,} runs expected, "
        f"{schedule['missed_runs']:,} missed in {len(schedule['gaps']):,} gaps"
    )
    for gap in sorted(schedule["gaps"], key=lambda g: -g["minutes"])[:3]:
        lines.append(f"  {gap['after'][:16].replace('T', ' ')} -> {gap['before'][:16].replace('T', ' ')}: "
                     f"{gap['minutes'] / 60:.1f} h, {gap['missed_runs']} runs missed")

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
    lines += ["", (f"Bytes on the wire per run: mean {human_bytes(per_run['mean'])}, median "
                   f"{human_bytes(per_run['median'])}, max {human_bytes(per_run['max'])}; "
                   f"total {human_bytes(wire['total'])}   {_spark(t)}  {_change(t)}")]
    for month, m in wire["per_month"].items():
        lines.append(f"  {month}  {m['runs']:>6,} runs  {human_bytes(m['bytes']):>9}")
    success = trend.get("success_rate")
    if success and success["this_week"] is not None:
        before = success["weeks_before"]
        lines += ["", f"This week: success rate {success['this_week']:.1%}"
                      + (f" against {before:.1%} in the 4 weeks before" if before is not None else "")
                      + f"; {trend['runs']['this_week']:,} runs"]
    return "\n".join(lines)


def plot(runs: list[Run], path: Path) -> None:
    """Daily trends (step timings, events per run, failures, bytes) drawn into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days: dict[datetime, list[Run]] = defaultdict(list)
    for run in runs:
        days[run.started_at.replace(hour=0, minute=0, second=0, microsecond=0)].append(run)
    x = sorted(days)
    figure, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    for step in _step_names(_collecting(runs)):
        axes[0].plot(x, [_step_mean(step)(days[day]) for day in x], label=step, linewidth=1)
    axes[0].set_ylabel("seconds (daily mean)")
    axes[0].legend(fontsize="small", ncol=3)
    axes[0].set_title("Step timings")
    for name in ("new_events", "updated_events"):
        axes[1].plot(x, [_count_mean(name, True)(days[day]) for day in x], label=name.replace("_", " "), linewidth=1)
    axes[1].set_ylabel("per successful run")
    axes[1].legend(fontsize="small")
    axes[1].set_title("Events per run")
    axes[2].bar(x, [sum(run.outcome == "failed" for run in days[day]) for day in x], color="tab:red")
    axes[2].set_ylabel("failed runs per day")
    axes[2].set_title("Failures")
    axes[3].plot(x, [(_count_mean("bytes_wire", False)(days[day]) or 0) / 1000 for day in x], linewidth=1)
    axes[3].set_ylabel("kB per run")
    axes[3].set_title("Bytes on the wire")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=80)
    plt.close(figure)
