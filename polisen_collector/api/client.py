"""HTTP client of the Polisen events API: polite, compressed, retried, bounded.

Transport retries (connection errors, read timeouts, 429, 5xx) are urllib3's Retry on a
requests Session. A 200 with an empty or non-JSON body, which the real API has served, is
retried from the same budget by fetch_events.

Every request actually sent passes `_before_request`, where the optional rate limiter
(rate_limit.py) may hold it back: first attempts and requests-level redirects through the
adapter's `send`, urllib3's own retries through `Retry.sleep`, which urllib3 calls right
before each retry, in place of its own time.sleep.

Hostile answers (docs/operations.md, "Hostile input"): every redirect hop must be https
(plain http only for loopback hosts), like POLISEN_API_URL, and redirects are followed here
(`get_following`), a redirect's body never read; a fetch, its redirects and retries included,
must be answered within one deadline (connect timeout + 2 x read timeout) of time on the
wire, however slowly it trickles (a watchdog shuts the sockets down; the waits before a
retry do not count); an unusable Retry-After is ignored; a 304 to a request that sent no
validators, or a body that is not UTF-8 JSON, is a bad answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3 import BaseHTTPResponse, HTTPConnectionPool
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.util.retry import Retry

from polisen_collector import __version__
from polisen_collector.clock import utc_now
from polisen_collector.messages import one_line
from polisen_collector.urls import is_loopback_host, origin_key

log = logging.getLogger("polisen.api")

RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3


class ApiError(Exception):
    """The API could not give a usable answer; the message is meant for an operator.

    `retries` and `requests` say what the failed fetch cost, for the run's metrics.
    """

    retries: int = 0
    requests: int = 0


@dataclass
class ApiOptions:
    url: str
    contact_email: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 3
    backoff_factor: float = 1.0
    retry_after_max: float = 120.0
    max_body_bytes: int = 20_000_000

    @property
    def deadline(self) -> float:
        return answer_deadline(self.connect_timeout, self.read_timeout)

    def backoff(self, retry: int) -> float:
        """The wait before retry number `retry` (1, 2, 3 ...): factor x 1, 2, 4 ..., at most two minutes."""
        return min(Retry.DEFAULT_BACKOFF_MAX, self.backoff_factor * 2 ** (retry - 1)) if retry >= 1 else 0.0


@dataclass
class FetchResult:
    """One answer of the API. `events` is None when the server said 304 Not Modified."""

    events: list[Any] | None
    status: int
    bytes_wire: int = 0
    bytes_decoded: int = 0
    etag: str | None = None
    last_modified: str | None = None
    retries: int = 0
    requests: int = 0
    served_at: datetime | None = None
    """The server's `Date`: when the answer was current, on the clock the events' times use."""


@dataclass
class _RetryLog:
    """Counts retries across urllib3's immutable Retry copies."""

    count: int = 0


def user_agent(contact_email: str) -> str:
    contact = contact_email or "no contact configured"
    return f"polisen-events-collector/{__version__} (+{contact}) python-requests/{requests.__version__}"


def answer_deadline(connect_timeout: float, read_timeout: float) -> float:
    """Seconds a whole answer may take, however slowly its bytes trickle in."""
    return connect_timeout + 2 * read_timeout


class Deadline:
    """The time limit of one request, its redirects and retries included.

    `start` gives a request its seconds; the clock runs only while the request is out
    (`resume`), not during the waits before a retry or the pacing before a page (`pause`).
    Past the limit the sockets of the client's connections are shut down, so a read blocked
    on a trickling server (headers or body) returns at once. `hit` says whether it ran out;
    `cut_short` whether the limit was lowered below `seconds` (a step's time running out).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.limit = seconds
        self.left = seconds
        self.connections: set[Any] = set()
        self.hit = False
        self._timer: threading.Timer | None = None
        self._since = 0.0

    @property
    def cut_short(self) -> bool:
        return self.limit < self.seconds

    def start(self, seconds: float | None = None) -> None:
        """A new request: the whole limit (or `seconds`, when less), not yet running."""
        self.pause()
        self.limit = self.seconds if seconds is None else min(self.seconds, max(seconds, 0.0))
        self.left = self.limit
        self.hit = False

    def resume(self) -> bool:
        """Run the clock while a request is out; False (and `hit`) when no time is left for it."""
        if self._timer is not None:
            return True
        if self.left <= 0:
            self.hit = True
            return False
        self._since = time.monotonic()
        self._timer = threading.Timer(self.left, self.hang_up)
        self._timer.daemon = True
        self._timer.start()
        return True

    def pause(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self.left -= time.monotonic() - self._since

    def hang_up(self) -> None:
        """Run out now: shut down the sockets of the client's connections (from the timer, or a stop)."""
        self.hit = True
        for connection in list(self.connections):
            _shut_down(connection)


