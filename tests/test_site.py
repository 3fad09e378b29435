"""The Datasette site (deploy/datasette, docs/site.md) over an export of the recorded snapshots and
their pages, served by the real Datasette as README's "Browse it" starts it, in headless Chromium.

Screenshots of each page go to build/screenshots/ for people to look at; nothing compares pixels.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, unquote_plus, urlsplit

import pytest
from archive_truth import versions_in_snapshots
from conftest import REPO
from datasette_server import serving
from fake_polisen import FakePolisenServer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = REPO / "build" / "screenshots"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1400"]

METADATA = REPO / "deploy" / "datasette" / "metadata.yml"


def browse_it_commands() -> list[str]:
    """The two commands of README's "Browse it": the export, then Datasette."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Browse it", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    return commands


def sqlite_rows(path: Path, query: str, *params) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def site_db(replayed_archive, tmp_path_factory, snapshot_bodies) -> Path:
    """The recorded archive with the pages of every edited event and of every tenth other one (the
    site answers 404 for the rest, which costs no parse), exported as README says."""
    workdir = tmp_path_factory.mktemp("site")
    truth = versions_in_snapshots(snapshot_bodies)
    with FakePolisenServer(snapshot_bodies) as server:
        server.state.page_status.update({event_id: 404 for index, (event_id, versions) in enumerate(sorted(truth.items()))
                                         if len(versions) == 1 and index % 10})
        collector = replayed_archive.collector.copy_archive(workdir)
        collector.env.update({"POLISEN_API_URL": server.url, "PAGES_PER_RUN": "1000", "PAGE_INTERVAL_SECONDS": "0"})
        server.serve(len(snapshot_bodies) - 1)
        for _ in range(3):  # at most 1000 page requests a run: the next run takes the rest
            result = collector.run()
            assert result.returncode == 0, result.log[-500:]
            if collector.last_metrics()["counts"]["page_requests"] < 1000:
                break
    plant_withdrawals(collector.data_dir, snapshot_bodies)
    export, _ = browse_it_commands()
    program, *args = shlex.split(export)
    assert (program, args[0]) == ("python3", "export_events.py"), export
    result = collector.run(*args[1:], script="export_events.py",
                           env={"POLISEN_API_URL": "https://polisen.se/api/events", "API_RATE_LIMIT": "on"})
    assert result.returncode == 0, result.stderr
    database = collector.workdir / "events.db"
    assert sqlite_rows(database, "SELECT count(*) FROM events WHERE page_body IS NOT NULL")[0][0] > 150
    return database


WITHDRAWN_ON = datetime(2026, 6, 2, 22, 22, 10, tzinfo=UTC)
"""Late in the evening in UTC: already the next day in Sweden."""
WITHDRAWN_IN_SWEDEN = "2026-06-03"


def plant_withdrawals(data_dir: Path, bodies: list[bytes]) -> list[int]:
    """Records as the audit writes them: the first two events of the last answer withdrawn, the second
    republished the next day (tests/test_withdrawals.py makes them the real way)."""
    from polisen_collector.archive.events import validate_event
    from polisen_collector.archive.withdrawals import REPUBLISHED, WITHDRAWN, Record, write_records
    from polisen_collector.storage.local import LocalStorage

    events = [validate_event(raw) for raw in json.loads(bodies[-1])[:2]]
    storage = LocalStorage(data_dir)
    for number, event in enumerate(events):  # one object per tick and day
        write_records(storage, event.day, [Record(event.id, WITHDRAWN, WITHDRAWN_ON, event.day, event.hash)],
                      f"20260602T222210.000Z-aaaaa{number}")
    write_records(storage, events[1].day, [Record(events[1].id, REPUBLISHED, WITHDRAWN_ON + timedelta(days=1),
                                                  events[1].day, events[1].hash)], "20260603T222210.000Z-bbbbbb")
    return [event.id for event in events]


