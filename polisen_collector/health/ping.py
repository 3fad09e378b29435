"""Dead-man's switch: tell an external monitor (healthchecks.io style) how the run ended.

The monitor alerts when pings stop, which catches what no local check can: a host that is
down, a cron that no longer fires. A failed ping only logs a warning; it never fails a run,
nor holds it up: the ping has one deadline (connect + 2 x read timeout) for its answer and
redirects, which stay on the monitor's origin, and its body is never read (api/client.py's guards).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from polisen_collector import __version__

log = logging.getLogger("polisen.ping")

TIMEOUT = (3.0, 5.0)


def ping_url(url: str, success: bool) -> str:
    """`url` on success, `url/fail` on failure, keeping any query string."""
    if success:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def ping(url: str, success: bool, timeout: tuple[float, float] = TIMEOUT) -> bool:
    """GET the ping URL once; True when the monitor answered 2xx."""
    import requests

    from polisen_collector.api.client import ApiError, Deadline, GuardedAdapter, answer_deadline, get_following
    from polisen_collector.urls import origin_of

    target = ping_url(url, success)
    deadline = Deadline(answer_deadline(*timeout))
    late = f"no whole answer within {deadline.seconds:g} s (its connect timeout + 2 x its read timeout)"

    def before_request(_wait: float) -> None:
        if not deadline.resume():
            raise requests.exceptions.Timeout(late)

    adapter = GuardedAdapter(before_request, deadline, origin=origin_of(target))
    deadline.start()
    try:
        with requests.Session() as session:
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            response = get_following(session, target, timeout=timeout,
                                     headers={"User-Agent": f"polisen-events-collector/{__version__}"})
            response.close()
            if deadline.hit:  # its headers were cut short, and may look like a whole answer
                raise requests.exceptions.Timeout(late)
    except (requests.RequestException, ApiError) as error:
        kind, reason = ("Timeout", late) if deadline.hit else (type(error).__name__, str(error))
        log.warning("dead-man's switch ping %s failed (%s): %s", _redacted(target), kind,
                    reason.replace(urlsplit(target).path, "/..."))
        return False
    finally:
        deadline.pause()
    if not response.ok:
        log.warning("dead-man's switch ping %s answered HTTP %d", _redacted(target), response.status_code)
        return False
    log.info("dead-man's switch pinged (%s)", "success" if success else "fail")
    return True


def _redacted(url: str) -> str:
    """The URL without credentials or path: the path holds the check's secret uuid."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."
