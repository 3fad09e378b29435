#!/usr/bin/env python3
"""A synthetic archive of any length, laid out as the collector leaves it: for benchmarks.

    python3 bench/synthetic_archive.py DIR [--years 4] [--seed 2026]

writes DIR/events/... and DIR/pages/... as years of collection would: days older than
COMPACT_AFTER_DAYS compacted (one object and its sidecar a day), the last days as per-run
objects (48 runs a day), every event with a stored page version of realistic size (the real
site's ~47 KB of chrome around a block whose text is a recorded page's of an event of the same
type, ~8 KB gzip) and its parse beside it, 2% of the events edited once by a later run, each
edit with a second page version. 103 events a day (4 years: about 150,000), of the feed's types
about as often as the feed has them, a fifth placed in a county only. Its figures go beside it,
in DIR.json: a later call with the same --years finds the archive there and keeps it.

From another script (bench/ is on sys.path when a script there runs):

    from synthetic_archive import add_run, prepared
    figures = prepared(Path("bench/out/archives/archive-4y"), years=4)
    add_run(figures.root, figures)     # one more run: new events, their pages, an edit

Objects are written without fsync (this is set-up, not what is timed). Names, encodings and
parses come from the collector's own modules, so the archive reads exactly like a real one;
`check_pages` parses a sample of the generated pages and compares them with their stored parses.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import io
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from polisen_collector.archive.events import encode_jsonl, validate_event
from polisen_collector.archive.layout import (
    Version,
    collected_times_name,
    compacted_object_name,
    encode_collected_times,
    encode_compacted,
    run_object_name,
)
from polisen_collector.pages.parse import SWEDISH_MONTHS, ParsedPage, content_fingerprint, parse_page
from polisen_collector.pages.store import (
    PageVersion,
    encode_parsed,
    page_object_name,
    parsed_object_name,
    read_page_html,
)

EVENTS_PER_DAY = 103
RUNS_PER_DAY = 48
EDIT_SHARE = 0.02
COUNTY_SHARE = 0.2
"""Events placed in a county only (the feed's location and title name the county)."""
COMPACT_AFTER_DAYS = 2
FIRST_ID = 400_000
STOCKHOLM = ZoneInfo("Europe/Stockholm")
MONTH_NAMES = {number: name for name, number in SWEDISH_MONTHS.items()}
TYPES = {"Trafikolycka": 14, "Brand": 9, "Misshandel": 8, "Stöld": 7, "Rattfylleri": 6, "Sammanfattning natt": 6,
         "Övrigt": 6, "Inbrott": 5, "Olaga hot": 4, "Skadegörelse": 4, "Narkotikabrott": 4, "Trafikkontroll": 4,
         "Rån": 3, "Bedrägeri": 3, "Brand automatlarm": 2, "Försvunnen person": 2, "Skottlossning": 1,
         "Arbetsplatsolycka": 1, "Anträffad död": 1, "Djur": 1}
"""Event types and their weights, about as often as the feed has them."""
AUTHORS = ["Polisen region Stockholm", "Polisen region Syd", "Polisen region Väst", "Polisen region Mitt",
           "Polisen region Bergslagen", "Polisen region Öst", "Polisen region Nord", "Presstalesperson Öst"]
TEMPLATE_PAGE = REPO / "tests" / "data" / "polisen-pages" / "634696.html.gz"
SNAPSHOTS = REPO / "tests" / "data" / "polisen-snapshots"
TEXT_SAMPLE = 600  # recorded pages whose bodies and preambles the generated pages reuse


@dataclass
class ArchiveFigures:
    """What generate() wrote, and where the next add_run() goes on; kept beside the archive by prepared()."""

    root: Path
    first_day: date
    last_day: date
    years: float = 4
    seed: int = 2026
    events: int = 0
    edited: int = 0
    page_versions: int = 0
    objects: int = 0
    bytes: int = 0
    next_id: int = FIRST_ID
    runs_added: int = 0
    record: Path | None = None
    """Where add_run() saves these figures (prepared()'s FOLDER.json), None for none."""

    def __str__(self) -> str:
        runs = f", {self.runs_added} runs added" if self.runs_added else ""
        return (f"{self.events} events ({self.edited} edited) and {self.page_versions} page versions, "
                f"{self.first_day}..{self.last_day}, {self.objects} objects, {self.bytes / 1e9:.2f} GB{runs}")

    def save(self) -> None:
        if self.record is not None:
            document = {key: str(value) if isinstance(value, Path | date) else value
                        for key, value in asdict(self).items() if key != "record"}
            self.record.write_text(json.dumps(document, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, record: Path) -> ArchiveFigures:
        document = json.loads(record.read_text(encoding="utf-8"))
        return cls(**{**document, "root": Path(document["root"]), "first_day": date.fromisoformat(document["first_day"]),
                      "last_day": date.fromisoformat(document["last_day"]), "record": record})


@cache
def _chrome() -> tuple[bytes, bytes]:
    """The real page around its event block, each half compressed once: a page is the two halves
    as gzip members around its own block (gzip readers read concatenated members as one stream)."""
    page = gzip.decompress(TEMPLATE_PAGE.read_bytes()).decode("utf-8")
    start = page.index('<div class="event-page editorial-content">')
    end = page.index("</main>", start)
    return gzip.compress(page[:start].encode(), mtime=0), gzip.compress(page[end:].encode(), mtime=0)


@cache
def _texts() -> dict[str, list[tuple[str, str]]]:
    """(preamble, body) of a sample of the recorded pages by their event's type (all of them under ""), as the
    parser reads them: an event gets the text of a real event of its type, so that a search finds about the
    share of events it finds in the real feed."""
    types = {event["id"]: event["type"] for path in sorted(SNAPSHOTS.glob("*.json.gz"))
             for body in [gzip.decompress(path.read_bytes())] if body.strip() for event in json.loads(body)}
    paths = sorted(TEMPLATE_PAGE.parent.glob("*.html.gz"))
    found: dict[str, list[tuple[str, str]]] = {"": []}
    for path in paths[::max(1, len(paths) // TEXT_SAMPLE)]:
        page = parse_page(gzip.decompress(path.read_bytes()))
        if page.preamble and page.body:
            found.setdefault(types.get(int(path.name.split(".")[0]), ""), []).append((page.preamble, page.body))
            found[""].append((page.preamble, page.body))
    return found


def _text_of(kind: str, rng: random.Random) -> tuple[str, str]:
    """A recorded (preamble, body) of an event of this type, of any type when the sample has too few."""
    texts = _texts()
    return rng.choice(texts[kind] if len(texts.get(kind, ())) >= 3 else texts[""])


@cache
def _places() -> list[tuple[str, str]]:
    """(municipality, county) of every SCB municipality: the feed names the county, the name ends with the place."""
    text = (resources.files("polisen_collector") / "data" / "swedish_admin_areas.csv").read_text(encoding="utf-8")
    return [(row["municipality_name"], row["county_name"]) for row in csv.DictReader(io.StringIO(text))]


def _block(page: ParsedPage) -> str:
    """The event block as the site writes it, so that parse_page reads exactly `page` back."""
    published = datetime.fromisoformat(page.published)  # type: ignore[arg-type]
    paragraphs = "\n".join("<p>" + "<br />".join(html.escape(line) for line in paragraph.split("\n")) + "</p>"
                           for paragraph in (page.body or "").split("\n\n") if paragraph)
    words = f"{published.day} {MONTH_NAMES[published.month]} {published:%H.%M}"
    return (f'<div class="event-page editorial-content">\n<h1>{html.escape(page.title or "")}</h1>\n'
            f'<p class="preamble">{html.escape(page.preamble or "")}</p>\n'
            f'<div class="event-content"><div class="text-body editorial-html">\n{paragraphs}\n</div>\n'
            f'<div class="meta-data-container"><div class="published-container"><span>Text av</span><br />'
            f'<span>{html.escape(page.author or "")}</span></div>\n'
            f'<div class="published-container">Publicerad<br /><time datetime="{page.published}">{words}</time></div>'
            f"</div></div></div>\n")


def page_bytes(page: ParsedPage) -> bytes:
    """A page of the real site's size whose parse is `page`, gzip-compressed as stored."""
    head, tail = _chrome()
    return head + gzip.compress(_block(page).encode(), mtime=0) + tail


def _event(event_id: int, when: datetime, rng: random.Random) -> dict:
    municipality, county = rng.choice(_places())
    place = county if rng.random() < COUNTY_SHARE else municipality  # the title ends with the place
    kind = rng.choices(list(TYPES), list(TYPES.values()))[0]
    local = when.astimezone(STOCKHOLM)
    offset = local.strftime("%z")
    month = MONTH_NAMES[local.month]
    return {
        "id": event_id,
        "datetime": f"{local:%Y-%m-%d} {local.hour}:{local:%M:%S} {offset[:3]}:{offset[3:]}",
        "name": f"{local.day} {month} {local:%H.%M}, {kind}, {place}",
        "summary": _shortened(_text_of(kind, rng)[0], 110),
        "url": f"/aktuellt/handelser/{local.year}/{month}/{local.day}/{event_id}/",
        "type": kind,
        "location": {"name": county, "gps": f"{rng.uniform(55.3, 68.5):.6f},{rng.uniform(11.2, 23.9):.6f}"},
    }


def _shortened(text: str, most: int) -> str:
    """The text cut at a word to at most `most` characters (the feed's summary is the page's preamble, short)."""
    return text if len(text) <= most else text[:most].rsplit(None, 1)[0]


def _page_of(event: dict, published: datetime, rng: random.Random, edited: bool = False) -> ParsedPage:
    body = _text_of(event["type"], rng)[1]
    return ParsedPage(title=event["name"], preamble=event["summary"] + (" Uppdaterad." if edited else ""),
                      body=body + ("\n\nUppdatering: polisen har gripit en person." if edited else ""),
                      author=rng.choice(AUTHORS), published=published.astimezone(STOCKHOLM).isoformat(timespec="seconds"))


def run_id(moment: datetime, tag: str) -> str:
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{moment.microsecond // 1000:03d}Z-{tag}"


class _Writer:
    def __init__(self, root: Path, figures: ArchiveFigures) -> None:
        self.root = root
        self.figures = figures

    def put(self, name: str, data: bytes) -> None:
        path = self.root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.figures.objects += 1
        self.figures.bytes += len(data)

    def page(self, day: str, event_id: int, fetched: datetime, page: ParsedPage) -> None:
        fingerprint = content_fingerprint(page)
        name = page_object_name(day, event_id, fetched, fingerprint)
        self.put(name, page_bytes(page))
        version = PageVersion(name, event_id, fetched.replace(microsecond=0), fingerprint[:16])
        self.put(parsed_object_name(name), encode_parsed(version, page))
        self.figures.page_versions += 1


def _day_events(day: date, figures: ArchiveFigures, rng: random.Random, count: int,
                runs: int = RUNS_PER_DAY) -> list[tuple[int, dict, datetime]]:
    """(run index, event, its collection time) of a day's events, with their edits in later runs."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM)
    found = []
    for _ in range(count):
        figures.next_id += 1
        minute = rng.randrange(24 * 60 - 45)
        when = midnight + timedelta(minutes=minute, seconds=rng.randrange(60))
        run = min(runs - 1, minute // 30 + 1)
        collected = midnight + timedelta(minutes=30 * run, seconds=7)
        event = _event(figures.next_id, when, rng)
        found.append((run, event, collected))
        figures.events += 1
        if rng.random() < EDIT_SHARE and run < runs - 1:
            later = rng.randrange(run + 1, runs)
            edit = {**event, "summary": event["summary"] + " Uppdaterad."}
            found.append((later, edit, midnight + timedelta(minutes=30 * later, seconds=7)))
            figures.edited += 1
    return found


def _write_day(writer: _Writer, day: date, rng: random.Random, compacted: bool, count: int = EVENTS_PER_DAY) -> None:
    day_text = day.isoformat()
    found = _day_events(day, writer.figures, rng, count)
    versions_by_run: dict[int, list[tuple[dict, datetime]]] = {}
    for run, event, collected in found:
        versions_by_run.setdefault(run, []).append((event, collected))
    if compacted:
        versions = [Version(validate_event(event), rid, rid)
                    for run in sorted(versions_by_run)
                    for event, collected in versions_by_run[run]
                    for rid in [run_id(collected.astimezone(UTC), f"bench{run % 10}")]]
        compacted, collected_times = encode_compacted(versions), encode_collected_times(versions)
        target = compacted_object_name(day, compacted, collected_times)
        writer.put(collected_times_name(target), collected_times)
        writer.put(target, compacted)
    else:
        for run, events in sorted(versions_by_run.items()):
            rid = run_id(events[0][1].astimezone(UTC), f"bench{run % 10}")
            writer.put(run_object_name(day_text, rid), encode_jsonl([event for event, _ in events]))
    seen: set[int] = set()
    for _run, event, collected in found:
        edited = event["id"] in seen
        seen.add(event["id"])
        fetched = collected.astimezone(UTC) + timedelta(minutes=1)
        writer.page(day_text, event["id"], fetched, _page_of(event, collected - timedelta(minutes=5), rng, edited))


def generate(root: Path, years: float = 4, *, seed: int = 2026, today: date | None = None,
             events_per_day: int = EVENTS_PER_DAY) -> ArchiveFigures:
    """Write an archive of `years` ending yesterday (or the day before `today`) into the empty folder `root`."""
    today = today or date.today()
    days = round(365 * years)
    first = today - timedelta(days=days)
    figures = ArchiveFigures(root, first, today - timedelta(days=1), years=years, seed=seed)
    writer = _Writer(root, figures)
    rng = random.Random(seed)
    for offset in range(days):
        day = first + timedelta(days=offset)
        _write_day(writer, day, rng, compacted=(today - day).days > COMPACT_AFTER_DAYS, count=events_per_day)
    return figures


def add_run(root: Path, figures: ArchiveFigures, new_events: int = 2) -> dict[str, int]:
    """One more collection run, as the collector would store it: `new_events` events dated today
    in a per-run object with their pages, an edit of an older event (in its own, compacted, day)
    with a new page version, and a corrected page of an event of the day before (its re-check)."""
    rng = random.Random(figures.seed * 1000 + figures.runs_added)
    figures.runs_added += 1
    day = figures.last_day + timedelta(days=1)
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=STOCKHOLM) + timedelta(minutes=30 * figures.runs_added)
    collected = moment.astimezone(UTC)
    rid = run_id(collected, f"added{figures.runs_added}")
    writer = _Writer(root, figures)
    events = []
    for _ in range(new_events):
        figures.next_id += 1
        event = _event(figures.next_id, moment - timedelta(minutes=rng.randrange(1, 29)), rng)
        events.append(event)
        figures.events += 1
    writer.put(run_object_name(day.isoformat(), rid), encode_jsonl(events))
    for event in events:
        writer.page(day.isoformat(), event["id"], collected + timedelta(minutes=1), _page_of(event, moment, rng))
    compacted_days = (figures.last_day - figures.first_day).days - COMPACT_AFTER_DAYS
    old_day = figures.last_day - timedelta(days=COMPACT_AFTER_DAYS + rng.randrange(compacted_days))
    old = json.loads(_first_line(root / "events" / f"{old_day:%Y/%m/%d}"))
    edit = {**old, "summary": old["summary"] + " Uppdaterad igen."}
    writer.put(run_object_name(old_day.isoformat(), rid), encode_jsonl([edit]))
    writer.page(old_day.isoformat(), edit["id"], collected + timedelta(minutes=2), _page_of(edit, moment, rng, True))
    yesterday = json.loads(_first_line(root / "events" / f"{figures.last_day:%Y/%m/%d}"))
    writer.page(figures.last_day.isoformat(), yesterday["id"], collected + timedelta(minutes=3),
                _page_of(yesterday, moment, rng, True))
    figures.edited += 1
    figures.save()
    return {"new_events": new_events, "edits": 1, "page_versions": new_events + 2}


def prepared(folder: Path, years: float = 4, *, seed: int = 2026) -> ArchiveFigures:
    """The archive of `years` in `folder`: the one there when its figures beside it (FOLDER.json) say it
    was made so and finished, else a new one (minutes at 4 years: kept for the next bench). A folder
    that holds anything else is refused, never removed."""
    folder = folder.resolve()
    record = folder.with_name(folder.name + ".json")
    if record.exists():
        figures = ArchiveFigures.load(record)
        if (figures.years, figures.seed, figures.root) == (years, seed, folder) and folder.is_dir():
            return figures
        record.unlink()
        shutil.rmtree(folder, ignore_errors=True)  # ours: made by an earlier prepared()
    elif folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty and not a synthetic archive: give another folder")
    figures = generate(folder, years, seed=seed)
    check_pages(folder)
    figures.record = record
    figures.save()
    return figures


def _first_line(folder: Path) -> bytes:
    """The first event of the first object in a day's folder."""
    return min(folder.glob("*.jsonl")).read_bytes().split(b"\n", 1)[0]


def check_pages(root: Path, sample: int = 20) -> None:
    """Parse `sample` generated pages and compare them with their stored parses; raise if one differs."""
    from polisen_collector.pages.store import page_versions
    from polisen_collector.storage.local import LocalStorage

    storage = LocalStorage(root)
    names = sorted(str(path.relative_to(root).as_posix()) for path in (root / "pages").rglob("*"))
    versions = [v for found in page_versions(names).values() for v in found]
    for version in random.Random(1).sample(versions, min(sample, len(versions))):
        stored = json.loads(storage.get(version.parsed).data)  # type: ignore[union-attr]
        parsed = parse_page(read_page_html(storage, version.name))  # type: ignore[arg-type]
        got = {key: getattr(parsed, key) for key in ("title", "preamble", "body", "author", "published", "reason")}
        if got != {key: stored[key] for key in got}:
            raise AssertionError(f"{version.name} parses as {got}, stored as {stored}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a new or empty folder: the archive (DATA_DIR); a synthetic "
                                                  "archive made there before with the same --years is kept")
    parser.add_argument("--years", type=float, default=4)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    started = time.perf_counter()
    figures = prepared(args.folder, args.years, seed=args.seed)
    print(f"{figures} (ready in {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
