"""open_socket's TCP connect: an IP address without a name lookup, a name's addresses in turn,
refusals and timeouts as websync's errors, and a non-blocking socket either way."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from websync import OpenTimeout, TransportError
from websync.core.uri import parse_uri
from websync.net.transport import open_socket

pytestmark = pytest.mark.timeout(10)


def _no_lookup(*args: object, **kwargs: object) -> object:
    raise AssertionError(f"a name lookup for an IP address: getaddrinfo{args}")


@pytest.mark.parametrize(
    ("family", "host", "url_host"), [("AF_INET", "127.0.0.1", "127.0.0.1"), ("AF_INET6", "::1", "[::1]")]
)
def test_an_ip_address_connects_without_a_name_lookup(
    monkeypatch: pytest.MonkeyPatch, family: str, host: str, url_host: str
) -> None:
    if family == "AF_INET6" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = socket.create_server((host, 0), family=getattr(socket, family))
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}: {exc}")
    with server:
        port = server.getsockname()[1]
        monkeypatch.setattr(socket, "getaddrinfo", _no_lookup)
        with open_socket(parse_uri(f"ws://{url_host}:{port}/"), timeout=5) as sock:
            assert sock.family == getattr(socket, family)
            assert sock.gettimeout() == 0.0  # non-blocking, as open_socket promises
            assert sock.getpeername()[:2] == (host, port)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_name_tries_its_addresses_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first address refuses (nothing listens on ::1 there), the second takes the connection."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        answers = [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]
        monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
        with open_socket(parse_uri(f"ws://example.test:{port}/"), timeout=5) as sock:
            assert sock.getpeername() == ("127.0.0.1", port)


def test_a_refused_connection_is_a_transport_error_naming_the_address() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(TransportError, match=f"cannot connect to 127.0.0.1:{port}") as raised:
        open_socket(parse_uri(f"ws://127.0.0.1:{port}/"), timeout=5)
    assert raised.value.errno == errno.ECONNREFUSED


def test_a_name_that_does_not_resolve_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="cannot connect to no-such-host.invalid:80"):
        open_socket(parse_uri("ws://no-such-host.invalid/"), timeout=5)


@pytest.fixture
def full_listener() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so a connect hangs."""
    with ExitStack() as stack:
        server = stack.enter_context(socket.socket())
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(4):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        time.sleep(0.1)
        yield port


def test_a_connect_that_hangs_is_an_open_timeout_at_the_deadline(full_listener: int) -> None:
    started = time.monotonic()
    with pytest.raises(OpenTimeout, match=f"timed out connecting to 127.0.0.1:{full_listener}"):
        open_socket(parse_uri(f"ws://127.0.0.1:{full_listener}/"), timeout=0.5)
    assert 0.4 < time.monotonic() - started < 3