def descendants(pid: int) -> set[int]:
    """The processes below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def site(site_db) -> Iterator[str]:
    """Datasette serving the export, started with README's command on 127.0.0.1 and a free port."""
    _, serve = browse_it_commands()
    program, *args = shlex.split(serve)
    assert program == "datasette" and args[0] == site_db.name, serve
    os.symlink(REPO / "deploy", site_db.parent / "deploy")
    with serving(site_db.parent, args, read_only_folder=site_db.parent) as (url, _):  # as the unit serves it
        yield url


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by chromedriver (Debian's packages; .ci/run installs them): missing is a failure."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"the browser test needs Debian's chromium and chromium-driver: {', '.join(missing)} missing")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver_pid = driver.service.process.pid
    started = descendants(driver_pid) | {driver_pid}
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in started if alive(pid)], "chromedriver or chromium left running"


def visit(driver, url: str, screenshot: str, ready: str = "footer"):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ready))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{screenshot}.png"))


def column(driver, name: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, f"table.rows-and-columns td.col-{name}")]


@pytest.mark.slow
def test_the_list_of_events_is_newest_first_with_a_map(site, site_db, browser):
    from selenium.webdriver.common.by import By

    visit(browser, f"{site}/events/event_list", "event_list", ready="#event-map .leaflet-marker-icon")
    newest = sqlite_rows(site_db, "SELECT id, datetime FROM events ORDER BY datetime DESC, id DESC LIMIT 100")
    shown = list(zip(map(int, column(browser, "id")), column(browser, "datetime"), strict=True))
    assert [when for _, when in shown] == [when for _, when in newest]
    assert sorted(shown) == sorted(newest)  # the same events (two at the same second may come in either order)
    headers = [th.get_attribute("data-column") for th in browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns th")]
    assert headers[:3] == ["id", "datetime", "local_date"] and "page_body" not in headers  # no page text in the list
    assert browser.find_elements(By.CSS_SELECTOR, "#event-map .leaflet-container")
    # An id leads to the event's own page.
    assert browser.find_element(By.CSS_SELECTOR, "td.col-id a").get_attribute("href").endswith(
        f"/events/events/{shown[0][0]}")


def search_examples() -> list[str]:
    """The searches the site's description offers as links."""
    import yaml

    description = yaml.safe_load(METADATA.read_text(encoding="utf-8"))["description_html"]
    return [unquote_plus(found) for found in re.findall(r'href="/events/event_list\?_search=([^"]+)"', description)]


@pytest.mark.slow
@pytest.mark.parametrize("query", search_examples())
def test_search_takes_full_text_syntax_as_sqlite_does(site, site_db, browser, query):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    visit(browser, f"{site}/events/event_list", "event_list_before_search")
    box = browser.find_element(By.CSS_SELECTOR, "input[name=_search]")
    box.send_keys(query)
    box.submit()
    # The page of results, not the one the box was on: the old page goes, then the new one is complete.
    WebDriverWait(browser, 30).until(staleness_of(box))
    WebDriverWait(browser, 30).until(lambda driver: driver.execute_script("return document.readyState") == "complete"
                                     and driver.find_elements(By.CSS_SELECTOR, "footer"))
    results = urlsplit(browser.current_url)
    assert parse_qs(results.query)["_search"] == [query]
    assert browser.find_element(By.CSS_SELECTOR, "input[name=_search]").get_attribute("value") == query
    name = re.sub(r"\W+", "_", query).strip("_")
    visit(browser, results._replace(query=f"{results.query}&_size=1000").geturl(), f"search_{name}")
    expected = sqlite_rows(site_db, "SELECT e.id FROM events_fts JOIN events e ON e.id = events_fts.rowid "
                                    "WHERE events_fts MATCH ? ORDER BY e.datetime DESC", query)
    assert expected
    assert sorted(map(int, column(browser, "id"))) == sorted(event_id for event_id, in expected)
    assert f"{len(expected)} rows where search matches" in browser.find_element(By.CSS_SELECTOR, "h3").text


@pytest.mark.slow
def test_the_municipality_facet_counts_as_the_export(site, site_db, browser):
    from selenium.webdriver.common.by import By

    visit(browser, f"{site}/events/event_list", "event_list_facets")
    facet = browser.find_element(By.CSS_SELECTOR, '.facet-info[data-column="municipality_name"]')
    shown = {}
    for item in facet.find_elements(By.CSS_SELECTOR, "li"):
        found = re.fullmatch(r"(.+) ([\d,]+)", item.text.strip())
        if found:
            shown[found.group(1)] = int(found.group(2).replace(",", ""))
    counts = dict(sqlite_rows(site_db, "SELECT municipality_name, count(*) FROM events WHERE municipality_name IS NOT NULL "
                                       "GROUP BY municipality_name"))
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:served_as_readme_says()[1]["default_facet_size"]]
    assert shown == dict(top)
    for name in ("type", "county_name", "local_date"):
        assert browser.find_elements(By.CSS_SELECTOR, f'.facet-info[data-column="{name}"] li')
    days = [item.text.split()[0] for item in
            browser.find_elements(By.CSS_SELECTOR, '.facet-info[data-column="local_date"] li:not(.facet-truncated)')]
    newest = sqlite_rows(site_db, "SELECT DISTINCT local_date FROM events ORDER BY 1 DESC LIMIT ?", len(top))
    assert days == [day for day, in newest], "the newest days first"


