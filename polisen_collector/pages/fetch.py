"""Polite HTTP client of the event pages on polisen.se: paced, identified, compressed, bounded.

One request at a time, at least `interval` seconds apart (PAGE_INTERVAL_SECONDS, 0 only when
API_RATE_LIMIT is off for a loopback site), with the collector's User-Agent and contact,
gzip, and conditional GET. The API client's guards hold here too: each redirect is checked
(https, plain http only for loopback) and a whole answer must come within a deadline, however
slowly its bytes trickle in. No retries within a run: a page that fails stays queued and
is tried again on a later run (pages/queue.py), so one bad page never holds a run up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from polisen_collector.api.client import (
    ApiError,
    BodyBroken,
    BodyTooLarge,
    Deadline,
    DeadlineHit,
    GuardedAdapter,
    answer_deadline,
    read_capped,
    user_agent,
)

log = logging.getLogger("polisen.pages")

MAX_REDIRECTS = 3


class PageError(Exception):
    """A page request gave no usable answer (connection, timeout, too large, broken body)."""


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


class PageClient:
    """Fetches event pages from one origin. One instance per run; not thread-safe."""

    def __init__(self, options: PageOptions, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.options = options
        self._clock = clock
        self._sleep = sleep
        self._last_request: float | None = None
        self._deadline = Deadline(answer_deadline(options.connect_timeout, options.read_timeout))
        self.session = requests.Session()
        self.session.max_redirects = MAX_REDIRECTS
        adapter = GuardedAdapter(lambda _: self._deadline.arm(), self._deadline)
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
        parts = urlsplit(path)
        if not path.startswith("/") or path.startswith("//") or parts.scheme or parts.netloc:
            raise PageError(f"not a path on the site: {path!r}")
        return self.options.origin.rstrip("/") + path

    def _pace(self) -> None:
        if self._last_request is not None:
            wait = self._last_request + self.options.interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request = self._clock()

    def fetch(self, path: str, etag: str | None = None, last_modified: str | None = None) -> PageResponse:
        """GET one page, conditionally when validators are given; PageError when it cannot."""
        url = self.url_of(path)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self._pace()
        try:
            response = self.session.get(url, headers=headers, stream=True,
                                        timeout=(self.options.connect_timeout, self.options.read_timeout))
        except ApiError as refused:  # a redirect off the rules
            raise PageError(f"{url}: {refused}") from None
        except requests.exceptions.RequestException as error:
            raise PageError(f"{url}: {self._too_slow() or type(error).__name__}") from None
        try:
            with response:
                answer = PageResponse(status=response.status_code, etag=response.headers.get("ETag"),
                                      last_modified=response.headers.get("Last-Modified"))
                if response.status_code == 200:
                    answer.body = self._read_body(url, response)
                answer.bytes_wire = response.raw.tell()
                return answer
        finally:
            self._deadline.disarm()

    def _too_slow(self) -> str | None:
        if not self._deadline.hit:
            return None
        return f"the answer took longer than {self._deadline.seconds:g} s (API_CONNECT_TIMEOUT + 2 x API_READ_TIMEOUT)"

    def _read_body(self, url: str, response: requests.Response) -> bytes:
        limit = self.options.max_bytes
        try:
            return read_capped(response, limit, self._deadline)
        except BodyTooLarge as error:
            raise PageError(f"{url}: {error.refusal('page', 'PAGE_MAX_BYTES', limit)}") from None
        except BodyBroken as error:
            raise PageError(f"{url}: {error}") from None
        except DeadlineHit:
            raise PageError(f"{url}: {self._too_slow()}") from None
