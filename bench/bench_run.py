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
- peak RSS of the collector process (ru_maxrss from wait4).

Scenarios: `new` runs each serve the next snapshot (a few new or edited events each);
`304` runs serve the same snapshot again (the API answers 304 Not Modified); `same` runs
serve it again from an API without ETag (a full 200 with nothing new).

    python3 bench/bench_run.py [--runs 15] [--idle 5] [--latencies 0,50,100] [--backends local,oci,vault]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fake_oci import ApiKey, FakeOCIServer, write_oci_config  # noqa: E402
from fake_polisen import FakePolisenServer, load_snapshot, snapshot_paths  # noqa: E402

VAULT = "ocid1.vault.oc1.eu-stockholm-1.benchvault"
NAMESPACE = "testnamespace"


@dataclass
class RunFigures:
    scenario: str
    index: int
    wall: float
    returncode: int
    rss_kb: int
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


class Bench:
    """One backend at one latency: fresh servers, a fresh workspace, runs measured one by one."""

    def __init__(self, backend: str, latency: float, bodies: list[bytes], workdir: Path, key: ApiKey) -> None:
        self.backend, self.latency, self.bodies, self.workdir = backend, latency, bodies, workdir
        self.api = FakePolisenServer(bodies)
        self.api.state.latency = latency
        self.api_bytes = count_bytes(self.api.httpd)
        self.oci = FakeOCIServer(namespace=NAMESPACE)
        self.oci.state.latency = latency
        self.oci_bytes = count_bytes(self.oci.httpd)
        self.oci.trust(key)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("POLISEN_", "API_", "OCI_", "STORAGE", "DATA_DIR", "LOG_", "METRICS_", "HEALTH"))}
        self.env.update({
            "POLISEN_API_URL": self.api.url, "DATA_DIR": str(workdir / "data"), "LOG_DIR": str(workdir / "logs"),
            "METRICS_DIR": str(workdir / "metrics"), "API_BACKOFF_FACTOR": "0.01",
            "API_CONTACT_EMAIL": "bench@example.invalid", "API_RATE_LIMIT": "off",
        })
        if backend in ("oci", "vault"):
            self.env.update({"STORAGE": "oci", "OCI_ENDPOINT": self.oci.url, "OCI_NAMESPACE": NAMESPACE,
                             "OCI_CONFIG_FILE": str(write_oci_config(workdir / "oci", key))})
        if backend == "vault":
            reader = ApiKey.generate(user="ocid1.user.oc1..vaultreader")
            self.oci.trust(reader)
            secrets = {"user-ocid": key.user, "tenancy-ocid": key.tenancy, "fingerprint": key.fingerprint,
                       "private-key": key.pem, "region": "eu-stockholm-1"}
            for suffix, value in secrets.items():
                self.oci.add_secret(VAULT, f"polisen-collector-{suffix}", value)
            self.env.update({"OCI_AUTH": "vault", "OCI_VAULT_ID": VAULT, "OCI_SECRETS_ENDPOINT": self.oci.url,
                             "OCI_CONFIG_FILE": str(write_oci_config(workdir / "vault-reader", reader))})

    def __enter__(self) -> Bench:
        self.api.start()
        self.oci.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.stop()
        self.oci.__exit__()

    def run(self, scenario: str, index: int) -> RunFigures:
        self.api.serve(index)
        api_mark, oci_mark = len(self.api.requests), len(self.oci.requests)
        api_in, api_out, oci_in, oci_out = (self.api_bytes.read, self.api_bytes.written,
                                            self.oci_bytes.read, self.oci_bytes.written)
        command = [sys.executable, str(REPO / "collect_events.py"), "--env-file", str(self.workdir / "none.env")]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=self.workdir, env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        api_requests = self.api.requests[api_mark:]
        oci_requests = self.oci.requests[oci_mark:]
        offset = time.time() - time.monotonic()
        intervals = [(r.time, r.end) for r in api_requests]
        intervals += [(r.time + offset, r.end + offset) for r in oci_requests]
        vault = sum(1 for r in oci_requests if r.path.startswith("/20190301/"))
        body = self.bodies[index]
        return RunFigures(
            scenario=scenario, index=index, wall=wall, returncode=process.returncode, rss_kb=usage.ru_maxrss,
            api_requests=len(api_requests), oci_requests=len(oci_requests) - vault, vault_requests=vault,
            depth=critical_depth(intervals), api_bytes_in=self.api_bytes.read - api_in,
            api_bytes_out=self.api_bytes.written - api_out,
            oci_bytes=self.oci_bytes.read - oci_in + self.oci_bytes.written - oci_out,
            gzip_body=len(gzip.compress(body, compresslevel=6)),
        )

    def replay(self, start: int, runs: int, idle: int) -> list[RunFigures]:
        """A first run to fill the archive (not measured), then `runs` new snapshots, then idle runs."""
        first = self.run("fill", start)
        if first.returncode != 0:
            raise SystemExit(f"{self.backend} at {self.latency * 1000:.0f} ms: the first run failed (exit {first.returncode})")
        figures = [self.run("new", start + step) for step in range(1, runs + 1)]
        last = start + runs
        figures += [self.run("304", last) for _ in range(idle)]
        self.api.state.support_etag = False
        figures += [self.run("same", last) for _ in range(idle)]
        return figures


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def report(results: dict[tuple[str, float], list[RunFigures]]) -> None:
    header = ("backend", "latency", "scenario", "runs", "wall med", "wall p90", "bound med", "wall/bound",
              "api req", "oci req", "vault req", "crit RTs", "api bytes", "gzip body", "wire/gzip", "oci bytes", "peak RSS")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for (backend, latency), figures in results.items():
        base = {(f.scenario, i): f for i, f in enumerate(results[(backend, 0.0)])} if (backend, 0.0) in results else {}
        for scenario in ("new", "304", "same"):
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
                backend, f"{latency * 1000:.0f} ms", scenario + (f" ({failed} failed)" if failed else ""), str(len(runs)),
                f"{statistics.median(walls):.3f} s", f"{p90(walls):.3f} s",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs with new events (default 15)")
    parser.add_argument("--idle", type=int, default=5, help="runs per nothing-new scenario (default 5)")
    parser.add_argument("--start", type=int, default=0, help="first snapshot (the fill run)")
    parser.add_argument("--latencies", default="0,50,100", help="milliseconds per request, comma-separated")
    parser.add_argument("--backends", default="local,oci,vault", help="local, oci and/or vault")
    args = parser.parse_args()
    latencies = sorted({float(ms) / 1000 for ms in args.latencies.split(",")} | {0.0})
    bodies = [load_snapshot(path) for path in snapshot_paths()]
    key = ApiKey.generate()
    results: dict[tuple[str, float], list[RunFigures]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-run-") as temp:
        for backend in args.backends.split(","):
            for latency in latencies:
                workdir = Path(temp) / f"{backend}-{latency * 1000:.0f}"
                workdir.mkdir()
                with Bench(backend, latency, bodies, workdir, key) as bench:
                    results[(backend, latency)] = bench.replay(args.start, args.runs, args.idle)
                print(f"# {backend} at {latency * 1000:.0f} ms done", file=sys.stderr, flush=True)
    report(results)


if __name__ == "__main__":
    main()
