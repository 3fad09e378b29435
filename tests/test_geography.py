"""Geography: every place name of the recorded feed maps to its SCB municipality or county."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from polisen_collector.geography import UNKNOWN_PLACE, Place, place, place_event

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = Path(__file__).resolve().parent.parent / "polisen_collector" / "data" / "swedish_admin_areas.csv"


def reference_rows() -> list[dict[str, str]]:
    with REFERENCE.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def recorded_events() -> list[dict]:
    """Every event of the 114 recorded API answers (the empty one has none)."""
    events = []
    for path in sorted((DATA / "polisen-snapshots").glob("*.json.gz")):
        body = gzip.decompress(path.read_bytes())
        if body.strip():
            events.extend(json.loads(body))
    return events


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return recorded_events()


def test_reference_holds_290_municipalities_in_21_counties():
    rows = reference_rows()
    assert len(rows) == 290
    assert len({row["municipality_code"] for row in rows}) == 290
    assert len({(row["county_code"], row["county_name"]) for row in rows}) == 21
    assert all(row["municipality_code"][:2] == row["county_code"] for row in rows)


def test_every_reference_name_places_itself():
    for row in reference_rows():
        assert place(row["municipality_name"]) == Place(
            "municipality", row["municipality_code"], row["municipality_name"], row["county_code"], row["county_name"]
        )
        assert place(row["county_name"]) == Place("county", county_code=row["county_code"], county_name=row["county_name"])


def test_every_location_name_in_the_snapshots_is_a_county_of_the_reference(events):
    """The recorded feed names only counties in `location.name`, all 21 of them, spelled as SCB does."""
    counties = {row["county_name"]: row["county_code"] for row in reference_rows()}
    names = Counter(event["location"]["name"] for event in events)
    assert set(names) == set(counties)
    for name in names:
        assert place(name) == Place("county", county_code=counties[name], county_name=name)


def test_every_place_ending_an_event_name_resolves(events):
    """The municipality is in the event's name ("..., Trafikolycka, Malung-Sälen"); every one of the
    recorded names ends with a municipality or county, and always one inside the location's county."""
    levels = {}
    for event in events:
        location = place(event["location"]["name"])
        tail = place(event["name"].rsplit(",", 1)[-1])
        assert tail != UNKNOWN_PLACE, event["name"]
        assert tail.county_code == location.county_code, event["name"]
        expected = tail if tail.location_level == "municipality" else location
        assert place_event(event["location"]["name"], event["name"]) == expected
        levels[event["id"]] = expected.location_level
    # Of the 1,722 events, 469 name only a county ("Sammanfattning natt, Örebro län").
    assert Counter(levels.values()) == {"municipality": 1253, "county": 469}


def test_distinct_event_name_places_all_resolve(events):
    """257 distinct places end the recorded event names; one ("Östra göinge") differs from SCB's
    spelling ("Östra Göinge") only in case."""
    tails = {event["name"].rsplit(", ", 1)[-1] for event in events}
    assert len(tails) == 257
    reference_names = {row["municipality_name"] for row in reference_rows()} | {row["county_name"] for row in reference_rows()}
    assert tails - reference_names == {"Östra göinge"}
    assert all(place(tail).location_level != "unknown" for tail in tails)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Skåne län", Place("county", None, None, "12", "Skåne län")),
        ("Stockholms län", Place("county", None, None, "01", "Stockholms län")),
        ("Stockholm", Place("municipality", "0180", "Stockholm", "01", "Stockholms län")),
        ("Gotlands län", Place("county", None, None, "09", "Gotlands län")),
        ("Gotland", Place("municipality", "0980", "Gotland", "09", "Gotlands län")),
        ("Falun", Place("municipality", "2080", "Falun", "20", "Dalarnas län")),
        ("Malung-Sälen", Place("municipality", "2023", "Malung-Sälen", "20", "Dalarnas län")),
        ("Östra göinge", Place("municipality", "1256", "Östra Göinge", "12", "Skåne län")),
        ("  stockholms  LÄN ", Place("county", None, None, "01", "Stockholms län")),
        # A county without "län", with or without its genitive s.
        ("Skåne", Place("county", None, None, "12", "Skåne län")),
        ("Dalarna", Place("county", None, None, "20", "Dalarnas län")),
        ("Dalarnas", Place("county", None, None, "20", "Dalarnas län")),
        ("Västra Götaland", Place("county", None, None, "14", "Västra Götalands län")),
        # Names matching neither stay unknown.
        ("Sverige", UNKNOWN_PLACE),
        ("Stockholms kommun", UNKNOWN_PLACE),
        ("", UNKNOWN_PLACE),
        (None, UNKNOWN_PLACE),
    ],
)
def test_place(name, expected):
    assert place(name) == expected


def test_unknown_place_has_no_codes():
    assert Place("unknown", None, None, None, None) == UNKNOWN_PLACE


@pytest.mark.parametrize(
    ("location_name", "event_name", "expected"),
    [
        # The recorded feed's shape: the county in location.name, the municipality in the name.
        ("Dalarnas län", "17 mars 10.07, Trafikolycka, personskada, Malung-Sälen", place("Malung-Sälen")),
        ("Östergötlands län", "20 maj 07.46, Sammanfattning natt, Östergötlands län", place("Östergötlands län")),
        # A municipality of another county does not override the feed's location.
        ("Skåne län", "17 mars 10.07, Trafikolycka, personskada, Malung-Sälen", place("Skåne län")),
        # A municipality in location.name is already precise.
        ("Falun", "1 juni 12.00, Brand, Borlänge", place("Falun")),
        # An unknown location takes what the name says.
        ("Sverige", "1 juni 12.00, Brand, Borlänge", place("Borlänge")),
        (None, "1 juni 12.00, Brand, Skåne län", place("Skåne län")),
        ("Skåne län", "1 juni 12.00, Brand", place("Skåne län")),
        ("Skåne län", None, place("Skåne län")),
        (None, None, UNKNOWN_PLACE),
    ],
)
def test_place_event(location_name, event_name, expected):
    assert place_event(location_name, event_name) == expected
