"""Proxies: parsing proxy URLs, the environment's proxy settings, and the tunnel handshakes.

HTTP CONNECT (RFC 9110 section 9.3.6, with Basic proxy authentication) and SOCKS5 (RFC 1928 with
the hostname sent to the proxy, RFC 1929 username/password) are sans-IO objects: request bytes
out, answer bytes in. :func:`establish_tunnel` drives one of them on a connected socket;
:func:`websync.net.transport.open_socket` connects to the proxy (with TLS for an ``https://`` proxy)
and calls it, for HTTP/1.1 and HTTP/2 alike.
"""

from __future__ import annotations

import base64
import errno
import ipaddress
import select
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Literal

from ..core.errors import OpenTimeout, ProxyError, TransportError
from ..core.handshake import Response, cut_head, format_head, parse_status
from ..core.headers import Headers
from ..core.uri import WebSocketURI

__all__ = [
    "ConnectHandshake",
    "Proxy",
    "ProxySetting",
    "Socks5Handshake",
    "establish_tunnel",
    "parse_proxy",
    "proxy_from_environment",
    "relay",
    "resolve_proxy",
]

ProxySetting = str | Literal[True] | None
"""The ``proxy`` option: a proxy URL, True (from the environment, the default) or None (no proxy)."""

PROXY_SCHEMES = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
"""Supported proxy URL schemes and their default ports."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """A parsed proxy URL. ``str()`` leaves the credentials out, so it is safe in logs and errors."""

    scheme: str
    """``http``, ``https`` (TLS to the proxy), ``socks5`` or ``socks5h``."""
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def socks(self) -> bool:
        return self.scheme.startswith("socks")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy(url: str) -> Proxy:
    """Parse ``http://user:pass@host:port`` and the like (a URL without a scheme means http://).

    Raises ``ValueError`` for an unsupported scheme, a missing host or a bad port; the message
    never repeats the credentials.
    """
    if "://" not in url:
        url = "http://" + url  # as curl and requests read HTTP_PROXY=host:port
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    shown = f"{scheme}://{parsed.hostname or ''}"
    if scheme not in PROXY_SCHEMES:
        raise ValueError(f"unsupported proxy scheme in {shown}: use one of {', '.join(PROXY_SCHEMES)}")
    try:
        port = parsed.port
    except ValueError:
        raise ValueError(f"proxy URL {shown} has an invalid port") from None
    if not parsed.hostname:
        raise ValueError(f"proxy URL {shown} has no host")
    unquote = urllib.parse.unquote
    return Proxy(
        scheme,
        parsed.hostname,
        PROXY_SCHEMES[scheme] if port is None else port,
        None if parsed.username is None else unquote(parsed.username),
        None if parsed.password is None else unquote(parsed.password),
    )


def proxy_from_environment(uri: WebSocketURI) -> Proxy | None:
    """The proxy the environment sets for ``uri``, as ``urllib.request`` and requests read it.

    ``wss://`` uses ``wss_proxy``, then ``https_proxy``, then ``all_proxy``; ``ws://`` uses
    ``ws_proxy``, ``http_proxy``, ``all_proxy`` (either case, lower case first). ``no_proxy``
    lists hosts, domain suffixes (with or without a leading dot), ``host:port`` entries or ``*``
    that are reached directly.
    """
    proxies = urllib.request.getproxies_environment()
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # public, missing from typeshed
    if ":" in uri.host:  # IPv6: no_proxy may list it bare (::1) or bracketed with a port ([::1]:80)
        if bypass(uri.host, proxies) or bypass(f"[{uri.host}]:{uri.port}", proxies):
            return None
    elif bypass(f"{uri.host}:{uri.port}", proxies):
        return None
    keys = ("wss", "https", "all") if uri.secure else ("ws", "http", "all")
    url = next((proxies[key] for key in keys if key in proxies), None)
    return None if url is None else parse_proxy(url)


def resolve_proxy(setting: ProxySetting, uri: WebSocketURI) -> Proxy | None:
    """The proxy to reach ``uri`` through for the ``proxy`` option's value, or None."""
    if setting is True:
        return proxy_from_environment(uri)
    if setting is None:
        return None
    if isinstance(setting, str):
        return parse_proxy(setting)
    raise TypeError(f"proxy must be a URL string, True (environment) or None, not {type(setting).__name__}")


def _basic(username: str, password: str | None) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode()


