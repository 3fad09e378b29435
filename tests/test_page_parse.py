"""Parsing event pages: every field of real polisen.se pages, hostile input, the fingerprint."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from datetime import date
from pathlib import Path

import pytest

from polisen_collector.pages import parse
from polisen_collector.pages.parse import PARSER_VERSION, ParsedPage, content_fingerprint, parse_page, swedish_datetime

DATA = Path(__file__).resolve().parent / "data"
PAGES = DATA / "polisen-pages"


def page(event_id: int) -> bytes:
    return gzip.decompress((PAGES / f"{event_id}.html.gz").read_bytes())


def without_time_attribute(html: bytes) -> bytes:
    """The page as if the site wrote the publication time only in Swedish words."""
    return re.sub(rb'(<time class="date") datetime="[^"]*"', rb"\1", html)


# Pages read by eye against what a browser shows.
WINTER_PAGE = ParsedPage(  # one paragraph with a <br>; the only winter-time page
    title="17 mars 10.07, Trafikolycka, personskada, Malung-Sälen",
    preamble="En skoterolycka har inträffat i Sälen.",
    body="Polispatrull är beordrade till en olycka där en skoterförare enligt uppgift kört in i ett träd.\n"
    "Sjukvården har anlänt platsen.",
    author="Polisen region Bergslagen",
    published="2026-03-17T10:34:43+01:00",
)
SEVERAL_PARAGRAPHS = ParsedPage(  # <em>, <strong>, a <br> list, and an "Uppdaterad" time that is not "Publicerad"
    title="29 april 17.31, Försvunnen person, Norrköping",
    preamble="Polisen eftersöker försvunnen man i Skärblacka",
    body="Sedan eftermiddagen har polispersonal med olika kompetens eftersökt en man i 75-årsåldern i området kring "
    "Hagnerydviken/Sandviken i de norra delarna av Skärblacka.\n\n"
    "Mannen har normal kroppsbyggnad och är cirka 180 centimeter lång. Han har blå ögon och rakat hår.\n\n"
    "Trolig klädsel\nSvart jacka med orange text\nSvart eller mörkblå keps\nGymnastikskor\n\n"
    "Polisen är intresserad av iaktagelser gällande hela Skärblacka med omnejd sedan gårdagskvällen (tisdag). "
    "Har du sett mannen? Ring 11414. Vid akut situation; Ring 112.\n\n"
    "Uppdatering 19:30: Polisen arbetar fortsatt intensivt med sökandet efter mannen. Bland annat används "
    "hundpatrull och drönare i insatsen. Räddningstjänst har inletts.",
    author="Presstalesperson Öst",
    published="2026-04-29T19:25:11+02:00",
)
EMPTY_BODY = ParsedPage(
    title="12 maj 21.50, Övrigt, Västra Götalands län",
    preamble="Efter klockan 22:00 finns ingen presstalesperson i tjänst. "
    "Frågor från media besvaras av vakthavande befäl i mån av tid.",
    body="",
    author="Christian Brattgård, polisens presstalesperson",
    published="2026-05-12T21:50:25+02:00",
)
NO_AUTHOR = ParsedPage(  # no "Text av"; <strong> headings and <br><br> inside one <p>
    title="16 maj 07.05, Sammanfattning natt, Örebro län",
    preamble="Natt till lördag i polisområde Örebro.",
    body="Örebro, misshandel.\n23.24: Polispatrull upprättar anmälan och motanmälan misshandel, en man och en kvinna "
    "har av oklar anledning varit oense vilket renderat i anmälningar. Parterna är 50–60-årsåldern.\n\n"
    "Karlskoga, misshandel.\n01.21: Polispatrull beordras till en adress i Karlskoga med anledning av en misstänkt "
    "misshandel. På adressen vill ingen av parterna, en man och en kvinna medverka i någon förundersökning. Inga "
    "skador påvisas hos någon av parterna men en anmälan om misshandel upprättas.\n\n"
    "Örebro, misshandel.\n02.19: På en krog i centrala Örebro framkommer att en man i 25-årsåldern misshandlat en "
    "kvinna, parterna har en relation. Mannen omhändertas enligt LOB, lagen om omhändertagande av berusad person. "
    "Anmälan om misshandel upprättad.\n\n"
    "Örebro, misshandel.\n02.24: Målsäganden har av okänd person blivit misshandlad i anslutning till en bar i "
    "centrala Örebro. Målsäganden skjutsad till sjukvården av polispersonal, skadeläget är vidare okänt.",
    author=None,
    published="2026-05-16T07:08:30+02:00",
)
CONTACT_BOX_AFTER_BODY = ParsedPage(  # the "Kontakta polisen" box after the body is not body text
    title="18 maj 08.37, Trafikolycka, Östersund",
    preamble="Polisen utreder olycka med elsparkcykel",
    body="Polisen kontaktas under söndagskvällen av sjukvården om att en man i 25-årsåldern avlidit efter en olycka "
    "med en elsparkscykel.\n\n"
    "Anhöriga är underrättade.\n\n"
    "Olyckan uppges ha inträffat i Lugnvik i torsdags. Det är oklart vid vilken tidpunkt, men mannen har inkommit "
    "till sjukvård vid 19.30-tiden.\n\n"
    "Polisen utreder vad som hänt och önskar komma i kontakt med personer som har tips och iakttagelser kring "
    "olyckan. Den som har information att lämna ombeds kontakta polisen på 114 14 eller via polisens webbplats.\n\n"
    "Ingen är delgiven misstanke om brott.",
    author="Polisen",
    published="2026-05-18T08:37:18+02:00",
)
RELATED_LINK_AND_UPDATES = ParsedPage(  # <br><br> as paragraph breaks; a related link after the body
    title="13 maj 18.11, Trafikolycka, Umeå",
    preamble="Trafikolycka på E4 Stöcksjö/Ansmark, Umeå.",
    body="Polisen har larmats om en trafikolycka på E4. Enligt initiala uppgifter ska en lastbil ha kört in i en "
    "gångbro.\n\n"
    "Polisen är på plats.\n\n"
    "Uppdatering klockan 18:57: Lastbilens last ska ha tagit i gångbron vilket resulterat i skador på bron. Det "
    "finns ingen information om att personskador ska ha uppstått.\n\n"
    "Uppdatering klockan 20:19: Polisen har utfärdat ordningsbot till lastbilsföraren.",
    author="Polisen",
    published="2026-05-13T18:42:13+02:00",
)


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [
        (627715, WINTER_PAGE),
        (633477, SEVERAL_PARAGRAPHS),
        (634820, EMPTY_BODY),
        (635320, NO_AUTHOR),
        (635442, CONTACT_BOX_AFTER_BODY),
        (634934, RELATED_LINK_AND_UPDATES),
    ],
)
def test_real_pages_parse_whole(event_id, expected):
    assert parse_page(page(event_id)) == expected


def test_winter_page_has_plus_one_and_summer_page_plus_two():
    assert parse_page(page(627715)).published == "2026-03-17T10:34:43+01:00"
    assert parse_page(page(635442)).published == "2026-05-18T08:37:18+02:00"


def test_publication_time_in_another_offset_is_given_in_stockholm_time():
    html = page(627715).replace(b"2026-03-17T10:34:43.000&#x2B;01:00", b"2026-03-17T09:34:43Z")
    assert parse_page(html) == WINTER_PAGE


def test_publication_time_from_the_swedish_text_when_the_attribute_is_missing():
    """The year comes from the event's date in the page's URL; the text has minutes only."""
    assert parse_page(without_time_attribute(page(627715))).published == "2026-03-17T10:34:00+01:00"
    assert parse_page(without_time_attribute(page(635442))).published == "2026-05-18T08:37:00+02:00"


def test_without_time_zone_data_the_sites_own_offset_is_kept(monkeypatch):
    monkeypatch.setattr(parse, "_stockholm_zone", lambda: None)
    assert parse_page(page(627715)) == WINTER_PAGE
    assert parse_page(without_time_attribute(page(627715))) == ParsedPage(
        reason="publication time unreadable: 'Publicerad 17 mars 10.34'"
    )


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("17 mars 10.34", date(2026, 3, 17), "2026-03-17T10:34:00+01:00"),
        ("5 juni 2026 23.10", None, "2026-06-05T23:10:00+02:00"),
        ("5 Juni 2026, kl. 23:10", None, "2026-06-05T23:10:00+02:00"),
        ("1 januari 00.05", date(2025, 12, 31), "2026-01-01T00:05:00+01:00"),
        ("31 december 23.55", date(2025, 12, 31), "2025-12-31T23:55:00+01:00"),
        # Around the 2026 clock changes (29 March, 25 October).
        ("29 mars 2026 01.59", None, "2026-03-29T01:59:00+01:00"),
        ("29 mars 2026 03.00", None, "2026-03-29T03:00:00+02:00"),
        ("25 oktober 2026 01.59", None, "2026-10-25T01:59:00+02:00"),
        ("25 oktober 2026 03.00", None, "2026-10-25T03:00:00+01:00"),
        # The hour that does not exist, and the one that repeats, take the offset before the change.
        ("29 mars 2026 02.30", None, "2026-03-29T02:30:00+01:00"),
        ("25 oktober 2026 02.30", None, "2026-10-25T02:30:00+02:00"),
        ("17 mars 10.34", None, None),
        ("31 februari 2026 10.00", None, None),
        ("17 mars 25.00", date(2026, 3, 17), None),
        ("17 march 10.34", date(2026, 3, 17), None),
        ("", None, None),
    ],
)
def test_swedish_datetime(text, after, expected):
    moment = swedish_datetime(text, after)
    assert (moment.isoformat() if moment else None) == expected


# Hostile input: never an exception, always the null result with a reason.
WINTER_HTML = page(627715)
BLOCK_START = WINTER_HTML.index(b'<div class="event-page')
BLOCK_END = WINTER_HTML.index(b"</main>")


HOSTILE = {
    "empty": (b"", "empty page"),
    "blank": (b" \r\n\t", "empty page"),
    "json": (b'{"id": 627715}', "no event block (div.event-page)"),
    "binary": (bytes(range(256)) * 64, "no event block (div.event-page)"),
    "still-gzipped": (gzip.compress(WINTER_HTML), "no event block (div.event-page)"),
    "other-page": (WINTER_HTML.replace(b"event-page", b"news-page"), "no event block (div.event-page)"),
    "truncated": (WINTER_HTML[: WINTER_HTML.index(b"Publicerad")], "event block cut off (div.event-page not closed)"),
    "no-h1": (WINTER_HTML.replace(b"<h1>", b"<h2>").replace(b"</h1>", b"</h2>"), "no title (h1)"),
    "no-body": (WINTER_HTML.replace(b"text-body", b"text-other"), "no body text block (div.text-body)"),
    "no-published": (WINTER_HTML.replace(b"Publicerad", b"Skapad"), "no publication time (Publicerad)"),
    "marked-section": (b"<![foo[ <div>", "malformed HTML: unknown status keyword 'foo' in marked section"),
    "deep-divs": (b'<div class="event-page">' + b"<div>" * 100_000, "event block cut off (div.event-page not closed)"),
    "deep-inline": (b"<p><b><i>" * 100_000, "no event block (div.event-page)"),
    # Unclosed tags: quadratic in html.parser's end-of-file handling, which parse_page avoids.
    "unclosed-tags": (b"<a " * 50_000, "no event block (div.event-page)"),
    "time-overflow": (
        b'<div class="event-page"><h1>x</h1><div class="text-body"></div><div class="published-container">'
        b'Publicerad <time datetime="9999-12-31T23:59:59+00:00">i morgon</time></div></div>',
        "publication time unreadable: 'Publicerad i morgon'",
    ),
}


@pytest.mark.parametrize(("html", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_gives_the_null_result(html, reason):
    assert parse_page(html) == ParsedPage(reason=reason)


def test_a_page_cut_anywhere_in_the_event_block_does_not_parse():
    """Cut before the event block closes: unparsed. Cut after: the full result (the rest is chrome).
    The cuts: before and after every tag of the block, where a parser's state changes."""
    blue_line_end = WINTER_HTML.index(b"</div>", WINTER_HTML.index(b'<div class="block blue-line">'))
    block_end = WINTER_HTML.index(b"</div>", blue_line_end + 1) + len(b"</div>")
    tags = [found.span() for found in re.finditer(rb"<[^>]*>", WINTER_HTML[BLOCK_START:BLOCK_END])]
    cuts = sorted({BLOCK_START + at for start, end in tags for at in (start, end)} | {block_end - 1, block_end})
    assert len(tags) > 50, "the block's tags were found"
    for cut in cuts:
        result = parse_page(WINTER_HTML[:cut])
        if cut < block_end:
            assert result == ParsedPage(reason=result.reason) and result.reason, cut
        else:
            assert result == WINTER_PAGE, cut


