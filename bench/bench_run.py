#!/usr/bin/env python3
"""How close a collection run comes to the physical limit: round trips x latency + local cost.

Starts the fake Polisen API and the fake OCI server of the tests with the same latency
added to every request (0, 50, 100 ms by default), replays real snapshots through
collect_events.py as real processes on each backend, and prints per configuration:

- wall time per run (median, p90) and its lower bound: the run's critical round trips
  x latency + the same run's wall time at 0 latency;
- requests per run to the API and to OCI (vault secret reads counted apart);
- critical round trips: the longest chain of requests (both servers) of which each starts
  after the previous one ended, taken from the servers' request logs;
- bytes on the wire to and from the API (headers included) and the gzip size of the body
  (level 6, what `gzip` does by default);
- CPU time (user + system) and peak RSS of the collector process alone: each run is
  started by bench/launch.py, a tiny parent whose `wait4` sees only the collector.

The package is byte-compiled first (`python -m compileall`), as the deploy steps do.

Scenarios: `new` runs each serve the next snapshot (a few new or edited events each);
`304` runs serve the same snapshot again (the API answers 304 Not Modified); `same` runs
serve it again from an API without ETag (a full 200 with nothing new).

`--audit` adds audit ticks after them (`collect_events.py --audit`, as many as `--idle`), measured
like the runs: the tick's CPU beside a run's on the same state. The ticks run on today's calendar,
not the recording's: the days they re-read lie after the recording and answer no event, so a tick
costs its requests and the state's decoding, not the storing of what the audit finds.

`--no-freeze` adds this collector once more as `no-freeze`, run through `main()` instead of
`program()`: the same job without the gc.freeze() before the interpreter's exit
(polisen_collector/cli/collect_events.py), side by side and run by run like `--compare`.

Side by side: `--compare NAME=COMMAND` (repeatable) runs another collector command on the
same servers and snapshots, each in its own workspace and bucket, alternating with this one
run by run (the order swapped every step), and prints the ratios this / other. The command
is formatted with {python}, {api_url}, {oci_endpoint}, {namespace}, {bucket}, {workdir} and
{oci_config}; it also gets this collector's environment variables, pointed at its own
folders and bucket, plus `--compare-env KEY=VALUE`.

    python3 bench/bench_run.py [--runs 15] [--idle 5] [--latencies 0,50,100] [--backends local,oci,vault]
    python3 bench/bench_run.py --backends oci --compare "main={python} /tmp/main/collect_events.py"
    python3 bench/bench_run.py --backends local,oci --latencies 0 --audit --no-freeze
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fake_oci import ApiKey, FakeOCIServer, write_oci_config
from fake_polisen import FakePolisenServer, load_snapshot, snapshot_paths

sys.path.insert(0, str(REPO))
from polisen_collector.config import SETTING_NAMES

VAULT = "ocid1.vault.oc1.eu-stockholm-1.benchvault"
NAMESPACE = "testnamespace"
THIS = "this"
NO_FREEZE = "no-freeze"
# This collector's job without program()'s gc.freeze(): main() called as program() calls it.
NO_FREEZE_COMMAND = ("{python} -c " + shlex.quote(
    f"import sys; sys.path.insert(0, {str(REPO)!r}); from polisen_collector.cli.collect_events import main; "
    "sys.exit(main())") + " --env-file /dev/null")
SCENARIOS = ("new", "304", "same", "audit")
LAUNCHER = [sys.executable, "-I", "-S", str(REPO / "bench" / "launch.py")]


@dataclass
class RunFigures:
    scenario: str
    index: int
    wall: float
    returncode: int
    rss_kb: int
    cpu: float
    api_requests: int
    oci_requests: int
    vault_requests: int
    depth: int
    api_bytes_in: int
    api_bytes_out: int
    oci_bytes: int
    gzip_body: int


class _Counter:
    """Bytes a server read and wrote, wrapped around a handler's rfile and wfile."""

    def __init__(self) -> None:
        self.read = 0
        self.written = 0


class _CountingReader:
    def __init__(self, raw, counter: _Counter) -> None:
        self._raw, self._counter = raw, counter

    def read(self, *args):
        data = self._raw.read(*args)
        self._counter.read += len(data)
        return data

    def readline(self, *args):
        data = self._raw.readline(*args)
        self._counter.read += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._raw, name)


class _CountingWriter:
    def __init__(self, raw, counter: _Counter) -> None:
        self._raw, self._counter = raw, counter

    def write(self, data) -> int:
        self._counter.written += len(data)
        return self._raw.write(data)

    def __getattr__(self, name):
        return getattr(self._raw, name)


