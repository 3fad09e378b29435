"""Dead-man's switch: tell an external monitor (healthchecks.io style) how the run ended.

The monitor alerts when pings stop, which catches what no local check can: a host that is
down, a cron that no longer fires. A failed ping only logs a warning; it never fails a run.
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

    target = ping_url(url, success)
    try:
        response = requests.get(
            target, timeout=timeout, headers={"User-Agent": f"polisen-events-collector/{__version__}"}
        )
        response.close()
    except requests.RequestException as error:
        reason = str(error).replace(urlsplit(target).path, "/...")
        log.warning("dead-man's switch ping %s failed (%s): %s", _redacted(target), type(error).__name__, reason)
        return False
    if not response.ok:
        log.warning("dead-man's switch ping %s answered HTTP %d", _redacted(target), response.status_code)
        return False
    log.info("dead-man's switch pinged (%s)", "success" if success else "fail")
    return True


def _redacted(url: str) -> str:
    """The URL without credentials or path: the path holds the check's secret uuid."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."
