"""Parsing ws:// and wss:// URLs (RFC 6455 section 3)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from .errors import InvalidURI

__all__ = ["WebSocketURI", "parse_uri", "without_credentials"]


@dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A parsed WebSocket URL."""

    secure: bool
    host: str
    port: int
    resource: str
    """Path and query, as sent in the request line."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def authority(self) -> str:
        """``host[:port]`` for the Host header: the port only when it is not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.secure else 80
        return host if self.port == default_port else f"{host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "wss" if self.secure else "ws"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.resource}"


def without_credentials(url: str) -> str:
    """``url`` with its userinfo (``user:password@``) replaced by ``<credentials>@``, for logs and errors."""
    parsed = urllib.parse.urlsplit(url)
    if "@" not in parsed.netloc:
        return url
    return parsed._replace(netloc="<credentials>@" + parsed.netloc.rpartition("@")[2]).geturl()


def parse_uri(url: str) -> WebSocketURI:
    """Parse a ws:// or wss:// URL; raises :class:`~websync.core.errors.InvalidURI`."""
    parsed = urllib.parse.urlsplit(url)
    url = without_credentials(url)  # for the error messages
    if parsed.scheme not in ("ws", "wss"):
        raise InvalidURI(f"{url!r} is not a ws:// or wss:// URL")
    if parsed.fragment:
        raise InvalidURI(f"{url!r} has a fragment, which WebSocket URLs may not have")
    try:
        port = parsed.port
    except ValueError as exc:
        raise InvalidURI(f"{url!r} has an invalid port: {exc}") from None
    if not parsed.hostname:
        raise InvalidURI(f"{url!r} has no host")
    secure = parsed.scheme == "wss"
    resource = parsed.path or "/"
    if parsed.query:
        resource += "?" + parsed.query
    return WebSocketURI(
        secure=secure,
        host=parsed.hostname,
        port=port if port is not None else (443 if secure else 80),
        resource=urllib.parse.quote(resource, safe="/?=&%:@!$'()*+,;~-._"),
        username=urllib.parse.unquote(parsed.username) if parsed.username is not None else None,
        password=urllib.parse.unquote(parsed.password) if parsed.password is not None else None,
    )
