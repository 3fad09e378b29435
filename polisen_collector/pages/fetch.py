"""Polite HTTP client of the event pages on polisen.se: paced, identified, compressed, bounded.

One request at a time, at least `interval` seconds apart (PAGE_INTERVAL_SECONDS, 0 only when
API_RATE_LIMIT is off for a loopback site), with the collector's User-Agent and contact,
gzip, and conditional GET. The API client's guards hold here too, tighter: a request never
leaves the origin (scheme, host and port; a redirect elsewhere is refused, its body never
read), and a whole answer, its redirects included, must come within one deadline, however
slowly its bytes trickle in, and within what is left of the page step's time. No retries
within a run: a page that fails stays queued and is tried again on a later run
(pages/queue.py), not before the site's Retry-After, so one bad page never holds a run up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from polisen_collector.api.client import (
    ApiError,
    BodyBroken,
    BodyTooLarge,
    Deadline,
    DeadlineHit,
    GuardedAdapter,
    answer_deadline,
    get_following,
    http_date,
    read_capped,
    retry_after_seconds,
    user_agent,
)
from polisen_collector.urls import site_url

log = logging.getLogger("polisen.pages")


class PageError(Exception):
    """A page request gave no usable answer (connection, timeout, too large, broken body).

    `time_up`: the page step's time ran out while it came, which is not the page's fault."""

    def __init__(self, message: str, *, time_up: bool = False) -> None:
        super().__init__(message)
        self.time_up = time_up


@dataclass
class PageOptions:
    origin: str
    contact_email: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    interval: float = 1.0
    max_bytes: int = 2_000_000


@dataclass
class PageResponse:
    """One answer: `body` is the decoded HTML of a 200, empty otherwise."""

    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    bytes_wire: int = 0
    retry_after: float | None = None
    """Seconds the site's Retry-After asks to wait (counted from its Date); None: none, or unusable."""


class PageClient:
    """Fetches event pages from one origin. One instance per run; not thread-safe."""

    def __init__(self, options: PageOptions, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self._clock = clock
        self._sleep = sleep
        self._last_request: float | None = None
        self._deadline = Deadline(answer_deadline(options.connect_timeout, options.read_timeout))
        self._stopped: BaseException | None = None
        self.requests_sent = 0
        """Requests that went out (redirects included): whether a stop came before a page's request or during it."""
        self.session = requests.Session()
        adapter = GuardedAdapter(self._before_request, self._deadline, origin=options.origin)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({
            "User-Agent": user_agent(options.contact_email),
            "Accept": "text/html",
            "Accept-Encoding": "gzip, deflate",
        })

    def close(self) -> None:
        self.session.close()

    def url_of(self, path: str) -> str:
        """The page's absolute URL; only paths on the origin (never another host)."""
        url = site_url(self.options.origin, path)
        if url is None:
            raise PageError(f"not a path on the site: {path!r}")
        return url

    def abort(self, reason: BaseException) -> None:
        """Stop now, as PolisenClient.abort does: the page on the wire and every later one raise `reason`."""
        self._stopped = reason
        self._deadline.hang_up()

    def _before_request(self, _wait: float) -> None:
        if self._stopped is not None:
            raise self._stopped
        self.requests_sent += 1
        if not self._deadline.resume():
            raise PageError(self._too_slow() or "no time left", time_up=self._deadline.cut_short)

    def _pace(self) -> None:
        if self._last_request is not None:
            wait = self._last_request + self.options.interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request = self._clock()

    def fetch(self, path: str, etag: str | None = None, last_modified: str | None = None, *,
              time_left: float | None = None) -> PageResponse:
        """GET one page, conditionally when validators are given; PageError when it cannot.

        `time_left`: what remains of the page step's time, when less than the deadline."""
        url = self.url_of(path)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self._pace()
        self._deadline.start(time_left)
        try:
            return self._get(url, headers)
        except PageError:
            if self._stopped is not None:  # cut short by abort: not the page's failure
                raise self._stopped from None
            raise
        finally:
            self._deadline.pause()

    def _get(self, url: str, headers: dict[str, str]) -> PageResponse:
        """The request and its answer, within the deadline `fetch` started."""
        try:
            response = get_following(self.session, url, headers=headers,
                                     timeout=(self.options.connect_timeout, self.options.read_timeout))
        except ApiError as refused:  # a redirect off the site
            raise PageError(f"{url}: {refused}") from None
        except requests.exceptions.RequestException as error:
            raise self._error(url, type(error).__name__) from None
        if self._deadline.hit:  # its headers were cut short, and may look like a whole answer
            response.close()
            raise self._error(url, "")
        with response:
            answer = PageResponse(status=response.status_code, etag=response.headers.get("ETag"),
                                  last_modified=response.headers.get("Last-Modified"),
                                  retry_after=retry_after_seconds(response.headers.get("Retry-After"),
                                                                  http_date(response.headers.get("Date"))))
            if response.status_code == 200:
                answer.body = self._read_body(url, response)
            answer.bytes_wire = response.raw.tell()
            return answer

    def _too_slow(self) -> str | None:
        if not self._deadline.hit:
            return None
        if self._deadline.cut_short:
            return f"the page step's time ran out after {self._deadline.limit:.1f} s of this page"
        return f"the answer took longer than {self._deadline.seconds:g} s (API_CONNECT_TIMEOUT + 2 x API_READ_TIMEOUT)"

    def _error(self, url: str, otherwise: str) -> PageError:
        return PageError(f"{url}: {self._too_slow() or otherwise}", time_up=self._deadline.hit and self._deadline.cut_short)

    def _read_body(self, url: str, response: requests.Response) -> bytes:
        limit = self.options.max_bytes
        try:
            return read_capped(response, limit, self._deadline)
        except BodyTooLarge as error:
            raise PageError(f"{url}: {error.refusal('page', 'PAGE_MAX_BYTES', limit)}") from None
        except BodyBroken as error:
            raise PageError(f"{url}: {error}") from None
        except DeadlineHit as hit:
            raise self._error(url, f"{hit.received} bytes arrived") from None
