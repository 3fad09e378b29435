#!/usr/bin/env python3
"""Time the Datasette site (docs/site.md) at four years of events: the pages a visitor opens.

    python3 bench/bench_site.py [--years 4] [--repeat 5] [--archive DATA_DIR] [--keep-database]

The database is the export's (`export_events.py -o events.db`) of the synthetic archive of
bench/synthetic_archive.py (103 events a day, 4 years: ~150,000, 2% edited, every one with a page
of the real site's size whose text is a recorded page's of its type), made once in
bench/out/archives/ and kept, as bench/bench_export.py does; with --archive DIR, of that archive
instead (a real one, say). Then Datasette is started with README's "Browse it" command on a free
port, each page is fetched once cold and `--repeat` times warm, and the first and best times are
printed. The database is left in bench/out/site/.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote_plus

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_archive import prepared

PAGES = [  # what a visitor opens: (label, path)
    ("events page, county facet", "/events/event_list?_facet=county_name"),
    ("events page, default facets", "/events/event_list"),
    ("one county, its facets", "/events/event_list?county_name=" + quote_plus("Skåne län")),
    ("search misshandel*", "/events/event_list?_search=misshandel%2A"),
    ("search brand AND stockholm", "/events/event_list?_search=brand+AND+stockholm"),
    ("full table, county facet", "/events/events?_facet=county_name"),
    ("an edited event's page", "/events/events/{edited}"),
    ("latest edits", "/events/latest_edits"),
    ("per municipality per week", "/events/events_per_municipality_per_week?county="),
]


def serve_command() -> list[str]:
    """README's "Browse it" Datasette command, its arguments after the database."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Browse it", 1)[1]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)[:1]
    return shlex.split(block.splitlines()[1])[2:]


def fetch(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        answer.read()
        assert answer.status == 200, url
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--archive", type=Path, metavar="DATA_DIR",
                        help="export this archive (default: the synthetic archive of --years, made once and kept)")
    parser.add_argument("--keep-database", action="store_true",
                        help="serve the database an earlier run left in bench/out/site/, not a new export")
    args = parser.parse_args()
    folder = REPO / "bench" / "out" / "site"
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "events.db"
    started = time.perf_counter()
    if not (args.keep_database and database.exists()):
        archive = args.archive or prepared(REPO / "bench" / "out" / "archives" / f"archive-{args.years:g}y",
                                           args.years).root
        print(f"archive {archive} ready in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "export_events.py"), "--env-file", os.devnull, "--data-dir",
                        str(archive), "-o", str(database)], check=True)
    import sqlite3

    with sqlite3.connect(database) as connection:
        events, versions = connection.execute("SELECT count(*), sum(versions > 1) FROM events").fetchone()
        [edited] = connection.execute("SELECT id FROM events WHERE versions > 1 LIMIT 1").fetchone()
    print(f"database: {events:,} events, {versions:,} edited, {database.stat().st_size / 1e6:.0f} MB, "
          f"ready in {time.perf_counter() - started:.1f} s; load average "
          + " ".join(Path("/proc/loadavg").read_text().split()[:3]), flush=True)

    (folder / "deploy").unlink(missing_ok=True)
    (folder / "deploy").symlink_to(REPO / "deploy")  # README's command names deploy/datasette/... from the checkout
    process = subprocess.Popen([sys.executable, "-m", "datasette", database.name, *serve_command(),
                                "--host", "127.0.0.1", "--port", "0"], cwd=folder, stderr=subprocess.PIPE, text=True,
                               stdout=subprocess.DEVNULL)
    try:
        for line in process.stderr:
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                base = found.group(1)
                break
        else:
            raise SystemExit("datasette did not start")
        print(f"{'page':32} {'first':>8} {'best of ' + str(args.repeat):>12}")
        for label, path in PAGES:
            url = base + path.format(edited=edited)
            first = fetch(url)
            best = min(fetch(url) for _ in range(args.repeat))
            print(f"{label:32} {first:7.3f}s {best:11.3f}s", flush=True)
        print("load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
