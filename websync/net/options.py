"""Typed option groups for opening connections and running workers."""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ssl import SSLContext
from typing import TYPE_CHECKING, Any, Literal

from ..core.headers import Headers, HeadersLike
from ..core.protocol import DEFAULT_MAX_SIZE
from ..extensions import ClientExtensionFactory, ClientPerMessageDeflate
from .proxy import ProxySetting

if TYPE_CHECKING:
    from ..http2 import Session

__all__ = ["DEFAULT_PING_INTERVAL", "DEFAULT_PING_TIMEOUT", "ConnectOptions", "KeepaliveOptions", "split_options"]


@dataclass(frozen=True)
class ConnectOptions:
    """How to open one WebSocket: handshake, limits, TLS, timeouts and HTTP version.

    ``http2``: False (HTTP/1.1), True (RFC 8441 over HTTP/2: ALPN h2 for wss://, h2c by prior
    knowledge for ws://) or ``"auto"`` (wss:// offers h2 and http/1.1 by ALPN and falls back to
    HTTP/1.1 when the server has no extended CONNECT; ws:// uses HTTP/1.1). ``session``: a
    :class:`websync.http2.Session` whose connection carries this WebSocket (``http2`` is then moot).
    ``proxy``: True (the default) reads ``https_proxy``/``http_proxy``/``all_proxy``/``no_proxy``
    from the environment; None connects directly; a URL (``http://user:pass@host:port``,
    ``https://…``, ``socks5://…``, ``socks5h://…``) names the proxy. ``proxy_ssl``: the context
    for TLS to an ``https://`` proxy (default: verification against certifi's bundle).

    ``unix_socket``: the path of a Unix domain socket to connect to instead of the URL's host
    and port (the URL still gives the ``Host`` header, the path and ws:// or wss://). ``sock``: a
    socket you connected, which the connection owns from then on; a worker's reconnects need a
    new one each time (return it in the options of ``Handler.connect()``), and redirects are not
    followed. With either, TLS is applied for wss:// (checked against ``server_hostname`` or the
    URL's host), no proxy is used, and HTTP/2 is not available.

    ``write_timeout``: seconds a write (``send()``, or the bytes a worker could not write at
    once) may wait for the peer to take it; past it the connection is lost (1006, its cause a
    ``TimeoutError``). None: as long as it takes.

    ``compression``: ``"deflate"``, None, or a configured
    :class:`~websync.extensions.ClientPerMessageDeflate`; ``extensions``: more
    :class:`~websync.extensions.ClientExtensionFactory` objects to offer, after it.

    ``ssl`` and ``proxy_ssl`` are used as given and never modified, so one context may serve many
    threads and connections. ALPN can only be set on a context, so the protocols offered are the
    context's own: without ``ssl``, websync builds a context per connection offering what
    ``http2`` needs; with ``ssl``, offer h2 yourself for ``http2=True``/``"auto"``
    (``context.set_alpn_protocols(["h2", "http/1.1"])``). A context that offers h2 cannot fall
    back to HTTP/1.1 with a server that chose h2 without extended CONNECT (it raises
    :class:`~websync.core.errors.ExtendedConnectDisabled`), nor connect with ``http2=False`` to a
    server that chooses h2.
    """

    headers: HeadersLike | None = None
    subprotocols: Sequence[str] = ()
    origin: str | None = None
    compression: Literal["deflate"] | ClientPerMessageDeflate | None = "deflate"
    extensions: Sequence[ClientExtensionFactory] = ()
    max_size: int | None = DEFAULT_MAX_SIZE
    ssl: ssl.SSLContext | None = None
    server_hostname: str | None = None
    open_timeout: float | None = 10.0
    close_timeout: float | None = 10.0
    write_timeout: float | None = None
    follow_redirects: bool = True
    max_redirects: int = 5
    trace: bool = False
    http2: bool | Literal["auto"] = False
    session: Session | None = None
    proxy: ProxySetting = True
    proxy_ssl: SSLContext | None = None  # ``ssl`` is a field name in this class body
    unix_socket: str | None = None
    sock: socket.socket | None = None

    def updated(self, headers: HeadersLike | None, overrides: Mapping[str, Any]) -> ConnectOptions:
        """These options for one connection attempt (what ``Handler.connect`` returned):
        ``overrides`` replace fields, ``headers`` go after these options' own. ``TypeError`` for
        a name that is not a field."""
        if headers:
            overrides = {
                **overrides,
                "headers": Headers([*Headers(self.headers or ()).items(), *Headers(headers).items()]),
            }
        return dataclasses.replace(self, **overrides)


DEFAULT_PING_INTERVAL = 20.0
DEFAULT_PING_TIMEOUT = 20.0
"""Keepalive on by default, for clients, workers and servers alike (the ``websockets`` defaults)."""


@dataclass(frozen=True)
class KeepaliveOptions:
    """Pings that detect a dead peer: a ping every ``ping_interval`` seconds (None: off), and the
    connection counts as lost when neither its pong nor any other byte arrives within
    ``ping_timeout`` seconds of the ping being written (None: never)."""

    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT


_CONNECT_FIELDS = frozenset(f.name for f in dataclasses.fields(ConnectOptions))
_KEEPALIVE_FIELDS = frozenset(f.name for f in dataclasses.fields(KeepaliveOptions))


def split_options(
    options: Mapping[str, Any], extra: frozenset[str] = frozenset()
) -> tuple[ConnectOptions, KeepaliveOptions, dict[str, Any]]:
    """Sort keyword options into their groups; the names in ``extra`` are returned as a dict.

    Raises ``TypeError`` for an unknown option name, as a misspelt keyword argument would.
    """
    unknown = set(options) - _CONNECT_FIELDS - _KEEPALIVE_FIELDS - extra
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    connect = ConnectOptions(**{k: v for k, v in options.items() if k in _CONNECT_FIELDS})
    keepalive = KeepaliveOptions(**{k: v for k, v in options.items() if k in _KEEPALIVE_FIELDS})
    rest = {k: v for k, v in options.items() if k in extra}
    return connect, keepalive, rest