def test_a_minimal_page_in_the_same_shape_parses():
    html = (
        '<div class="event-page"><h1> Rubrik </h1><div class="text-body"><p>Ett</p><p>Två<br>rader</p>'
        '<ul><li>a</li><li>b</li></ul><script>var x = "<p>";</script></div>'
        '<div class="published-container">Publicerad<br><time>5 juni 2026 23.10</time></div></div>'
    ).encode()
    assert parse_page(html) == ParsedPage(
        title="Rubrik", preamble=None, body="Ett\n\nTvå\nrader\n\na\n\nb", author=None,
        published="2026-06-05T23:10:00+02:00",
    )  # fmt: skip


# The fingerprint: one per distinct parsed content, blind to the per-request tokens.
def test_fingerprint_ignores_request_tokens_and_sees_content():
    nonce = re.search(rb'nonce="([^"]+)"', WINTER_HTML)[1]
    other_request = WINTER_HTML.replace(nonce, b"AnotherNonceOnTheNextRequest=")
    assert other_request != WINTER_HTML
    assert content_fingerprint(parse_page(other_request)) == content_fingerprint(parse_page(WINTER_HTML))
    edited = WINTER_HTML.replace(b"Sjukv&aring;rden har anl&auml;nt", b"Ambulansen har anl&auml;nt")
    assert parse_page(edited).body.endswith("Ambulansen har anlänt platsen.")
    assert content_fingerprint(parse_page(edited)) != content_fingerprint(parse_page(WINTER_HTML))


