"""Read an event's page on polisen.se: title, preamble, body text, author and publication time.

The event is a small block in ~47 KB of site chrome:

    <div class="event-page editorial-content">
      <h1>title</h1> <p class="preamble">...</p>
      <div class="text-body editorial-html"><p>...</p>...</div>
      <div class="published-container"><span>Text av</span><br/><span>author</span></div>
      <div class="published-container">Publicerad<br/><time datetime="...">17 mars 10.34</time></div>
    </div>

Parsing is pure and never raises: a page that is not this shape gives a ParsedPage whose fields
are all None and whose `reason` says why. See docs/pages-and-geography.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from html.parser import HTMLParser
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SWEDISH_MONTHS = {
    "januari": 1, "februari": 2, "mars": 3, "april": 4, "maj": 5, "juni": 6,
    "juli": 7, "augusti": 8, "september": 9, "oktober": 10, "november": 11, "december": 12,
}  # fmt: skip

# "17 mars 10.34" as the site writes it, or with a year: "5 juni 2026 23.10".
_SWEDISH_TIME = re.compile(r"(\d{1,2}) ([a-zåäö]+)(?: (\d{4}))?,? (?:kl\.? )?(\d{1,2})[.:](\d{2})")
# An event page's path carries the event's date: /aktuellt/handelser/2026/mars/17/...
_URL_DATE = re.compile(r"/(\d{4})/([a-zåäö]+)/(\d{1,2})/")
# Elements that start a new paragraph of the body text.
_BLOCKS = frozenset({
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "table", "tr",
    "blockquote", "pre", "section", "article", "header", "footer", "figure", "hr",
})  # fmt: skip
_AUTHOR_LABEL = "Text av"
_PUBLISHED_LABEL = "Publicerad"

PARSER_VERSION = 1
"""The version of what parse_page gives. Stored with every page version's parsed fields
(pages/store.py): a stored parse of an older version is parsed again, so bump it whenever a
change here changes any field of any page (tests/test_page_parse.py pins the output on the
recorded pages to this number)."""


@dataclass(frozen=True)
class ParsedPage:
    """The event as its page tells it. All fields are None, and `reason` says why, when the page
    did not parse; `reason` is None when it did."""

    title: str | None = None
    preamble: str | None = None
    body: str | None = None
    author: str | None = None
    published: str | None = None
    reason: str | None = None


def _unparsed(reason: str) -> ParsedPage:
    return ParsedPage(reason=reason)


@functools.cache
def _stockholm_zone() -> tzinfo | None:
    """Swedish time, or None on a system without time zone data (the `tzdata` package provides it)."""
    try:
        return ZoneInfo("Europe/Stockholm")
    except ZoneInfoNotFoundError:
        return None


def swedish_datetime(text: str, after: date | None = None) -> datetime | None:
    """A time as the site writes it ("17 mars 10.34", "5 juni 2026 23.10") in Stockholm time.

    Without a year in the text, the year is that of the first such day on or after `after`
    (an event is published on or after its own date). None if unreadable, the year unknown or
    the system has no time zone data.
    """
    zone = _stockholm_zone()
    match = _SWEDISH_TIME.fullmatch(" ".join(text.split()).lower())
    if zone is None or match is None or match[2] not in SWEDISH_MONTHS:
        return None
    day, month = int(match[1]), SWEDISH_MONTHS[match[2]]
    if match[3]:
        year = int(match[3])
    elif after is not None:
        year = after.year + ((month, day) < (after.month, after.day))
    else:
        return None
    try:
        return datetime(year, month, day, int(match[4]), int(match[5]), tzinfo=zone)
    except ValueError:
        return None


def content_fingerprint(page: ParsedPage) -> str:
    """SHA-256 over the parsed fields: two fetches of a page are the same version when it is equal.

    The raw HTML differs on every request (tokens), so it cannot tell versions apart. Every page
    that does not parse has the same fingerprint, whatever the reason: one "unparsed" version.
    """
    fields = [page.title, page.preamble, page.body, page.author, page.published]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_page(html: bytes) -> ParsedPage:
    """The event fields of a page's HTML (UTF-8 bytes as served); never raises."""
    if not html.strip():
        return _unparsed("empty page")
    reader = _EventPageReader()
    try:
        # No close(): everything we read lies well before </html>, and close()'s end-of-file
        # handling is quadratic on unclosed tags in older Pythons (48 KB of "<a " took 13 s on 3.11.7).
        reader.feed(html.decode("utf-8", errors="replace"))
    except AssertionError as error:  # html.parser's verdict on malformed <! declarations
        return _unparsed(f"malformed HTML: {error}")
    return reader.result()


def _one_line(chunks: list[str]) -> str:
    return " ".join("".join(chunks).split())


