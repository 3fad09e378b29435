"""A local stand-in for polisen.se/api/events that replays recorded real answers over HTTP.

The test process drives it: `advance()` moves to the next snapshot, `faults` queues
misbehaviour for the next requests (as the real API has shown it, and hostile answers:
see `_Handler._fault`), `requests` logs what the collector sent and when (by `clock`,
which a test may replace with its own).
gzip and ETag/If-None-Match work like a real server's. `?DateTime=YYYY-MM-DD` (or
`YYYY-MM`) serves the events of that date from every snapshot up to the current one,
fetched or not, the newest version of each id, at most 500: what the real API had
published by then; an event an edit moved to another date is served on its new date only,
as the real API does. Each answer's `Date` header is read from `clock`; `follow_snapshots()`
sets that clock to the recorded time of the snapshot being served, so a collector that
judges outages by the server's time sees the recorded timeline. `with_late_publications()`
builds bodies in which chosen events (dated months back) ride in the feed for a few
snapshots only, as the real API published old-dated events late and withdrew them again.
`edit(id, ...)` changes an event's fields from a given snapshot on (a new `datetime` moves it
to another day).
`withdraw(id, ...)` takes events back from the feed and from `?DateTime=` (from now on, or from
a given snapshot on), `restore(...)` brings them back, and `drop_from_feed(...)` leaves them out
of the feed only, as the feed's jittering window does while `?DateTime=` still answers them.

The site's event pages are served at each event's `url` path (from tests/data/polisen-pages),
but only once the event appeared in a snapshot up to the current one, with an ETag of the
page's bytes and 304 for a matching If-None-Match. `pages` replaces a page's bytes (an edit
on the site), `page_status` forces an answer (404, 410, 500...) for an id.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SNAPSHOT_DIR = Path(__file__).resolve().parent / "data" / "polisen-snapshots"
PAGES_DIR = Path(__file__).resolve().parent / "data" / "polisen-pages"


def snapshot_paths(directory: Path = SNAPSHOT_DIR) -> list[Path]:
    return sorted(directory.glob("*.json.gz"))


def load_snapshot(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def snapshot_time(path: Path) -> float:
    """The recorded UTC time of a snapshot, from its name (`20260520T054943Z.json.gz`)."""
    return datetime.strptime(path.name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def with_late_publications(bodies: list[bytes], events: list[dict], served: range) -> list[bytes]:
    """`bodies` with `events` appended at the end of the answers in `served` (and only there)."""
    result = list(bodies)
    for index in served:
        answer = json.loads(result[index]) if result[index].strip() else []
        result[index] = json.dumps(answer + events, ensure_ascii=False).encode("utf-8")
    return result


@dataclass
class LoggedRequest:
    time: float
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0
    end: float = 0.0


@dataclass
class FakePolisenState:
    bodies: list[bytes]
    index: int = 0
    faults: deque = field(default_factory=deque)
    page_faults: deque = field(default_factory=deque)
    requests: list[LoggedRequest] = field(default_factory=list)
    latency: float = 0.0
    support_etag: bool = True
    clock: Callable[[], float] = time.time
    lock: threading.Lock = field(default_factory=threading.Lock)
    parsed: dict[int, list[dict]] = field(default_factory=dict)
    newest: dict[int, dict] = field(default_factory=dict)
    newest_upto: int = -1
    dated: dict[tuple[str, int, frozenset[int]], bytes] = field(default_factory=dict)
    pages: dict[int, bytes] = field(default_factory=dict)
    page_status: dict[int, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)
    published_upto: int = -1
    withdrawn: dict[int, int] = field(default_factory=dict)
    """Id -> the snapshot from which the API no longer serves it, in the feed or by date."""
    dropped: set[int] = field(default_factory=set)
    """Ids the feed leaves out while ?DateTime= still answers them."""
    edits: dict[int, tuple[int, dict]] = field(default_factory=dict)
    """Id -> (the snapshot from which it is served edited, the fields the edit changed)."""

    def gone(self, index: int) -> frozenset[int]:
        """The ids withdrawn as of snapshot `index`."""
        return frozenset(event_id for event_id, since in self.withdrawn.items() if index >= since)

    def feed_body(self, index: int) -> bytes:
        """Snapshot `index` as served: without the events withdrawn or dropped from the feed."""
        hidden = self.gone(index) | self.dropped
        edited = any(index >= since for since, _ in self.edits.values())
        if not (hidden or edited) or not self.bodies[index].strip():  # an empty body (a glitch) stays empty
            return self.bodies[index]
        events = [event for event in self.events_of(index) if event.get("id") not in hidden]
        return json.dumps(events, ensure_ascii=False).encode("utf-8")

    def page_id(self, path: str, upto: int) -> int | None:
        """The id of the event whose url is `path`, if it was published by snapshot `upto`."""
        if upto < self.published_upto:
            self.published, self.published_upto = {}, -1
        while self.published_upto < upto:
            self.published_upto += 1
            for event in self.events_of(self.published_upto):
                self.published[event["url"]] = event["id"]
        return self.published.get(path)

    def page_body(self, event_id: int) -> bytes | None:
        if event_id in self.pages:
            return self.pages[event_id]
        path = PAGES_DIR / f"{event_id}.html.gz"
        return gzip.decompress(path.read_bytes()) if path.exists() else None

    def events_of(self, index: int) -> list[dict]:
        if index not in self.parsed:
            body = self.bodies[index]
            events = json.loads(body) if body.strip() else []
            for event_id, (since, fields) in self.edits.items():
                if index >= since:
                    events = [{**event, **fields} if event.get("id") == event_id else event for event in events]
            self.parsed[index] = events
        return self.parsed[index]

    def newest_versions(self, upto: int) -> dict[int, dict]:
        """The newest version of each event the snapshots up to `upto` served (an edit may have changed its date)."""
        if upto < self.newest_upto:
            self.newest, self.newest_upto = {}, -1
        while self.newest_upto < upto:
            self.newest_upto += 1
            self.newest.update((event["id"], event) for event in self.events_of(self.newest_upto))
        return self.newest

    def events_dated(self, prefix: str, upto: int) -> bytes:
        """The newest version of each event whose date starts with prefix, newest id first, less the withdrawn."""
        gone = self.gone(upto)
        if (prefix, upto, gone) not in self.dated:
            self.dated[prefix, upto, gone] = self._events_dated(prefix, upto, gone)
        return self.dated[prefix, upto, gone]

    def _events_dated(self, prefix: str, upto: int, gone: frozenset[int]) -> bytes:
        latest = {event_id: event for event_id, event in self.newest_versions(upto).items()
                  if str(event.get("datetime")).startswith(prefix) and event_id not in gone}
        chosen = [latest[event_id] for event_id in sorted(latest, reverse=True)][:500]
        return json.dumps(chosen, ensure_ascii=False).encode("utf-8")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up mid-answer is part of the tests, not an error."""