@pytest.mark.slow
def test_the_withdrawn_events_have_a_facet_a_table_and_queries(site, site_db, browser):
    from selenium.webdriver.common.by import By

    [(withdrawn, county)] = sqlite_rows(site_db, "SELECT id, county_name FROM events WHERE withdrawn_at IS NOT NULL")
    visit(browser, f"{site}/events/event_list", "event_list_withdrawn_facet")
    facet = browser.find_element(By.CSS_SELECTOR, '.facet-info[data-column="withdrawn_local_date"]')
    [item] = facet.find_elements(By.CSS_SELECTOR, "li")
    assert item.text.split() == [WITHDRAWN_IN_SWEDEN, "1"], "the day in Sweden, as local_date counts the events"
    visit(browser, item.find_element(By.TAG_NAME, "a").get_attribute("href"), "event_list_withdrawn")
    assert column(browser, "id") == [str(withdrawn)]
    visit(browser, f"{site}/events/withdrawals", "withdrawals")
    assert sorted(column(browser, "status")) == ["republished", "withdrawn", "withdrawn"]
    visit(browser, f"{site}/events/withdrawn_events", "withdrawn_events")
    assert [cell.split()[0] for cell in column(browser, "id")] == [str(withdrawn)]
    # The weekly counts leave the withdrawn event out of `events` and show it in `withdrawn`.
    visit(browser, f"{site}/events/events_per_municipality_per_week?county={quote_plus(county)}", "per_week_withdrawn")
    [(published,)] = sqlite_rows(site_db, "SELECT count(*) FROM events WHERE county_name = ? AND withdrawn_at IS NULL "
                                          "AND municipality_name IS NOT NULL", county)
    assert sum(map(int, column(browser, "events"))) == published
    assert sum(map(int, column(browser, "withdrawn"))) == 1
    # An event's history shows its withdrawals and returns among its versions, in time order.
    [(republished,)] = sqlite_rows(site_db, "SELECT id FROM withdrawals WHERE status = 'republished'")
    visit(browser, f"{site}/events/event_history?id={republished}", "event_history_withdrawn")
    changes = sorted(zip(column(browser, "at"), column(browser, "change"), strict=True))
    assert [change for _, change in changes] == column(browser, "change")
    [(versions,)] = sqlite_rows(site_db, "SELECT count(*) FROM versions WHERE id = ?", republished)
    assert sorted(column(browser, "change")) == sorted(["version"] * versions + ["withdrawn", "republished"])


@pytest.mark.slow
def test_an_edited_events_page_lists_its_versions_and_its_page(site, site_db, browser):
    from selenium.webdriver.common.by import By

    [(event_id, versions)] = sqlite_rows(site_db, "SELECT id, versions FROM events WHERE versions > 1 AND page_body "
                                                  "IS NOT NULL ORDER BY id LIMIT 1")
    visit(browser, f"{site}/events/events/{event_id}", "edited_event", ready="section.event-versions")
    listed = browser.find_elements(By.CSS_SELECTOR, "section.event-versions tbody tr")
    stored = sqlite_rows(site_db, "SELECT first_collected, name, summary FROM versions WHERE id = ? "
                                  "ORDER BY first_collected", event_id)
    assert len(listed) == versions == len(stored)
    assert [row.find_elements(By.TAG_NAME, "td")[0].text for row in listed] == [first for first, _, _ in stored]
    assert listed[1].find_elements(By.TAG_NAME, "td")[2].text  # what the edit changed
    [(body,)] = sqlite_rows(site_db, "SELECT page_body FROM events WHERE id = ?", event_id)
    shown = browser.find_element(By.CSS_SELECTOR, "table.event-record td.col-page_body").text
    assert " ".join(shown.split()) == " ".join(body.split())