class ConnectHandshake:
    """An HTTP CONNECT request for ``host:port``, and the proxy's answer (sans-IO).

    Send :meth:`data_to_send`, then feed the answer to :meth:`receive_data` until it returns
    True: the tunnel is open. A refusal raises :class:`ProxyError` with the status; a head past
    the handshake limits raises :class:`~websync.core.errors.InvalidHandshake`.
    """

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        self.proxy = proxy
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.headers = Headers([("Host", target)])
        if proxy.username is not None:
            self.headers.add("Proxy-Authorization", _basic(proxy.username, proxy.password))
        self.request_line = f"CONNECT {target} HTTP/1.1"
        self._outgoing = format_head(self.request_line, self.headers)
        self._buffer = bytearray()
        self.response: Response | None = None

    def data_to_send(self) -> bytes:
        """The CONNECT request the first time, then nothing."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes) -> bool:
        if not data:
            raise ProxyError(f"proxy {self.proxy} closed the connection before answering CONNECT")
        self._buffer += data
        head = cut_head(self._buffer, "proxy response")
        if head is None:
            return False
        self.response = parse_status(*head)
        status = self.response.status
        if not 200 <= status < 300:
            raise ProxyError(
                f"proxy {self.proxy} refused CONNECT with HTTP status {status} {self.response.reason}".rstrip(),
                status=status,
                headers=self.response.headers,
            )
        if self._buffer:
            raise ProxyError(f"proxy {self.proxy} sent data before the tunnel was used", status=status)
        return True


SOCKS5_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}
"""RFC 1928 section 6: the reply codes other than 0 (succeeded)."""

_NO_AUTH, _USERNAME_PASSWORD, _NO_ACCEPTABLE = 0x00, 0x02, 0xFF


class Socks5Handshake:
    """A SOCKS5 CONNECT to ``host:port`` (sans-IO): the hostname goes to the proxy (remote DNS).

    Send :meth:`data_to_send`, feed answers to :meth:`receive_data`, and repeat until it returns
    True. Failures raise :class:`ProxyError` (``socks_reply`` holds a reply code).
    """

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        self.proxy = proxy
        self.host = host
        self.port = port
        methods = [_NO_AUTH, _USERNAME_PASSWORD] if proxy.username is not None else [_NO_AUTH]
        self._outgoing = bytes([5, len(methods), *methods])
        self._state: Literal["method", "auth", "reply", "open"] = "method"
        self._buffer = bytearray()

    def data_to_send(self) -> bytes:
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes) -> bool:
        if not data:
            during = {"method": "the method negotiation", "auth": "authentication (wrong credentials?)"}
            raise ProxyError(
                f"SOCKS5 proxy {self.proxy} closed the connection during {during.get(self._state, 'CONNECT')}"
            )
        self._buffer += data
        while self._step():
            pass
        return self._state == "open"

    def _step(self) -> bool:
        """Handle one complete answer from the buffer; False when more bytes are needed."""
        buffer = self._buffer
        if self._state == "method" and len(buffer) >= 2:
            version, method = buffer[0], buffer[1]
            del buffer[:2]
            self._check_version(version)
            if method == _NO_AUTH:
                self._send_connect()
            elif method == _USERNAME_PASSWORD and self.proxy.username is not None:
                self._send_auth()
            elif method == _NO_ACCEPTABLE:
                needs = "credentials" if self.proxy.username is None else "another authentication method"
                raise ProxyError(f"SOCKS5 proxy {self.proxy} accepts none of the offered methods (it needs {needs})")
            else:
                raise ProxyError(
                    f"SOCKS5 proxy {self.proxy} chose authentication method {method}, which was not offered"
                )
            return True
        if self._state == "auth" and len(buffer) >= 2:
            status = buffer[1]
            del buffer[:2]
            if status != 0:
                raise ProxyError(f"SOCKS5 proxy {self.proxy} rejected the username and password")
            self._send_connect()
            return True
        if self._state == "reply" and len(buffer) >= 5:
            size = {1: 4, 3: 1 + buffer[4], 4: 16}.get(buffer[3])
            self._check_version(buffer[0])
            reply = buffer[1]
            if reply != 0:
                what = SOCKS5_REPLIES.get(reply, "unknown error")
                raise ProxyError(
                    f"SOCKS5 proxy {self.proxy} could not connect to {self.host}:{self.port}: {what} (reply {reply})",
                    socks_reply=reply,
                )
            if size is None:
                raise ProxyError(f"SOCKS5 proxy {self.proxy} answered with address type {buffer[3]}")
            if len(buffer) < 4 + size + 2:
                return False
            if len(buffer) > 4 + size + 2:
                raise ProxyError(f"SOCKS5 proxy {self.proxy} sent data before the tunnel was used")
            del buffer[:]
            self._state = "open"
        return False

    def _check_version(self, version: int) -> None:
        if version != 5:
            raise ProxyError(f"{self.proxy} does not speak SOCKS5 (version byte {version})")

    def _send_auth(self) -> None:
        username = (self.proxy.username or "").encode()
        password = (self.proxy.password or "").encode()
        if len(username) > 255 or len(password) > 255:
            raise ProxyError("SOCKS5 usernames and passwords are limited to 255 bytes")
        self._outgoing = bytes([1, len(username)]) + username + bytes([len(password)]) + password
        self._state = "auth"

    def _send_connect(self) -> None:
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            try:
                name = self.host.encode("idna")
            except UnicodeError:
                name = b""
            if not 0 < len(name) <= 255:
                raise ProxyError(f"host name {self.host[:40]!r} is invalid or too long for SOCKS5") from None
            destination = bytes([3, len(name)]) + name
        else:
            destination = bytes([1 if address.version == 4 else 4]) + address.packed
        self._outgoing = bytes([5, 1, 0]) + destination + self.port.to_bytes(2, "big")
        self._state = "reply"


def establish_tunnel(sock: socket.socket, proxy: Proxy, host: str, port: int, deadline: float | None) -> None:
    """Open a tunnel to ``host:port`` on ``sock``, a blocking socket connected to ``proxy``.

    Raises :class:`ProxyError` when the proxy refuses, :class:`OpenTimeout` past ``deadline``
    (a ``time.monotonic()`` value) and ``OSError`` when the connection fails.
    """
    handshake = (Socks5Handshake if proxy.socks else ConnectHandshake)(proxy, host, port)
    try:
        while True:
            if deadline is not None:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = handshake.data_to_send()
            if data:
                sock.sendall(data)
            if handshake.receive_data(sock.recv(65536)):
                return
    except TimeoutError:
        raise OpenTimeout(f"timed out in the handshake with proxy {proxy}") from None


RELAY_BUFFER = 256 * 1024
"""Bytes a relay holds for each direction before it stops reading that way."""


def relay(outer: ssl.SSLSocket) -> socket.socket:
    """A plain socket whose bytes a thread carries through ``outer`` (a tunnel inside TLS).

    For ``wss://`` through an ``https://`` proxy: Python's ``ssl`` cannot run TLS over an
    ``SSLSocket``, so the origin's TLS runs over the returned end of a socket pair and one
    daemon thread relays between the pair and ``outer``. Closing the returned socket (or the
    proxy closing ``outer``) ends the thread and closes ``outer``.
    """
    inner, ours = socket.socketpair()
    try:
        threading.Thread(
            target=_relay, args=(outer, ours), name=f"websync-proxy-relay-{outer.fileno()}", daemon=True
        ).start()
    except RuntimeError as exc:  # at the thread limit; the caller closes ``outer``
        inner.close()
        ours.close()
        raise TransportError(errno.EAGAIN, f"no thread for the relay through the proxy: {exc}") from exc
    return inner


def _relay(outer: ssl.SSLSocket, ours: socket.socket) -> None:
    outer.setblocking(False)
    ours.setblocking(False)
    to_ours, to_outer = bytearray(), bytearray()
    try:
        while True:
            poller = select.poll()
            poller.register(
                outer, (select.POLLIN if len(to_ours) < RELAY_BUFFER else 0) | (select.POLLOUT if to_outer else 0)
            )
            poller.register(
                ours, (select.POLLIN if len(to_outer) < RELAY_BUFFER else 0) | (select.POLLOUT if to_ours else 0)
            )
            ready = dict(poller.poll(0 if outer.pending() and len(to_ours) < RELAY_BUFFER else None))
            room = len(to_ours) < RELAY_BUFFER
            if room and (outer.fileno() in ready or outer.pending()) and not _move(outer, to_ours):
                _flush(ours, to_ours)
                return
            if ours.fileno() in ready and not _move(ours, to_outer):
                _flush(outer, to_outer)
                return
            _write(ours, to_ours)
            _write(outer, to_outer)
    except OSError:
        return
    finally:
        ours.close()
        outer.close()


def _move(source: socket.socket, buffer: bytearray) -> bool:
    """Read what ``source`` has into ``buffer``; False at EOF."""
    try:
        data = source.recv(65536)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return True
    buffer += data
    return bool(data)


def _write(target: socket.socket, buffer: bytearray) -> None:
    if not buffer:
        return
    try:
        sent = target.send(buffer)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return
    del buffer[:sent]


def _flush(target: socket.socket, buffer: bytearray) -> None:
    """Send what is left before closing, waiting up to a second for room."""
    deadline = time.monotonic() + 1.0
    while buffer and time.monotonic() < deadline:
        _write(target, buffer)
        if buffer:
            poller = select.poll()
            poller.register(target, select.POLLOUT)
            poller.poll(50)
