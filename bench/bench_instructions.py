#!/usr/bin/env python3
"""Instructions a run executes (valgrind's callgrind), a figure the machine's load does not move.

On a shared machine a run's CPU time moves with whatever else runs (hyper-threads, caches,
frequency); the number of instructions it executes does not. This runs each collector once per
step under `valgrind --tool=callgrind`, against the fake servers of bench_run.py at 0 ms, and
prints the instructions (Ir) per run, median, and the ratio this / other. Instructions are not
time (a cache miss costs more than an add), so CPU time stays bench_run.py's figure; this one
tells a change of design from noise. Each run takes some 50 times longer under valgrind.

    python3 bench/bench_instructions.py [--runs 3] [--backend oci] [--compare NAME=COMMAND ...]

The steps: a first run fills each archive (not measured), then `--runs` runs of new snapshots
(`new`) and one run of the same snapshot again, answered 304 (`304`). --compare and
--compare-env work as in bench_run.py.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_run import REPO, THIS, Bench, Contender  # which also puts tests/ on the path
from fake_oci import ApiKey
from fake_polisen import load_snapshot, snapshot_paths

COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(contender: Contender) -> int:
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *contender.command],
                            cwd=contender.workdir, env=contender.env, capture_output=True, text=True, check=False)
    found = COLLECTED.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"{contender.name} failed under valgrind (exit {result.returncode}): {result.stderr[-800:]}")
    return int(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs with new events (default 3)")
    parser.add_argument("--start", type=int, default=0, help="first snapshot (the fill run)")
    parser.add_argument("--backend", default="oci", choices=("local", "oci", "vault"))
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=COMMAND")
    parser.add_argument("--compare-env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    others = dict(item.split("=", 1) for item in args.compare)
    other_env = dict(item.split("=", 1) for item in args.compare_env)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "polisen_collector")], check=True)
    bodies = [load_snapshot(path) for path in snapshot_paths()]
    figures: dict[tuple[str, str], list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as temp, \
            Bench(args.backend, 0.0, bodies, Path(temp), ApiKey.generate(), others=others, other_env=other_env) as bench:
        bench.api.serve(args.start)
        for contender in bench.contenders:
            subprocess.run(contender.command, cwd=contender.workdir, env=contender.env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        steps = [("new", args.start + step) for step in range(1, args.runs + 1)] + [("304", args.start + args.runs)]
        for scenario, index in steps:
            bench.api.serve(index)
            for contender in bench.contenders:
                figures.setdefault((contender.name, scenario), []).append(instructions(contender))
            print(f"# {scenario} {index} done", file=sys.stderr, flush=True)
    names = [THIS, *others]
    print(" | ".join(("backend", "scenario", *(f"{name} (M instructions)" for name in names),
                      *(f"{THIS} / {name}" for name in others))))
    print(" | ".join("---" for _ in range(2 + 2 * len(names) - 1)))
    for scenario in ("new", "304"):
        medians = {name: statistics.median(figures[(name, scenario)]) for name in names}
        print(" | ".join((args.backend, scenario, *(f"{medians[name] / 1e6:,.0f}" for name in names),
                          *(f"{medians[THIS] / medians[name]:.2f}" for name in others))))


if __name__ == "__main__":
    main()
