"""Place an event in its official municipality and county (SCB codes).

The feed's `location.name` names either a municipality ("Strömsund") or a county ("Jämtlands län").
In the recorded feed it is always the county, and the municipality is the last part of the
event's `name` ("17 mars 10.07, Trafikolycka, personskada, Malung-Sälen"), so `place_event`
reads both. The reference is SCB's list of the 290 municipalities and 21 counties, shipped as
package data (polisen_collector/data/swedish_admin_areas.csv).
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

MUNICIPALITY = "municipality"
COUNTY = "county"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Place:
    """Where an event is: a municipality (with its county), a county, or unknown (all codes None)."""

    location_level: str
    municipality_code: str | None = None
    municipality_name: str | None = None
    county_code: str | None = None
    county_name: str | None = None


UNKNOWN_PLACE = Place(UNKNOWN)


def _key(name: str) -> str:
    """Names compare without case and with single spaces: the feed writes "Östra göinge"."""
    return " ".join(name.split()).casefold()


def _county_stems(county_name: str) -> list[str]:
    """The county's name without "län", as written in prose: "Skåne", "Dalarna", "Västra Götaland"."""
    stem = county_name.removesuffix(" län")
    return [stem, stem.removesuffix("s")] if stem.endswith("s") else [stem]


@functools.cache
def _places_by_name() -> dict[str, Place]:
    """Every accepted spelling -> its Place, loaded once from the package's SCB reference."""
    text = (resources.files("polisen_collector") / "data" / "swedish_admin_areas.csv").read_text(encoding="utf-8")
    municipalities: dict[str, Place] = {}
    counties: dict[str, Place] = {}
    for row in csv.DictReader(io.StringIO(text)):
        county = Place(COUNTY, county_code=row["county_code"], county_name=row["county_name"])
        counties[_key(row["county_name"])] = county
        municipalities[_key(row["municipality_name"])] = Place(
            MUNICIPALITY, row["municipality_code"], row["municipality_name"], row["county_code"], row["county_name"]
        )
    places = {}
    # Looser county spellings first, so that exact names and municipalities win: "Stockholm" is
    # the municipality, not "Stockholms län" without its "län".
    for county in counties.values():
        for stem in _county_stems(county.county_name or ""):  # a county Place always has its name
            places[_key(stem)] = county
    places.update(counties)
    places.update(municipalities)
    return places


def place(location_name: str | None) -> Place:
    """The municipality or county a name denotes; UNKNOWN_PLACE when it matches neither."""
    if not location_name:
        return UNKNOWN_PLACE
    return _places_by_name().get(_key(location_name), UNKNOWN_PLACE)


def place_event(location_name: str | None, event_name: str | None) -> Place:
    """The most precise place of an event: its `location.name`, refined by the municipality that
    ends its `name` when that municipality lies in the same county (or the location is unknown).

    A title naming a municipality of another county is ignored: the feed's location field wins.
    """
    location = place(location_name)
    if location.location_level == MUNICIPALITY or not event_name:
        return location
    from_title = place(event_name.rsplit(",", 1)[-1])
    if from_title.location_level == UNKNOWN:
        return location
    if location.location_level == UNKNOWN or (
        from_title.location_level == MUNICIPALITY and from_title.county_code == location.county_code
    ):
        return from_title
    return location
