#!/usr/bin/env python3
"""Time the Datasette site (docs/site.md) at four years of events: the pages a visitor opens.

    python3 bench/bench_site.py [--years 4] [--repeat 5] [--archive DATA_DIR]

Without --archive the database is written directly by the export's own SQLite writer
(polisen_collector.export.write_sqlite: the same tables, view, full-text index and indexes) from
generated rows: 103 events a day (4 years: ~150,000), 2% edited once, every one with page text of
the real pages' size (4 to 12 sentences) drawn from the recorded summaries of its type, places from
SCB's municipalities. With --archive DIR (an archive such as bench/synthetic_archive.py writes) it runs
`export_events.py -o events.db` on it instead. Then Datasette is started with README's "Browse it"
command on a free port, each page is fetched once cold and `--repeat` times warm, and the first
and best times are printed. The database is left in bench/out/site/.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from polisen_collector.export import COLUMNS, write_sqlite

EVENTS_PER_DAY = 103
EDIT_SHARE = 0.02
STOCKHOLM = ZoneInfo("Europe/Stockholm")
TYPES = {"Trafikolycka": 14, "Brand": 9, "Misshandel": 8, "Stöld": 7, "Rattfylleri": 6, "Sammanfattning natt": 6,
         "Övrigt": 6, "Inbrott": 5, "Olaga hot": 4, "Skadegörelse": 4, "Narkotikabrott": 4, "Trafikkontroll": 4,
         "Rån": 3, "Bedrägeri": 3, "Brand automatlarm": 2, "Försvunnen person": 2, "Skottlossning": 1,
         "Arbetsplatsolycka": 1, "Anträffad död": 1, "Djur": 1}
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


def sentences() -> dict[str, list[str]]:
    """The recorded answers' summaries by event type (and all of them under ""): the generated texts are
    drawn from those of their type, so that a search finds about the share of events it finds in real data."""
    found: dict[str, list[str]] = {"": []}
    for path in sorted((REPO / "tests" / "data" / "polisen-snapshots").glob("*.json.gz")):
        body = gzip.decompress(path.read_bytes())
        for event in json.loads(body) if body.strip() else []:
            found.setdefault(event["type"], []).append(event["summary"])
            found[""].append(event["summary"])
    return found


def places() -> list[dict[str, str]]:
    with (REPO / "polisen_collector" / "data" / "swedish_admin_areas.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def text(rng: random.Random, pool: list[str], low: int, high: int) -> str:
    return " ".join(rng.choices(pool, k=rng.randint(low, high)))


def generated(years: float, seed: int = 2026):
    """(latest row, [(content hash, row) of each version]) of each generated event, oldest first."""
    rng = random.Random(seed)
    pools, areas = sentences(), places()
    types, weights = list(TYPES), list(TYPES.values())
    first_day = date(2026, 6, 5) - timedelta(days=int(365 * years))
    event_id = 100_000
    for offset in range(int(365 * years)):
        day = first_day + timedelta(days=offset)
        for _ in range(EVENTS_PER_DAY):
            event_id += 1
            when = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60), rng.randrange(60),
                            tzinfo=STOCKHOLM)
            area, kind = rng.choice(areas), rng.choices(types, weights)[0]
            pool = pools.get(kind) or pools[""]
            county_level = rng.random() < 0.2
            place = area["county_name"] if county_level else area["municipality_name"]
            collected = when.astimezone(UTC) + timedelta(minutes=rng.randint(5, 40))
            row = {
                "id": event_id, "datetime": when, "local_date": when.date(),
                "name": f"{when.day} {when:%B} {when:%H.%M}, {kind}, {place}", "summary": text(rng, pool, 1, 1),
                "url": f"/aktuellt/handelser/{day:%Y/%m/%d}/{event_id}/",
                "page_url": f"https://polisen.se/aktuellt/handelser/{day:%Y/%m/%d}/{event_id}/", "type": kind,
                "location_name": place, "latitude": 55 + rng.random() * 13, "longitude": 11 + rng.random() * 13,
                "first_collected": collected, "last_collected": collected, "versions": 1,
                "page_title": f"{when.day} {when:%B} {when:%H.%M}, {kind}, {place}",
                "page_preamble": text(rng, pool, 1, 2), "page_body": text(rng, pool, 4, 12),
                "page_author": "Polisen", "page_published": when, "page_fetched": collected,
                "location_level": "county" if county_level else "municipality",
                "municipality_code": None if county_level else area["municipality_code"],
                "municipality_name": None if county_level else area["municipality_name"],
                "county_code": area["county_code"], "county_name": area["county_name"],
            }
            versions = [(f"{event_id:x}a", row)]
            if rng.random() < EDIT_SHARE:
                edited = {**row, "summary": text(rng, pool, 1, 1), "versions": 2,
                          "first_collected": collected + timedelta(hours=2), "last_collected": collected + timedelta(hours=3)}
                versions = [(f"{event_id:x}a", {**row, "versions": 2}), (f"{event_id:x}b", edited)]
                row = {**edited, "first_collected": collected}
            assert list(row) == list(COLUMNS)
            yield row, versions


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
    parser.add_argument("--archive", type=Path, help="export this archive (DATA_DIR) instead of generating rows")
    args = parser.parse_args()
    folder = REPO / "bench" / "out" / "site"
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "events.db"
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    if args.archive:
        subprocess.run([sys.executable, str(REPO / "export_events.py"), "--env-file", "/dev/null", "--data-dir",
                        str(args.archive), "-o", str(database)], check=True)
    else:
        write_sqlite(generated(args.years), str(database))
    import sqlite3

    with sqlite3.connect(database) as connection:
        events, versions = connection.execute("SELECT count(*), sum(versions > 1) FROM events").fetchone()
        [edited] = connection.execute("SELECT id FROM events WHERE versions > 1 LIMIT 1").fetchone()
    print(f"database: {events:,} events, {versions:,} edited, {database.stat().st_size / 1e6:.0f} MB, "
          f"built in {time.perf_counter() - started:.1f} s")

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
            print(f"{label:32} {first:7.3f}s {best:11.3f}s")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
