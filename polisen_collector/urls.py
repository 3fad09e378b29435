"""URLs as the tools judge them: loopback hosts, origins, http(s) URLs with a valid port."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit


def is_loopback_host(host: str | None) -> bool:
    """localhost or a loopback address: the only hosts plain http and API_RATE_LIMIT=off are allowed for."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """The scheme and host (and port) of a URL: `https://polisen.se`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def http_url_parts(value: str) -> SplitResult:
    """The parts of an http(s) URL with a host and a valid port; ValueError saying what is wrong otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("its port must be from 1 to 65535")
    return parts
