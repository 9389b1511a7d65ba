"""Issue 18 §2: the caller's ``ssl.SSLContext`` is used as given and never modified, whatever
``http2`` and the proxy. The server is nginx with ``listen … ssl http2`` (h2 by ALPN, no RFC 8441)
in front of an HTTP/1.1 echo server: an HTTP/1.1 upgrade works only if the client does not offer h2."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from peers.proxies import ProxyProcess, missing_binaries, start_microsocks, start_squid, start_tinyproxy
from peers.spawn import Spawned

import websync
from websync import ExtendedConnectDisabled, InvalidHandshake

pytestmark = pytest.mark.timeout(120)

THREADS = 8
ROUNDS = 5


class RecordingContext(ssl.SSLContext):
    """A client context that records every attempt to change its ALPN protocols."""

    alpn_calls: list[list[str]]

    def set_alpn_protocols(self, alpn_protocols: Iterable[str]) -> None:
        protocols = list(alpn_protocols)
        self.alpn_calls.append(protocols)
        super().set_alpn_protocols(protocols)


def recording_context(tls_ca: Any, alpn: Sequence[str] = ()) -> RecordingContext:
    """A context that trusts the test CA; ``alpn`` is set (and not recorded) as the caller's own."""
    context = RecordingContext(ssl.PROTOCOL_TLS_CLIENT)
    tls_ca.configure_trust(context)
    context.alpn_calls = []
    if alpn:
        ssl.SSLContext.set_alpn_protocols(context, list(alpn))
    return context


@pytest.fixture(scope="module")
def front(nginx: Callable[..., Spawned], websockets_server: Callable[..., Any]) -> str:
    """``wss://localhost:P``: nginx with TLS and http2 in front of a ``websockets`` echo server."""
    return f"wss://localhost:{nginx(websockets_server().port, tls=True, http2=True).port}"


@pytest.fixture(scope="module")
def proxy(tls_certfile: Path) -> Iterator[Callable[[str], ProxyProcess]]:
    """``proxy(kind)``: tinyproxy (http), squid (https) or microsocks (socks5), one per kind."""
    started: dict[str, ProxyProcess] = {}

    def factory(kind: str) -> ProxyProcess:
        if missing_binaries():
            pytest.skip(f"proxy peers {missing_binaries()} are not installed (tests/peers/install_proxy_peers.sh)")
        if kind not in started:
            if kind == "https":
                started[kind] = start_squid(auth=False, certfile=tls_certfile)
            else:
                started[kind] = {"http": start_tinyproxy, "socks5": start_microsocks}[kind](auth=False)
        return started[kind]

    yield factory
    for process in started.values():
        process.stop()


def echo(url: str, **options: Any) -> int:
    """Connect, echo one message, close; returns the handshake's status."""
    with websync.connect(url, open_timeout=5, close_timeout=2, **options) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        return ws.status


def test_http2_connect_leaves_the_context_usable_for_http11(front: str, tls_ca: Any) -> None:
    """The issue's repro: after http2=True with a context, the context still does HTTP/1.1."""
    context = recording_context(tls_ca)
    with pytest.raises(InvalidHandshake):  # nginx has h2 but no extended CONNECT
        websync.connect(front + "/", http2=True, ssl=context, open_timeout=5)
    assert echo(front + "/", ssl=context) == 101
    assert context.alpn_calls == []


@pytest.mark.parametrize("http2", [False, True, "auto"])
@pytest.mark.parametrize("kind", [None, "http", "https", "socks5"])
def test_context_is_never_modified(
    front: str, proxy: Callable[[str], ProxyProcess], tls_ca: Any, http2: bool | str, kind: str | None
) -> None:
    """Each http2 choice, directly and through each kind of proxy: the caller's contexts (the
    origin's and the https proxy's) see no set_alpn_protocols call, and the outcome follows from
    what the context offers (nothing): HTTP/1.1 for False and "auto", a clear refusal for True."""
    context, proxy_context = recording_context(tls_ca), recording_context(tls_ca)
    options: dict[str, Any] = {"ssl": context, "http2": http2, "proxy": None}
    if kind is not None:
        options["proxy"] = proxy(kind).url("socks5h" if kind == "socks5" else kind)
        options["proxy_ssl"] = proxy_context
    if http2 is True:
        with pytest.raises(InvalidHandshake, match="h2"):
            websync.connect(front + "/", open_timeout=5, **options)
    else:
        assert echo(front + "/", **options) == 101
    assert context.alpn_calls == []
    assert proxy_context.alpn_calls == []


def test_a_context_that_offers_h2_is_not_trimmed(front: str, tls_ca: Any) -> None:
    """A caller's context that offers h2 keeps offering it: http2=False then fails with a
    message that says why (nginx chose h2), instead of websync rewriting the context."""
    context = recording_context(tls_ca, ["h2", "http/1.1"])
    with pytest.raises(InvalidHandshake, match="chose HTTP/2"):
        websync.connect(front + "/", ssl=context, open_timeout=5)
    with pytest.raises(ExtendedConnectDisabled):
        websync.connect(front + "/", ssl=context, http2="auto", open_timeout=5)
    assert context.alpn_calls == []


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_one_context_shared_by_threads(front: str, tls_ca: Any, round_: int) -> None:
    """Threads connecting at once with one context and mixed http2 choices: every HTTP/1.1
    connection works (none inherits another thread's ALPN), and the context is untouched."""
    context = recording_context(tls_ca)
    choices: list[bool | str] = [True, False, "auto"]
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        http2 = choices[index % len(choices)]
        try:
            start.wait(10)
            if http2 is True:
                with pytest.raises(InvalidHandshake, match="h2"):
                    websync.connect(front + "/", ssl=context, http2=True, open_timeout=5)
            else:
                assert echo(front + "/", ssl=context, http2=http2) == 101
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert context.alpn_calls == []