class FakePolisenServer:
    """Serves `bodies[index]` at /api/events on 127.0.0.1 and a free port."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.state = FakePolisenState(bodies=list(bodies))
        handler = type("Handler", (_Handler,), {"fake": self.state})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/events"

    @property
    def site_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def page_requests(self) -> list[LoggedRequest]:
        return [r for r in self.state.requests if r.path != "/api/events"]

    def start(self) -> FakePolisenServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FakePolisenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def advance(self) -> None:
        self.state.index += 1

    def serve(self, index: int) -> None:
        self.state.index = index

    def follow_snapshots(self, times: list[float]) -> None:
        """Serve each snapshot as of its recorded time (`Date` header, request log)."""
        self.state.clock = lambda: times[min(self.state.index, len(times) - 1)]

    def withdraw(self, *ids: int, since: int | None = None) -> None:
        """Take events back, from the feed and from ?DateTime=, from snapshot `since` on (default: the current one)."""
        with self.state.lock:
            for event_id in ids:
                self.state.withdrawn[event_id] = self.state.index if since is None else since

    def restore(self, *ids: int) -> None:
        """Serve withdrawn or dropped events again."""
        with self.state.lock:
            for event_id in ids:
                self.state.withdrawn.pop(event_id, None)
                self.state.dropped.discard(event_id)

    def edit(self, event_id: int, since: int | None = None, **fields: object) -> None:
        """Serve an event with `fields` changed from snapshot `since` on (default: the current one), in
        the feed and by date: an edit (a new `datetime` moves it to another day)."""
        with self.state.lock:
            self.state.edits[event_id] = (self.state.index if since is None else since, fields)
            self.state.parsed.clear()
            self.state.dated.clear()
            self.state.newest, self.state.newest_upto = {}, -1

    def drop_from_feed(self, *ids: int) -> None:
        """Leave events out of the feed while ?DateTime= still answers them, as the feed's window jitters."""
        with self.state.lock:
            self.state.dropped.update(ids)

    def add_faults(self, *faults: str) -> None:
        """Queue faults, one per coming request (`none` lets one pass): see _Handler._fault."""
        self.state.faults.extend(faults)

    def add_page_faults(self, *faults: str) -> None:
        """Queue faults for the coming page requests, one each, as add_faults does for the feed."""
        self.state.page_faults.extend(faults)

    @property
    def requests(self) -> list[LoggedRequest]:
        return self.state.requests

    def current_events(self) -> list[dict]:
        body = self.state.feed_body(self.state.index)
        return json.loads(body) if body.strip() else []