def count_bytes(httpd) -> _Counter:
    """Count what a fake server reads and writes, by swapping its handler for a counting subclass."""
    counter = _Counter()
    base = httpd.RequestHandlerClass

    class Counting(base):
        def setup(self) -> None:
            super().setup()
            self.rfile = _CountingReader(self.rfile, counter)
            self.wfile = _CountingWriter(self.wfile, counter)

    httpd.RequestHandlerClass = Counting
    return counter


def critical_depth(intervals: list[tuple[float, float]]) -> int:
    """The longest chain of requests where each starts after the previous one has ended."""
    ordered = sorted(intervals, key=lambda interval: interval[1])
    depth: list[int] = []
    for start, _ in ordered:
        depth.append(1 + max((d for (_, end), d in zip(ordered, depth, strict=False) if end <= start), default=0))
    return max(depth, default=0)


@dataclass
class Contender:
    """A collector command with its own workspace and bucket."""

    name: str
    command: list[str]
    env: dict[str, str]
    workdir: Path
    audits: bool
    """Whether it has an audit tick (`--audit`): this collector does, another collector need not."""


class Bench:
    """One backend at one latency: fresh servers, a workspace per collector, runs measured one by one."""

    def __init__(self, backend: str, latency: float, bodies: list[bytes], workdir: Path, key: ApiKey, *,
                 others: dict[str, str], other_env: dict[str, str]) -> None:
        self.backend, self.latency, self.bodies, self.workdir = backend, latency, bodies, workdir
        names = [THIS, *others]
        self.api = FakePolisenServer(bodies)
        self.api.state.latency = latency
        self.api_bytes = count_bytes(self.api.httpd)
        self.oci = FakeOCIServer(namespace=NAMESPACE, buckets=tuple(f"bench-{name}" for name in names))
        self.oci.state.latency = latency
        self.oci_bytes = count_bytes(self.oci.httpd)
        self.oci.trust(key)
        base = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
        # The feed run alone: the page step after it (PAGES_PER_RUN pages, paced, bounded in time)
        # is not on the critical path, and on a replay it would drain the first run's backlog of
        # ~500 pages 30 a run, which says nothing about a typical run (docs/performance.md).
        base.update({"POLISEN_API_URL": self.api.url, "API_BACKOFF_FACTOR": "0.01",
                     "API_CONTACT_EMAIL": "bench@example.invalid", "API_RATE_LIMIT": "off", "PAGES_PER_RUN": "0"})
        oci_config = write_oci_config(workdir / "oci", key)
        if backend in ("oci", "vault"):
            base.update({"STORAGE": "oci", "OCI_ENDPOINT": self.oci.url, "OCI_NAMESPACE": NAMESPACE,
                         "OCI_CONFIG_FILE": str(oci_config)})
        if backend == "vault":
            reader = ApiKey.generate(user="ocid1.user.oc1..vaultreader")
            self.oci.trust(reader)
            secrets = {"user-ocid": key.user, "tenancy-ocid": key.tenancy, "fingerprint": key.fingerprint,
                       "private-key": key.pem, "region": "eu-stockholm-1"}
            for suffix, value in secrets.items():
                self.oci.add_secret(VAULT, f"polisen-collector-{suffix}", value)
            base.update({"OCI_AUTH": "vault", "OCI_VAULT_ID": VAULT, "OCI_SECRETS_ENDPOINT": self.oci.url,
                         "OCI_CONFIG_FILE": str(write_oci_config(workdir / "vault-reader", reader))})
        templates = {THIS: "{python} " + shlex.quote(str(REPO / "collect_events.py")) + " --env-file /dev/null", **others}
        self.contenders = []
        for name in names:
            home = workdir / name
            home.mkdir()
            env = {**base, "DATA_DIR": str(home / "data"), "LOG_DIR": str(home / "logs"),
                   "METRICS_DIR": str(home / "metrics"), "OCI_BUCKET_NAME": f"bench-{name}"}
            if name not in (THIS, NO_FREEZE):
                env.update(other_env)
            command = shlex.split(templates[name].format(
                python=sys.executable, api_url=self.api.url, oci_endpoint=self.oci.url, namespace=NAMESPACE,
                bucket=f"bench-{name}", workdir=home, oci_config=oci_config))
            self.contenders.append(Contender(name, command, env, home, audits=name in (THIS, NO_FREEZE)))

    def __enter__(self) -> Bench:
        self.api.start()
        self.oci.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.stop()
        self.oci.__exit__()

    def run(self, contender: Contender, scenario: str, index: int) -> RunFigures:
        self.api.serve(index)
        api_mark, oci_mark = len(self.api.requests), len(self.oci.requests)
        api_in, api_out, oci_in, oci_out = (self.api_bytes.read, self.api_bytes.written,
                                            self.oci_bytes.read, self.oci_bytes.written)
        figures_path = contender.workdir / "launch.json"
        figures_path.unlink(missing_ok=True)
        command = [*contender.command, "--audit"] if scenario == "audit" else contender.command
        subprocess.run([*LAUNCHER, str(figures_path), *command], cwd=contender.workdir, env=contender.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        launched = json.loads(figures_path.read_text())
        api_requests = self.api.requests[api_mark:]
        oci_requests = self.oci.requests[oci_mark:]
        offset = time.time() - time.monotonic()
        intervals = [(r.time, r.end) for r in api_requests]
        intervals += [(r.time + offset, r.end + offset) for r in oci_requests]
        vault = sum(1 for r in oci_requests if r.path.startswith("/20190301/"))
        body = self.bodies[index]
        return RunFigures(
            scenario=scenario, index=index, wall=launched["wall"], returncode=launched["returncode"],
            rss_kb=launched["rss_kb"], cpu=launched["cpu"],
            api_requests=len(api_requests), oci_requests=len(oci_requests) - vault, vault_requests=vault,
            depth=critical_depth(intervals), api_bytes_in=self.api_bytes.read - api_in,
            api_bytes_out=self.api_bytes.written - api_out,
            oci_bytes=self.oci_bytes.read - oci_in + self.oci_bytes.written - oci_out,
            gzip_body=len(gzip.compress(body, compresslevel=6)),
        )

    def step(self, scenario: str, index: int, number: int, figures: dict[str, list[RunFigures]]) -> None:
        """Every collector once on the same answer, in an order that alternates from step to step."""
        contenders = [c for c in self.contenders if c.audits or scenario != "audit"]
        order = contenders if number % 2 == 0 else contenders[::-1]
        for contender in order:
            figures[contender.name].append(self.run(contender, scenario, index))

    def replay(self, start: int, runs: int, idle: int, audits: int) -> dict[str, list[RunFigures]]:
        """A first run to fill each archive (not measured), then `runs` new snapshots, then idle runs,
        then `audits` audit ticks."""
        fill: dict[str, list[RunFigures]] = {c.name: [] for c in self.contenders}
        self.step("fill", start, 0, fill)
        for name, (first,) in fill.items():
            if first.returncode != 0:
                raise SystemExit(f"{name} on {self.backend} at {self.latency * 1000:.0f} ms: "
                                 f"the first run failed (exit {first.returncode})")
        figures: dict[str, list[RunFigures]] = {c.name: [] for c in self.contenders}
        number = 1
        for step in range(1, runs + 1):
            self.step("new", start + step, number, figures)
            number += 1
        last = start + runs
        for _ in range(idle):
            self.step("304", last, number, figures)
            number += 1
        self.api.state.support_etag = False
        for _ in range(idle):
            self.step("same", last, number, figures)
            number += 1
        for _ in range(audits):
            self.step("audit", last, number, figures)
            number += 1
        return figures


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


Results = dict[tuple[str, str, float], list[RunFigures]]
"""(collector, backend, latency) -> its measured runs."""


def report(results: Results) -> None:
    header = ("collector", "backend", "latency", "scenario", "runs", "wall med", "wall p90", "cpu med", "bound med",
              "wall/bound", "api req", "oci req", "vault req", "crit RTs", "api bytes", "gzip body", "wire/gzip",
              "oci bytes", "peak RSS")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for (name, backend, latency), figures in results.items():
        at_zero = results.get((name, backend, 0.0), [])
        base = {(f.scenario, i): f for i, f in enumerate(at_zero)}
        for scenario in SCENARIOS:
            runs = [(i, f) for i, f in enumerate(figures) if f.scenario == scenario]
            if not runs:
                continue
            failed = sum(1 for _, f in runs if f.returncode != 0)
            walls = [f.wall for _, f in runs]
            bounds = [f.depth * latency + base[(scenario, i)].wall for i, f in runs if (scenario, i) in base]
            ratios = [f.wall / bound for (_, f), bound in zip(runs, bounds, strict=False)]
            wire = [f.api_bytes_in + f.api_bytes_out for _, f in runs]
            full = [(f.api_bytes_in + f.api_bytes_out) / f.gzip_body for _, f in runs if f.scenario != "304"]
            row = (
                name, backend, f"{latency * 1000:.0f} ms", scenario + (f" ({failed} failed)" if failed else ""),
                str(len(runs)), f"{statistics.median(walls):.3f} s", f"{p90(walls):.3f} s",
                f"{statistics.median(f.cpu for _, f in runs):.3f} s",
                f"{statistics.median(bounds):.3f} s" if bounds else "-",
                f"{statistics.median(ratios):.2f}" if ratios else "-",
                f"{statistics.mean(f.api_requests for _, f in runs):.1f}",
                f"{statistics.mean(f.oci_requests for _, f in runs):.1f}",
                f"{statistics.mean(f.vault_requests for _, f in runs):.1f}",
                f"{statistics.median(f.depth for _, f in runs):.0f} (max {max(f.depth for _, f in runs)})" if latency else "-",
                f"{statistics.median(wire):,.0f}", f"{statistics.median(f.gzip_body for _, f in runs):,.0f}",
                f"{statistics.median(full):.3f}" if full else "-",
                f"{statistics.median(f.oci_bytes for _, f in runs):,.0f}",
                f"{max(f.rss_kb for _, f in runs) / 1024:.0f} MB",
            )
            print(" | ".join(row), flush=True)


RATIOS = (
    ("wall med", lambda runs: statistics.median(f.wall for f in runs), "{:.3f} s"),
    ("cpu med", lambda runs: statistics.median(f.cpu for f in runs), "{:.3f} s"),
    ("oci bytes med", lambda runs: statistics.median(f.oci_bytes for f in runs), "{:,.0f}"),
    ("api bytes med", lambda runs: statistics.median(f.api_bytes_in + f.api_bytes_out for f in runs), "{:,.0f}"),
    ("peak RSS", lambda runs: max(f.rss_kb for f in runs) / 1024, "{:.0f} MB"),
)


def report_ratios(results: Results) -> None:
    """For each other collector: this one's figure, the other's, and this / other."""
    others = sorted({name for name, _, _ in results} - {THIS})
    if not others:
        return
    print()
    print(" | ".join(("backend", "latency", "scenario", "figure", THIS, *(f"{o} | {THIS} / {o}" for o in others))))
    print(" | ".join("---" for _ in range(5 + 2 * len(others))))
    for (name, backend, latency), figures in results.items():
        if name != THIS:
            continue
        for scenario in SCENARIOS:
            mine = [f for f in figures if f.scenario == scenario]
            if not mine:
                continue
            for label, measure, style in RATIOS:
                cells = [style.format(measure(mine))]
                for other in others:
                    theirs = [f for f in results[(other, backend, latency)] if f.scenario == scenario]
                    if not theirs:  # another collector without an audit tick
                        cells += ["-", "-"]
                        continue
                    ratio = f"{measure(mine) / measure(theirs):.2f}" if measure(theirs) else "-"
                    cells += [style.format(measure(theirs)), ratio]
                print(" | ".join((backend, f"{latency * 1000:.0f} ms", scenario, label, *cells)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs with new events (default 15)")
    parser.add_argument("--idle", type=int, default=5, help="runs per nothing-new scenario (default 5)")
    parser.add_argument("--start", type=int, default=0, help="first snapshot (the fill run)")
    parser.add_argument("--latencies", default="0,50,100", help="milliseconds per request, comma-separated")
    parser.add_argument("--backends", default="local,oci,vault", help="local, oci and/or vault")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=COMMAND",
                        help="another collector command to run side by side (repeatable)")
    parser.add_argument("--compare-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment variable for the other commands (repeatable)")
    parser.add_argument("--audit", action="store_true",
                        help="also measure audit ticks after the runs (as many as --idle)")
    parser.add_argument("--no-freeze", action="store_true",
                        help=f"also run this collector without its gc.freeze() at exit, as {NO_FREEZE!r}")
    args = parser.parse_args()
    others = dict(item.split("=", 1) for item in args.compare)
    if {THIS, NO_FREEZE} & set(others):
        parser.error(f"--compare: the names {THIS!r} and {NO_FREEZE!r} are this collector's")
    if args.no_freeze:
        others[NO_FREEZE] = NO_FREEZE_COMMAND
    other_env = dict(item.split("=", 1) for item in args.compare_env)
    latencies = sorted({float(ms) / 1000 for ms in args.latencies.split(",")} | {0.0})
    # As the deploy steps do (docs/operations.md): with bytecode not writable at run time
    # (PYTHONDONTWRITEBYTECODE, a read-only code directory) every run would compile the package.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "polisen_collector")], check=True)
    bodies = [load_snapshot(path) for path in snapshot_paths()]
    key = ApiKey.generate()
    results: Results = {}
    with tempfile.TemporaryDirectory(prefix="bench-run-") as temp:
        for backend in args.backends.split(","):
            for latency in latencies:
                workdir = Path(temp) / f"{backend}-{latency * 1000:.0f}"
                workdir.mkdir()
                with Bench(backend, latency, bodies, workdir, key, others=others, other_env=other_env) as bench:
                    for name, figures in bench.replay(args.start, args.runs, args.idle,
                                                      args.idle if args.audit else 0).items():
                        results[(name, backend, latency)] = figures
                print(f"# {backend} at {latency * 1000:.0f} ms done", file=sys.stderr, flush=True)
    report(results)
    report_ratios(results)


if __name__ == "__main__":
    main()