def _shut_down(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def get_following(session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
    """GET `url` (streamed), following at most MAX_REDIRECTS redirects here rather than in
    requests: a redirect's body is never read (it could be endless or a gzip bomb), and each
    hop goes out through the session's adapter, which checks it and keeps the one deadline.
    `params` go with the first request only, as a redirect's Location is a whole URL."""
    hops = 0
    while True:
        response = session.get(url, allow_redirects=False, stream=True, **kwargs)
        target = session.get_redirect_target(response)
        if target is None:
            return response
        response.close()
        if hops == MAX_REDIRECTS:
            raise requests.exceptions.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", response=response)
        hops += 1
        url = urljoin(response.url, requote_uri(target))
        kwargs.pop("params", None)


class PolisenClient:
    """Fetches the events feed. One instance per run; not thread-safe."""

    def __init__(self, options: ApiOptions, sleep: Callable[[float], None] = time.sleep, limiter: Any = None) -> None:
        parts = urlsplit(options.url)
        if parts.scheme != "https" and parts.scheme != "http":
            raise ApiError(f"unsupported URL scheme in {options.url}")
        self.options = options
        self._sleep = sleep
        self.limiter = limiter
        self._headroom = 0
        self._pending_wait = 0.0
        self._deadline = Deadline(options.deadline)
        self._retry_log = _RetryLog()
        self._stopped: BaseException | None = None
        self.session = requests.Session()
        self.session.headers.update(
            {
                "User-Agent": user_agent(options.contact_email),
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
            }
        )

    def abort(self, reason: BaseException) -> None:
        """Stop now: the fetch under way, however far it got, and every later one raise `reason`
        (a signal's Interrupted, interrupt.on_stop). Its sockets are shut down, so a read blocked
        on the server returns at once rather than at the deadline. Safe in a signal handler and
        from another thread: it sets a flag and makes system calls."""
        self._stopped = reason
        self._deadline.hang_up()

    def _before_request(self, min_wait: float) -> None:
        """Wait for the backoff and, when rate limited, for a free slot in the ledger; then run
        the fetch's deadline again (the waits do not count), or fail when it is spent."""
        if self._stopped is not None:
            raise self._stopped
        self._deadline.pause()
        min_wait = max(min_wait, self._pending_wait)
        self._pending_wait = 0.0
        if self.limiter is not None:
            self.limiter.acquire(min_wait, headroom=self._headroom)
        elif min_wait > 0:
            self._sleep(min_wait)
        cut = self._deadline.hit  # the request before this one ran into it
        if not self._deadline.resume():
            raise self._deadline_error("its headers were not complete" if cut else "redirects and retries included")

    def _deadline_error(self, received: str) -> ApiError:
        return ApiError(
            f"the answer took longer than {self.options.deadline:g} s (API_CONNECT_TIMEOUT + 2 x "
            f"API_READ_TIMEOUT; {received}): the server sends too slowly, gave up"
        )

    def _retry(self, budget: int) -> Retry:
        retry_log = self._retry_log
        client = self

        class LoggedRetry(Retry):
            def get_backoff_time(self) -> float:
                """1, 2, 4 s (x factor) from the first retry on; urllib3 itself waits 0 s before the first."""
                return client.options.backoff(retry_log.count)

            def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
                """The answer's Retry-After (up to API_RETRY_AFTER_MAX); None when absent or unusable,
                so the normal backoff applies (urllib3 would raise on `-5` or `nan`)."""
                seconds = _asked_wait(response)
                return None if seconds is None else min(seconds, self.retry_after_max)

            def sleep(self, response: BaseHTTPResponse | None = None) -> None:
                wait = self.get_retry_after(response) if response is not None else None
                client._before_request(wait if wait is not None else self.get_backoff_time())

            def increment(self, method: str | None = None, url: str | None = None,
                          response: BaseHTTPResponse | None = None, error: Exception | None = None,
                          _pool: ConnectionPool | None = None, _stacktrace: TracebackType | None = None) -> Self:
                asked = _asked_wait(response) if response is not None else None
                if response is not None and response.status == 429 and client.limiter is not None and asked is not None:
                    client.limiter.defer(asked)
                new = super().increment(method, url, response, error, _pool, _stacktrace)
                reason = f"HTTP {response.status}" if response is not None else type(error).__name__
                header = response.headers.get("Retry-After") if response is not None else None
                if header is not None and asked is None:
                    reason += f"; its Retry-After {one_line(header)!r} is unusable"
                wait = new.get_retry_after(response) if response is not None else None
                retry_log.count += 1
                log.warning(
                    "API request failed (%s); retry %d of %d in %.1f s",
                    reason, len(new.history), budget,
                    wait if wait is not None else new.get_backoff_time(),
                )
                return new

        return LoggedRetry(
            total=budget,
            connect=budget,
            read=budget,
            status=budget,
            other=0,
            redirect=3,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.options.backoff_factor,
            respect_retry_after_header=True,
            retry_after_max=int(self.options.retry_after_max),
            raise_on_status=False,
        )

    def close(self) -> None:
        self.session.close()

    def fetch_events(
        self,
        params: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        headroom: int = 0,
    ) -> FetchResult:
        """GET the feed and return its JSON array, retrying bad bodies like failed requests.

        `headroom` requests of the hourly and daily budgets are left untouched (backfill).
        """
        headers = {}
        self._headroom = headroom
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self._retry_log = _RetryLog()
        self._deadline.start()
        requests_sent = 0
        while True:
            budget = self.options.max_retries - self._retry_log.count
            self._mount(budget)
            before = self._retry_log.count
            try:
                result = self._get_once(params, headers)
            except ApiError as error:
                if self._stopped is not None:  # cut short by abort: not the API's failure
                    raise self._stopped from None
                error.retries = self._retry_log.count
                error.requests = requests_sent + 1 + self._retry_log.count - before
                raise
            except _BadBody as bad:
                if self._stopped is not None:
                    raise self._stopped from None
                requests_sent += 1 + self._retry_log.count - before
                if self._retry_log.count >= self.options.max_retries:
                    failure = ApiError(f"{bad} (after {self._retry_log.count} retries)")
                    failure.retries, failure.requests = self._retry_log.count, requests_sent
                    raise failure from None
                self._retry_log.count += 1
                wait = self.options.backoff(self._retry_log.count)
                log.warning(
                    "API response unusable (%s); retry %d of %d in %.1f s",
                    bad, self._retry_log.count, self.options.max_retries, wait,
                )
                self._pending_wait = wait
                continue
            finally:
                self._deadline.pause()
            requests_sent += 1 + self._retry_log.count - before
            result.retries = self._retry_log.count
            result.requests = requests_sent
            return result

    def _mount(self, budget: int) -> None:
        adapter = GuardedAdapter(self._before_request, self._deadline, max_retries=self._retry(max(budget, 0)))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def _get_once(self, params: dict[str, str] | None, headers: dict[str, str]) -> FetchResult:
        url = self.options.url
        try:
            response = get_following(self.session, url, params=params, headers=headers,
                                     timeout=(self.options.connect_timeout, self.options.read_timeout))
        except requests.exceptions.RequestException as error:
            raise self._request_error(url, error) from None
        if self._deadline.hit:  # its headers were cut short, and may look like a whole answer
            response.close()
            raise self._deadline_error("its headers were not complete")
        with response:
            if response.status_code == 304 and not headers:
                raise _BadBody("HTTP 304 Not Modified to a request that sent no validators")
            if response.status_code == 304:
                return FetchResult(events=None, status=304, bytes_wire=response.raw.tell(),
                                   etag=response.headers.get("ETag") or headers.get("If-None-Match"),
                                   last_modified=response.headers.get("Last-Modified"))
            if response.status_code != 200:
                hint = " (the API asks us to slow down)" if response.status_code == 429 else ""
                tries = f" after {self._retry_log.count} retries" if self._retry_log.count else ""
                raise ApiError(f"{url} answered HTTP {response.status_code} {response.reason}{hint}{tries}")
            body = self._read_body(response)
            events = _decode(body)
            return FetchResult(
                events=events,
                status=200,
                bytes_wire=response.raw.tell(),
                bytes_decoded=len(body),
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                served_at=http_date(response.headers.get("Date")),
            )

    def _request_error(self, url: str, error: requests.exceptions.RequestException) -> ApiError:
        """The one line for a request that got no answer."""
        if self._deadline.hit:
            return self._deadline_error("its headers were not complete")
        if isinstance(error, requests.exceptions.RetryError):
            return ApiError(f"{url} kept failing: {_last_reason(error)}")
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return ApiError(f"cannot connect to {url}: connection timed out")
        if isinstance(error, requests.exceptions.ConnectionError):
            return ApiError(f"cannot reach {url}: {_last_reason(error)}")
        if isinstance(error, requests.exceptions.Timeout):
            return ApiError(f"{url} did not answer within {self.options.read_timeout} s")
        return ApiError(f"request to {url} failed: {error}")

    def _read_body(self, response: requests.Response) -> bytes:
        """The decoded body, within the size cap and the request's deadline."""
        limit = self.options.max_body_bytes
        try:
            return read_capped(response, limit, self._deadline)
        except BodyTooLarge as error:
            raise ApiError(error.refusal("response", "API_MAX_BODY_BYTES", limit)) from None
        except BodyBroken as error:
            raise _BadBody(str(error)) from None
        except DeadlineHit as hit:
            raise self._deadline_error(f"{hit.received} bytes of its body had arrived") from None


class BodyTooLarge(Exception):
    """A body over its size cap; `declared` is the Content-Length that said so in advance, if any."""

    def __init__(self, declared: int | None) -> None:
        super().__init__(f"body larger than allowed (declared {declared})" if declared else "body larger than allowed")
        self.declared = declared

    def refusal(self, what: str, setting: str, limit: int) -> str:
        """The one line for the operator: `what` (a response, a page) over `setting`=limit."""
        if self.declared is not None:
            return f"{what} of {self.declared} bytes is larger than {setting}={limit}"
        return f"{what} exceeds {setting}={limit} once decompressed; refused"


class BodyBroken(Exception):
    """The body's stream broke off (a reset, a bad gzip stream) after `received` decoded bytes."""

    def __init__(self, received: int, cause: BaseException) -> None:
        super().__init__(f"body broken off after {received} bytes: {type(cause).__name__}")
        self.received = received


class DeadlineHit(Exception):
    """The request's deadline ran out (its sockets shut down) after `received` decoded bytes of the body."""

    def __init__(self, received: int) -> None:
        super().__init__(f"deadline hit after {received} bytes")
        self.received = received


def read_capped(response: requests.Response, limit: int, deadline: Deadline) -> bytes:
    """The decoded body of a streamed response, refused past `limit` bytes before anything is held,
    and DeadlineHit when `deadline` ran out while it came (the stream broke off, or ended early).

    A declared length over the limit is refused at once (unless compressed: the cap is on the
    decoded size, which a gzip bomb's header does not tell).
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and "Content-Encoding" not in response.headers and int(declared) > limit:
        raise BodyTooLarge(int(declared))
    chunks = []
    size = 0
    try:
        # read1: whatever has arrived (up to a chunk), so `size` counts the bytes of a body cut
        # off by the deadline; read() would lose those of the chunk it was filling.
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(None)
            chunks.append(chunk)
    except (Urllib3HTTPError, OSError) as error:
        raise DeadlineHit(size) if deadline.hit else BodyBroken(size, error) from None
    if deadline.hit:
        raise DeadlineHit(size)
    return b"".join(chunks)


class GuardedAdapter(HTTPAdapter):
    """An adapter that checks every hop (redirects included: https, plain http only for loopback;
    with `origin`, nowhere but that scheme, host and port), lets the client hold back each
    request it sends (`before_request`, which runs the deadline), and keeps the client's open
    connections, whose sockets the deadline may shut down."""

    def __init__(self, before_request: Callable[[float], None], deadline: Deadline, *, origin: str | None = None,
                 **kwargs: Any) -> None:
        self._before_request = before_request
        self._deadline = deadline
        self._origin = origin
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            scheme: _tracking_pool(pool_class, self._deadline)
            for scheme, pool_class in self.poolmanager.pool_classes_by_scheme.items()
        }

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        _check_hop(str(request.url), self._origin)
        self._before_request(0.0)
        return super().send(request, **kwargs)


def http_date(value: str | None) -> datetime | None:
    """An HTTP date header as an aware datetime; None when absent or unreadable."""
    try:
        stamp = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return stamp if stamp is not None and stamp.tzinfo is not None else None


def _check_hop(url: str, origin: str | None = None) -> None:
    """Every request, redirects included, obeys the rule of POLISEN_API_URL: https, http only for
    loopback; with `origin` (the pages' site), it goes to that scheme, host and port only."""
    if origin is not None:
        if origin_key(url) != origin_key(origin):
            raise ApiError(f"refused to follow a redirect to {one_line(url)}: it leaves the site {origin}")
        return
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return
    raise ApiError(f"refused to follow a redirect to {one_line(url)}: polisen.se must be reached over https "
                   "(plain http only for loopback hosts)")


def _tracking_pool(pool_class: type[HTTPConnectionPool], deadline: Deadline) -> type[HTTPConnectionPool]:
    """A urllib3 pool class whose connections enter the deadline's `connections` when they connect
    (and are shut down at once when it ran out while they connected)."""
    connections = deadline.connections
    base = pool_class.ConnectionCls  # a class known only here, so the subclass is made with type()

    def connect(self: Any) -> None:
        connections.add(self)
        base.connect(self)
        if deadline.hit:
            _shut_down(self)

    def close(self: Any) -> None:
        connections.discard(self)
        base.close(self)

    # urllib3's errors name the connection's class: the operator reads HTTPSConnection, as without tracking
    tracked = type(base.__name__, (base,), {"connect": connect, "close": close})
    return type(f"Tracked{pool_class.__name__}", (pool_class,), {"ConnectionCls": tracked})


MAX_RETRY_AFTER_DIGITS = 9
"""A Retry-After of more digits (over 31 years) is read as this many nines: every user caps it anyway."""


def retry_after_seconds(value: str | None, served_at: datetime | None = None) -> float | None:
    """The seconds a Retry-After header asks to wait: whole seconds, or an HTTP date counted from
    the answer's own `Date` (`served_at`: the server's clock; ours when it sent none). None when
    absent or unusable (`-5`, `1e10`, `nan`, empty, garbage): the caller's normal backoff applies."""
    text = (value or "").strip()
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        return float(int(digits) if len(digits) <= MAX_RETRY_AFTER_DIGITS else 10 ** MAX_RETRY_AFTER_DIGITS - 1)
    when = http_date(text)
    if when is None:
        return None
    return max(0.0, (when - (served_at or utc_now())).total_seconds())


def _asked_wait(response: Any) -> float | None:
    """The seconds a response's Retry-After asks for, counted from its own Date; None when unusable."""
    return retry_after_seconds(response.headers.get("Retry-After"), http_date(response.headers.get("Date")))


class _BadBody(Exception):
    """A 200 whose body is not an events array: worth retrying."""


def _decode(body: bytes) -> list[Any]:
    if not body.strip():
        raise _BadBody("empty body")
    try:
        document = json.loads(body)
    except UnicodeDecodeError as error:
        raise _BadBody(f"body is not UTF-8 text ({error.reason} at byte {error.start} of {len(body)})") from None
    except json.JSONDecodeError as error:
        # json's own words may end in "at" ("Unterminated string starting at"): the position follows once
        raise _BadBody(f"invalid JSON ({error.msg.removesuffix(' at')} at byte {error.pos} of {len(body)})") from None
    except RecursionError:
        raise _BadBody(f"invalid JSON (arrays or objects nested too deeply, {len(body)} bytes)") from None
    if not isinstance(document, list):
        raise _BadBody(f"JSON is a {type(document).__name__}, not an array of events")
    return document


def _last_reason(error: Exception) -> str:
    """The innermost cause of a requests/urllib3 error, in a few words."""
    reason: BaseException = error
    while True:
        inner = getattr(reason, "reason", None)
        if inner is None and reason.args and isinstance(reason.args[0], BaseException):
            inner = reason.args[0]
        if not isinstance(inner, BaseException) or inner is reason:
            break
        reason = inner
    return one_line(str(reason))