def test_fingerprint_is_stable():
    """Changing it (or the text normalisation) would make every archived page look edited."""
    assert content_fingerprint(WINTER_PAGE) == "9beb23ca361bcb9520cdb8e71dff15b2dda9f21047771de9baf50ad0be0bb43a"


def test_every_unparsed_page_has_one_fingerprint():
    assert content_fingerprint(parse_page(b"")) == content_fingerprint(parse_page(b"<html></html>"))
    assert content_fingerprint(parse_page(b"")) != content_fingerprint(EMPTY_BODY)


# The whole recorded collection.
def feed_names() -> dict[int, set[str]]:
    names: dict[int, set[str]] = {}
    for path in sorted((DATA / "polisen-snapshots").glob("*.json.gz")):
        body = gzip.decompress(path.read_bytes())
        for event in json.loads(body) if body.strip() else []:
            names.setdefault(event["id"], set()).add(event["name"])
    return names


@pytest.mark.slow
def test_every_recorded_page_parses():
    """All 1,722 pages parse, titled as in the feed; the Swedish words of the publication time agree
    with its machine-readable attribute to the minute (every third page, spread over the recording,
    parsed again without the attribute: a parse each is the test's cost)."""
    names = feed_names()
    paths = sorted(PAGES.glob("*.html.gz"))
    assert {int(path.name.removesuffix(".html.gz")) for path in paths} == set(names)
    results = {}
    for path in paths:
        html = gzip.decompress(path.read_bytes())
        result = results[int(path.name.removesuffix(".html.gz"))] = parse_page(html)
        assert result.reason is None, path.name
        assert re.fullmatch(r"2026-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", result.published), path.name
        if len(results) % 3 == 1:
            from_words = parse_page(without_time_attribute(html)).published
            assert from_words == result.published[:17] + "00" + result.published[19:], path.name
    for event_id, result in results.items():
        assert result.title in names[event_id]
        assert result.preamble and result.author != ""
    assert len(results) == 1722
    assert sum(result.body == "" for result in results.values()) == 55
    assert sum(result.author is None for result in results.values()) == 6
    assert sum("\n\n" in result.body for result in results.values()) == 1185
    assert len({content_fingerprint(result) for result in results.values()}) == 1722
    # Stored parses are read instead of parsing again (pages/store.py) unless PARSER_VERSION differs:
    # a change that alters any field of these pages must bump it, then this digest.
    digest = hashlib.sha256("".join(content_fingerprint(results[key]) for key in sorted(results)).encode())
    assert (PARSER_VERSION, digest.hexdigest()) == (
        1, "dd2e60a224a74b6ed400c18726863975f83f15be25af573bb2ee51542e2a14ca")