def _paragraphs(chunks: list[str]) -> str:
    """Text with a blank line between paragraphs and a newline for <br>, spaces collapsed."""
    lines = (" ".join(line.split()) for line in "".join(chunks).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _Capture:
    """The text of one element being read: its chunks, and how to know where it ends."""

    def __init__(self, field: str, end_tag: str, div_depth: int) -> None:
        self.field = field
        self.end_tag = end_tag
        self.div_depth = div_depth
        self.chunks: list[str] = []
        self.time_attribute: str | None = None
        self.time_chunks: list[str] | None = None


class _EventPageReader(HTMLParser):
    """Collects the event block's parts; counts <div> depth because divs are always closed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.canonical_url: str | None = None
        self.div_depth = 0
        self.event_depth: int | None = None
        self.event_closed = False
        self.in_script = False
        self.capture: _Capture | None = None
        self.fields: dict[str, str] = {}
        self.meta_blocks: list[_Capture] = []
        self.in_time = False

    def inside_event(self) -> bool:
        return self.event_depth is not None and not self.event_closed

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        classes = attributes.get("class", "").split()
        if tag in ("script", "style"):
            self.in_script = True
        if tag == "link" and attributes.get("rel") == "canonical" and self.canonical_url is None:
            self.canonical_url = attributes.get("href")
        if tag == "div":
            self.div_depth += 1
            if self.event_depth is None and "event-page" in classes:
                self.event_depth = self.div_depth
                return
        if not self.inside_event():
            return
        capture = self.capture
        if capture is None:
            self.start_capture(tag, classes)
        elif tag == "br":
            capture.chunks.append("\n")
        elif tag in _BLOCKS:
            capture.chunks.append("\n\n")
        elif tag == "time" and capture.field == "meta" and capture.time_chunks is None:
            capture.time_attribute = attributes.get("datetime")
            capture.time_chunks = []
            self.in_time = True

    def start_capture(self, tag: str, classes: list[str]) -> None:
        if tag == "h1" and "title" not in self.fields:
            self.capture = _Capture("title", "h1", self.div_depth)
        elif tag == "p" and "preamble" in classes and "preamble" not in self.fields:
            self.capture = _Capture("preamble", "p", self.div_depth)
        elif tag == "div" and "text-body" in classes and "body" not in self.fields:
            self.capture = _Capture("body", "div", self.div_depth)
        elif tag == "div" and "published-container" in classes:
            self.capture = _Capture("meta", "div", self.div_depth)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.in_script = False
        capture = self.capture
        if capture is not None:
            if tag == capture.end_tag and (tag != "div" or self.div_depth == capture.div_depth):
                self.finish_capture(capture)
            elif tag == "time":
                self.in_time = False
            elif tag in _BLOCKS:
                capture.chunks.append("\n\n")
        if tag == "div":
            if self.div_depth == self.event_depth and not self.event_closed:
                self.event_closed = True
            self.div_depth = max(0, self.div_depth - 1)

    def finish_capture(self, capture: _Capture) -> None:
        self.capture = None
        self.in_time = False
        if capture.field == "meta":
            self.meta_blocks.append(capture)
        elif capture.field == "body":
            self.fields["body"] = _paragraphs(capture.chunks)
        else:
            self.fields[capture.field] = _one_line(capture.chunks)

    def handle_data(self, data: str) -> None:
        if self.in_script or self.capture is None:
            return
        # Source line breaks and &nbsp; are spaces in HTML; only <br> and blocks break lines.
        text = re.sub(r"\s+", " ", data)
        self.capture.chunks.append(text)
        if self.in_time and self.capture.time_chunks is not None:
            self.capture.time_chunks.append(text)

    def result(self) -> ParsedPage:
        if self.event_depth is None:
            return _unparsed("no event block (div.event-page)")
        if not self.event_closed:
            return _unparsed("event block cut off (div.event-page not closed)")
        if not self.fields.get("title"):
            return _unparsed("no title (h1)")
        if "body" not in self.fields:
            return _unparsed("no body text block (div.text-body)")
        author = published = None
        for block in self.meta_blocks:
            text = _one_line(block.chunks)
            if text.startswith(_AUTHOR_LABEL) and author is None:
                author = text.removeprefix(_AUTHOR_LABEL).strip() or None
            elif text.startswith(_PUBLISHED_LABEL) and published is None:
                published = self.published_time(block, text.removeprefix(_PUBLISHED_LABEL))
                if published is None:
                    return _unparsed(f"publication time unreadable: {text!r}")
        if published is None:
            return _unparsed("no publication time (Publicerad)")
        return ParsedPage(
            title=self.fields["title"],
            preamble=self.fields.get("preamble"),
            body=self.fields["body"],
            author=author,
            published=published,
        )

    def published_time(self, block: _Capture, text_after_label: str) -> str | None:
        """ISO 8601 in Stockholm time, from the <time datetime> the site writes, else from the
        Swedish text, whose missing year comes from the event's date in the page's URL."""
        zone = _stockholm_zone()
        attribute = block.time_attribute or ""
        if ":" in attribute:  # a date and a time; a bare date would pass as midnight
            try:
                moment = datetime.fromisoformat(attribute)
                if moment.tzinfo is None:
                    return moment.replace(tzinfo=zone).isoformat(timespec="seconds") if zone else None
                return (moment.astimezone(zone) if zone else moment).isoformat(timespec="seconds")
            except (ValueError, OverflowError):
                pass
        text = _one_line(block.time_chunks) if block.time_chunks else text_after_label
        written = swedish_datetime(text, self.event_date())
        return written.isoformat(timespec="seconds") if written else None

    def event_date(self) -> date | None:
        match = _URL_DATE.search(self.canonical_url or "")
        if match is None or match[2] not in SWEDISH_MONTHS:
            return None
        try:
            return date(int(match[1]), SWEDISH_MONTHS[match[2]], int(match[3]))
        except ValueError:
            return None