@pytest.mark.slow
def test_the_canned_queries_answer(site, site_db, browser):
    from selenium.webdriver.common.by import By

    [(edited,)] = sqlite_rows(site_db, "SELECT count(*) FROM versions v WHERE v.first_collected > "
                                       "(SELECT min(first_collected) FROM versions w WHERE w.id = v.id)")
    visit(browser, f"{site}/events/latest_edits", "latest_edits")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")) == edited > 0
    [(county,)] = sqlite_rows(site_db, "SELECT county_name FROM events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    visit(browser, f"{site}/events/events_per_municipality_per_week?county={quote_plus(county)}", "per_week")
    assert set(column(browser, "county_name")) == {county}
    assert sum(map(int, column(browser, "events"))) > 0
    [(event_id,)] = sqlite_rows(site_db, "SELECT id FROM events WHERE versions > 1 LIMIT 1")
    visit(browser, f"{site}/events/event_history?id={event_id}", "event_history")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")) > 1


# -- the site in this process (Datasette's own client), over a small export: cheap enough for the fast set ---

SMALL_ARCHIVE = [  # (id, Swedish time, type, place, summary)
    (1, "2026-10-30 23:40:00 +01:00", "Brand", "Stockholm", "Brand i en lägenhet i Stockholm."),
    (2, "2026-11-01 08:10:00 +01:00", "Misshandel", "Lund", "Misshandel på ett torg, en man misshandlades."),
    (3, "2026-11-02 00:20:00 +01:00", "Trafikolycka", "Upplands-Bro",
     "Olycka i Upplands-Bro 2026-11-02 kl. 12, rock and roll or jazz på radion, e-post till polisen."),
    (4, "2026-11-02 09:05:00 +01:00", "Stöld", "Stockholm", "Stöld ur bil i Stockholm kl. 09.05."),
]


@pytest.fixture
def small_site_db(tmp_path, monkeypatch) -> Path:
    """SMALL_ARCHIVE exported as README says (export_events.py -o events.db --update), in this process."""
    from conftest import clear_settings

    from polisen_collector.cli import export_events
    from polisen_collector.storage.local import LocalStorage

    lines = [{"id": event_id, "datetime": when, "name": f"{kind}, {place}",
              "summary": summary, "url": f"/aktuellt/handelser/{event_id}", "type": kind,
              "location": {"name": place, "gps": "59.33,18.06"}}
             for event_id, when, kind, place, summary in SMALL_ARCHIVE]
    for line in lines:
        day = line["datetime"][:10]
        LocalStorage(tmp_path / "data").put(f"events/{day.replace('-', '/')}/events-{day.replace('-', '')}T120000.000Z"
                                            f"-{line['id']:06d}.jsonl", (json.dumps(line) + "\n").encode())
    clear_settings(monkeypatch, POLISEN_API_URL="https://polisen.se/api/events")
    database = tmp_path / "events.db"
    args = [str(database) if arg == database.name else arg for arg in shlex.split(browse_it_commands()[0])[2:]]
    assert export_events.main(["--env-file", os.devnull, "--data-dir", str(tmp_path / "data"), *args]) == 0
    return database


def served_as_readme_says() -> tuple[dict[str, str], dict[str, object]]:
    """The options and the settings (typed as Datasette's CLI types them) of README's Datasette command."""
    from datasette.app import DEFAULT_SETTINGS

    _, serve = browse_it_commands()
    args = shlex.split(serve)[2:]
    options: dict[str, str] = {}
    settings: dict[str, object] = {}
    while args:
        if args[0] == "--setting":
            name, value = args[1:3]
            default = DEFAULT_SETTINGS[name]
            settings[name] = value in ("on", "true", "1") if isinstance(default, bool) else type(default)(value)
            args = args[3:]
        else:
            options[args[0]] = args[1]
            args = args[2:]
    return options, settings


def in_process_site(database: Path, *, immutable: bool = False, **changed: object):
    """Datasette over `database` as README's command sets it up (metadata, templates, plugins, settings,
    with `changed` settings), for its in-process client (datasette.client): no server, no browser."""
    import yaml
    from datasette.app import Datasette

    options, settings = served_as_readme_says()
    assert set(options) == {"-m", "--template-dir", "--plugins-dir"}, options
    return Datasette([] if immutable else [str(database)], immutables=[str(database)] if immutable else [],
                     metadata=yaml.safe_load((REPO / options["-m"]).read_text(encoding="utf-8")),
                     template_dir=str(REPO / options["--template-dir"]), plugins_dir=str(REPO / options["--plugins-dir"]),
                     settings={**settings, **changed})


def fetch(datasette, *paths: str) -> list:
    """The answers of the in-process site to `paths`."""
    import asyncio

    async def get_all() -> list:
        return [await datasette.client.get(path) for path in paths]

    return asyncio.run(get_all())


def fts_ids(database: Path, query: str) -> list[int]:
    return sorted(event_id for event_id, in sqlite_rows(database, "SELECT rowid FROM events_fts WHERE events_fts MATCH ?",
                                                        query))


def test_search_takes_plain_words_where_they_are_not_full_text_syntax(small_site_db):
    """What SQLite's FTS5 refuses (a hyphen, a date, a full stop, a colon) is searched as plain words, as
    Datasette's escaped mode searches them; what it takes stays full-text syntax, lower-case and/or (words
    to FTS5: its operators are in capitals) included."""
    from datasette.utils import escape_fts

    plain = ["Upplands-Bro", "2026-11-02", "kl. 12", "e-post", "12:00", "100%"]
    syntax = ["misshandel*", "brand AND stockholm", "stockholm NOT brand", '"i en lägenhet"', "rock and roll",
              "jazz or blues", "and", "or"]
    for query in plain:
        with pytest.raises(sqlite3.OperationalError):  # the error page the raw search showed
            fts_ids(small_site_db, query)
    site = in_process_site(small_site_db)
    answers = fetch(site, *(f"/events/event_list.json?_search={quote_plus(query)}&_shape=array" for query in plain + syntax))
    found = {query: sorted(row["id"] for row in answer.json()) for query, answer in zip(plain + syntax, answers, strict=True)}
    expected = {query: fts_ids(small_site_db, escape_fts(query)) for query in plain}
    expected |= {query: fts_ids(small_site_db, query) for query in syntax}
    assert found == expected
    assert found["Upplands-Bro"] == found["2026-11-02"] == found["kl. 12"] == [3]
    assert (found["misshandel*"], found["brand AND stockholm"], found["stockholm NOT brand"]) == ([2], [1], [4])
    assert found["jazz or blues"] == [], "lower-case or is a word, as in sqlite3"
    [page] = fetch(site, "/events/event_list?_search=Upplands-Bro")
    assert page.status_code == 200 and 'value="&#34;Upplands-Bro&#34;"' in page.text, "the box shows what was searched"
    assert "1 row where search matches" in page.text
    [raw] = fetch(site, "/events/event_list.json?_search=Upplands-Bro&_searchmode=raw")
    assert raw.status_code == 400 and "no such column" in raw.text, "asked for raw, answered raw"


def test_a_public_site_lists_the_latest_days_and_hands_out_no_whole_database(small_site_db):
    """README's settings: no download of the database file nor a CSV stream of every row (docs/site.md says
    how to allow them); facets of default_facet_size values; the days of local_date newest first."""
    _, settings = served_as_readme_says()
    assert (settings["allow_download"], settings["allow_csv_stream"], settings["default_facet_size"]) == (False, False, 10)
    site = in_process_site(small_site_db)
    download, database_page, stream, listed, two = fetch(
        site, "/events.db", "/events", "/events/events.csv?_stream=1", "/events/event_list.json?_size=0",
        "/events/event_list.json?_size=0&_facet_size=2")
    assert download.status_code == 403 and 'href="/events.db"' not in database_page.text
    # Datasette offers no download of a database served read-only but not immutable whatever the setting,
    # but one of a copy served immutable (-i) when allowed (docs/site.md).
    for allowed in (False, True):
        [copy] = fetch(in_process_site(small_site_db, immutable=True, allow_download=allowed), "/events.db")
        assert copy.status_code == (200 if allowed else 403)
    assert stream.status_code == 400 and "CSV streaming is disabled" in stream.text
    days = listed.json()["facet_results"]["local_date"]
    counts = dict(sqlite_rows(small_site_db, "SELECT local_date, count(*) FROM events GROUP BY 1"))
    assert [(day["value"], day["count"]) for day in days["results"]] == sorted(counts.items(), reverse=True)
    assert max(counts.values()) == counts["2026-11-02"] and counts["2026-10-30"] == counts["2026-11-01"], \
        "by count, 2026-10-30 would come before 2026-11-01"
    newest = two.json()["facet_results"]["local_date"]
    assert ([day["value"] for day in newest["results"]], newest["truncated"]) == (["2026-11-02", "2026-11-01"], True)
    toggle = urlsplit(newest["results"][1]["toggle_url"])
    [chosen] = fetch(site, f"{toggle.path}?{toggle.query}")
    assert parse_qs(toggle.query)["local_date"] == ["2026-11-01"], "a day filters by its column, which its index answers"
    assert chosen.json()["filtered_table_rows_count"] == counts["2026-11-01"]


def test_the_metadata_describes_every_column_and_sorts_and_facets_by_indexed_columns():
    import yaml

    from polisen_collector.export import COLUMNS, LIST_COLUMNS, LIST_VIEW, SQLITE_INDEXES, VERSION_KEY, WITHDRAWAL_COLUMNS
    from polisen_collector.export_update import DAYS_TABLE, LEFT_OUT_TABLE, STATE_TABLE

    metadata = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    assert metadata["source_url"].startswith("https://polisen.se/") and metadata["license"]
    tables = metadata["databases"]["events"]["tables"]
    assert set(tables) == {"events", "versions", "withdrawals", LIST_VIEW, DAYS_TABLE, STATE_TABLE, LEFT_OUT_TABLE}
    assert tables[DAYS_TABLE] == tables[STATE_TABLE] == tables[LEFT_OUT_TABLE] == {"hidden": True}  # --update's
    assert set(tables["events"]["columns"]) == set(COLUMNS)
    assert set(tables["versions"]["columns"]) == {*COLUMNS, VERSION_KEY}
    assert set(tables[LIST_VIEW]["columns"]) >= set(LIST_COLUMNS)
    assert set(tables["withdrawals"]["columns"]) == set(WITHDRAWAL_COLUMNS)
    assert all(description.strip() for table in ("versions", "withdrawals") for description in tables[table]["columns"].values())
    for name in ("events", LIST_VIEW):
        assert tables[name]["sort_desc"] in SQLITE_INDEXES
        faceted = {facet if isinstance(facet, str) else next(iter(facet.values())) for facet in tables[name]["facets"]}
        assert faceted <= set(SQLITE_INDEXES)
        assert tables[name]["searchmode"] == "raw"
    assert set(metadata["databases"]["events"]["queries"]) == {
        "events_per_municipality_per_week", "latest_edits", "event_history", "withdrawn_events"}


def test_the_site_unit_serves_the_readme_command_read_only():
    """polisen-site.service runs README's Datasette command on site/events.db, never --immutable."""
    _, serve = browse_it_commands()
    readme = shlex.split(serve)[2:]
    unit = (REPO / "deploy" / "polisen-site.service").read_text()
    [exec_start] = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert shlex.split(exec_start) == [
        "/opt/polisen-events-collector/.venv/bin/python", "-m", "datasette", "serve", "site/events.db", *readme,
        "--host", "127.0.0.1", "--port", "8001"]
    assert not {"-i", "--immutable"} & set(readme)
    refresh = (REPO / "deploy" / "polisen-site-refresh.service").read_text()
    assert "ExecStart=/opt/polisen-events-collector/.venv/bin/python export_events.py -o site/events.db --update\n" \
        in refresh
    assert "ReadWritePaths" not in unit and "ProtectSystem=strict\n" in unit, "it may write nowhere, site/ included"