class _Handler(BaseHTTPRequestHandler):
    fake: FakePolisenState
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: object) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        return super().date_time_string(self.fake.clock() if timestamp is None else timestamp)

    def do_GET(self) -> None:  # http.server's name
        parts = urlsplit(self.path)
        entry = LoggedRequest(self.fake.clock(), parts.path, parse_qs(parts.query), dict(self.headers))
        with self.fake.lock:
            self.fake.requests.append(entry)
            fault = self.fake.faults.popleft() if self.fake.faults else None
            index = min(self.fake.index, len(self.fake.bodies) - 1)
            day = entry.query.get("DateTime", [None])[0]
            body = self.fake.events_dated(day, index) if day else self.fake.feed_body(index)
        if self.fake.latency:
            time.sleep(self.fake.latency)
        if parts.path != "/api/events":
            with self.fake.lock:
                page_fault = self.fake.page_faults.popleft() if self.fake.page_faults else None
            if page_fault and page_fault != "none":
                return self._fault(entry, page_fault, b"<html>" + b" " * 200 + b"</html>")
            return self._page(entry, unquote(parts.path), index)
        if fault and fault != "none":
            return self._fault(entry, fault, body)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if self.fake.support_etag and self.headers.get("If-None-Match") == etag:
            return self._send(entry, 304, b"", etag=etag)
        self._send(entry, 200, body, etag=etag if self.fake.support_etag else None)

    def _page(self, entry: LoggedRequest, path: str, index: int) -> None:
        with self.fake.lock:
            event_id = self.fake.page_id(path, index)
            body = self.fake.page_body(event_id) if event_id is not None else None
            forced = self.fake.page_status.get(event_id) if event_id is not None else None
        if forced:
            return self._send(entry, forced, b"forced", content_type="text/plain")
        if body is None:
            return self._send(entry, 404, b"not found", content_type="text/plain")
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if self.headers.get("If-None-Match") == etag:
            return self._send(entry, 304, b"", etag=etag)
        self._send(entry, 200, body, etag=etag, content_type="text/html; charset=utf-8")

    def _fault(self, entry: LoggedRequest, fault: str, body: bytes) -> None:
        name, given, argument = fault.partition(":")
        if name == "status":  # `status:CODE`, or `status:CODE:RETRY-AFTER`
            code, has_wait, wait = argument.partition(":")
            return self._send(entry, int(code), b'{"error": "fault"}', extra={"Retry-After": wait} if has_wait else None)
        if name == "429":  # `429` says Retry-After: 1; `429:VALUE` sends VALUE as it is (`429:` an empty one)
            return self._send(entry, 429, b"slow down", extra={"Retry-After": argument if given else "1"})
        if name == "empty":
            return self._send(entry, 200, b"")
        if name == "truncated":
            return self._send(entry, 200, body[: len(body) // 2])
        if name == "short":
            events = json.loads(body)[: int(argument or 60)]
            return self._send(entry, 200, json.dumps(events, ensure_ascii=False).encode())
        if name == "object":
            return self._send(entry, 200, b'{"message": "not a list"}')
        if name == "nested":  # an array nested without end: a parser that recurses runs out of stack
            return self._send(entry, 200, b"[" * 100_000)
        if name == "reset":
            entry.status = -1
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
            return None
        if name == "slow":
            time.sleep(float(argument))
            return self._send(entry, 200, body)
        if name == "cut":
            return self._send_cut(entry, body)
        if name == "bomb":
            return self._send_bomb(entry, int(argument or 100_000_000))
        if name == "replace":
            return self._send(entry, 200, Path(argument).read_bytes())
        if name == "badutf8":  # cut inside the first multi-byte character
            cut = next(i for i, byte in enumerate(body) if byte >= 0xC0) + 1
            return self._send(entry, 200, body[:cut])
        if name == "gzip-unlabelled":  # gzip bytes without Content-Encoding
            return self._send(entry, 200, gzip.compress(body), compress=False)
        if name == "mislabelled":  # a wrong Content-Encoding: plain bytes called gzip, or gzip called deflate
            payload = gzip.compress(body) if argument == "deflate" else body
            return self._send(entry, 200, payload, compress=False, extra={"Content-Encoding": argument})
        if name == "trickle":
            return self._send_trickle(entry, body, float(argument))
        if name == "trickle-headers":
            return self._send_trickle(entry, body, float(argument), headers_too=True)
        if name == "redirect":
            return self._send(entry, 302, b"", extra={"Location": argument})
        if name == "trickle-redirect":  # `trickle-redirect:EVERY:LOCATION`: a 302 whose headers trickle in
            every, _, location = argument.partition(":")
            head = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            return self._send_trickle(entry, head, float(every), raw=True)
        if name == "304":  # whatever the request sent
            return self._send(entry, 304, b"")
        if name == "reason":  # a 503 with this reason phrase
            return self._send(entry, 503, b"", reason=argument)
        raise ValueError(f"unknown fault {fault!r}")

    def _send(self, entry: LoggedRequest, status: int, body: bytes, *, etag: str | None = None,
              content_type: str = "application/json; charset=utf-8", extra: dict[str, str] | None = None,
              compress: bool = True, reason: str | None = None) -> None:
        entry.status = status
        gzipped = compress and status == 200 and "gzip" in self.headers.get("Accept-Encoding", "") and body
        payload = gzip.compress(body, compresslevel=6) if gzipped else body
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        if etag:
            self.send_header("ETag", etag)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if status != 304:
            self.wfile.write(payload)
        entry.end = time.time()

    def _send_cut(self, entry: LoggedRequest, body: bytes) -> None:
        """Promise the whole body, send half, then close: a connection dropped mid-transfer."""
        entry.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _send_trickle(self, entry: LoggedRequest, body: bytes, every: float, headers_too: bool = False,
                      raw: bool = False) -> None:
        """Promise the whole body, then send it (and the headers too) one byte every `every`
        seconds until the client leaves; `raw`: `body` is the whole answer, headers and all."""
        entry.status = int(body[9:12]) if raw else 200
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        if raw:
            head = b""
        elif not headers_too:
            self.wfile.write(head)
        slow = head + body if headers_too else body
        try:
            for index in range(len(slow)):
                self.wfile.write(slow[index:index + 1])
                self.wfile.flush()
                time.sleep(every)
        except OSError:
            pass
        self.close_connection = True

    def _send_bomb(self, entry: LoggedRequest, size: int) -> None:
        entry.status = 200
        compressor = gzip.compress(b"[" + b" " * size + b"]", compresslevel=9)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(compressor)))
        self.end_headers()
        self.wfile.write(compressor)
