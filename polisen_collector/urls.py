"""URLs as the tools judge them: loopback hosts, origins, http(s) URLs with a valid port, paths on the site."""

from __future__ import annotations

import ipaddress
from typing import Any, TypeGuard
from urllib.parse import SplitResult, urlsplit

MAX_PATH = 1000
"""The longest event `url` taken for a path on the site: the site's are under 200 characters."""


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


def origin_key(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL, the port filled in for http and https, to compare origins;
    None when it has no host, or no port (an unknown scheme, a port outside 0..65535)."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def is_site_path(url: Any) -> TypeGuard[str]:
    """Whether `url` is a path on the site (`/aktuellt/...`): never another host (`//host/x`,
    `https://host/x`), a relative path, or text that is no URL (spaces, control characters)."""
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return False
    if len(url) > MAX_PATH or not url.isprintable() or " " in url:  # the space is the one printable whitespace
        return False
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def site_url(origin: str, path: Any) -> str | None:
    """The absolute URL of a path on the site (`https://polisen.se/aktuellt/...`); None when `path` is
    no path on it (is_site_path): a page is never looked for, nor linked to, on another host."""
    return origin.rstrip("/") + path if is_site_path(path) else None


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
