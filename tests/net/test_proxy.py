"""WebSockets through real proxies on loopback: tinyproxy and squid (HTTP CONNECT, Basic auth),
squid's ``https_port`` (TLS to the proxy), microsocks (SOCKS5); the environment variables."""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from peers.proxies import (
    PASSWORD,
    USER,
    ProxyProcess,
    free_port,
    missing_binaries,
    start_microsocks,
    start_squid,
    start_tinyproxy,
)
from peers.spawn import Spawned

import websync

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "tests" / "peers" / "install_proxy_peers.sh"
ENVIRONMENT = ["http_proxy", "https_proxy", "all_proxy", "no_proxy", "ws_proxy", "wss_proxy"]
WRONG = (USER, "wrong-password")


@pytest.fixture(scope="session")
def proxy_binaries() -> None:
    """tinyproxy, squid and microsocks, installed by tests/peers/install_proxy_peers.sh when missing."""
    if missing_binaries():
        result = subprocess.run(["bash", str(INSTALL_SCRIPT)], check=False, capture_output=True, text=True, timeout=300)
        if missing_binaries():
            pytest.skip(f"proxy peers {missing_binaries()} not installed: {result.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def proxies(proxy_binaries: None, tls_certfile: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """``proxies(kind, auth=False)``: a running proxy, one per kind and auth for the whole session."""
    started: dict[tuple[str, bool], ProxyProcess] = {}

    def factory(kind: str, auth: bool = False) -> ProxyProcess:
        if (kind, auth) not in started:
            if kind == "squid":
                started[kind, auth] = start_squid(auth=auth, certfile=tls_certfile)
            else:
                started[kind, auth] = {"tinyproxy": start_tinyproxy, "microsocks": start_microsocks}[kind](auth=auth)
        return started[kind, auth]

    yield factory
    for process in started.values():
        process.stop()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable from the machine leaks into a test."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def tls_echo(websockets_server):
    return websockets_server(tls=True)


def origin(server, secure: bool = False) -> str:
    """The server's URL by host name, so that TLS checks the name ``localhost`` inside the tunnel."""
    return f"{'wss' if secure else 'ws'}://localhost:{server.port}/"


def echo_once(url: str, **options) -> websync.ClientConnection:
    with websync.connect(url, open_timeout=10, **options) as ws:
        ws.send("through the proxy")
        assert ws.recv(timeout=5) == "through the proxy"
        ws.send(b"\x00" * 70000)
        assert ws.recv(timeout=5) == b"\x00" * 70000
    return ws


def wait_for_log(proxy: ProxyProcess, text: str, timeout: float = 5.0) -> str:
    """The proxy's log once it mentions ``text`` (squid writes its access log a little later)."""
    deadline = time.monotonic() + timeout
    while text not in proxy.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log: str = proxy.log()
    return log


# -- HTTP CONNECT: tinyproxy and squid -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tinyproxy", "squid"])
@pytest.mark.parametrize("auth", [False, True], ids=["open", "basic-auth"])
@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_http_connect_proxy(proxies, echo_server, tls_echo, client_ssl_context, kind, auth, secure):
    proxy = proxies(kind, auth)
    server = tls_echo if secure else echo_server
    tls = {"ssl": client_ssl_context} if secure else {}
    echo_once(origin(server, secure), proxy=proxy.url("http", proxy.credentials), **tls)
    assert f"localhost:{server.port}" in wait_for_log(proxy, f"localhost:{server.port}")


@pytest.mark.parametrize(
    ("kind", "credentials", "status"),
    [
        ("tinyproxy", None, 407),
        ("tinyproxy", WRONG, 401),  # tinyproxy answers wrong credentials with 401, not 407
        ("squid", None, 407),
        ("squid", WRONG, 407),
    ],
)
def test_http_proxy_refuses_missing_or_wrong_credentials(proxies, echo_server, kind, credentials, status):
    proxy = proxies(kind, auth=True)
    with pytest.raises(websync.ProxyError) as info:
        websync.connect(origin(echo_server), proxy=proxy.url("http", credentials), open_timeout=10)
    assert info.value.status == status
    assert isinstance(info.value, websync.InvalidHandshake)
    assert f"HTTP status {status}" in str(info.value)
    assert str(proxy.ports["http"]) in str(info.value)  # names the proxy…
    assert "wrong-password" not in str(info.value)  # …without its credentials


@pytest.mark.parametrize("kind", ["tinyproxy", "squid"])
def test_http_proxy_cannot_reach_the_server(proxies, kind):
    proxy = proxies(kind)
    with pytest.raises(websync.ProxyError) as info:
        websync.connect(f"ws://127.0.0.1:{free_port()}/", proxy=proxy.url(), open_timeout=10)
    assert info.value.status in (500, 502, 503)  # tinyproxy 500, squid 503: "could not connect"


# -- an https:// proxy: squid's https_port --------------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss-tls-in-tls"])
def test_https_proxy(proxies, echo_server, tls_echo, client_ssl_context, no_thread_leaks, secure):
    proxy = proxies("squid", auth=True)
    server = tls_echo if secure else echo_server
    tls = {"ssl": client_ssl_context} if secure else {}
    echo_once(origin(server, secure), proxy=proxy.url("https", proxy.credentials), proxy_ssl=client_ssl_context, **tls)
    assert f"localhost:{server.port}" in wait_for_log(proxy, f"localhost:{server.port}")


def test_https_proxy_certificate_is_verified_by_default(proxies, echo_server):
    proxy = proxies("squid")
    with pytest.raises(websync.TransportError, match="certificate verification of proxy https://127.0.0.1"):
        websync.connect(origin(echo_server), proxy=proxy.url("https"), open_timeout=10)


def test_https_proxy_wrong_credentials(proxies, echo_server, client_ssl_context):
    proxy = proxies("squid", auth=True)
    with pytest.raises(websync.ProxyError) as info:
        websync.connect(origin(echo_server), proxy=proxy.url("https", WRONG), proxy_ssl=client_ssl_context)
    assert info.value.status == 407


def test_wss_through_a_proxy_checks_the_origin_certificate(proxies, tls_echo, client_ssl_context):
    proxy = proxies("tinyproxy")
    with pytest.raises(websync.TransportError, match="certificate verification"):
        websync.connect(origin(tls_echo, secure=True), proxy=proxy.url(), open_timeout=10)  # certifi: no test CA
    with pytest.raises(websync.TransportError, match="certificate verification"):
        websync.connect(  # the tunnel leads to "localhost", the certificate is checked for another name
            origin(tls_echo, secure=True), proxy=proxy.url(), ssl=client_ssl_context, server_hostname="example.com"
        )


# -- SOCKS5: microsocks ------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [False, True], ids=["open", "username-password"])
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_socks5_proxy(proxies, echo_server, tls_echo, client_ssl_context, auth, scheme, secure):
    proxy = proxies("microsocks", auth)
    server = tls_echo if secure else echo_server
    tls = {"ssl": client_ssl_context} if secure else {}
    echo_once(origin(server, secure), proxy=proxy.url(scheme, proxy.credentials), **tls)


def test_socks5_proxy_without_credentials_is_refused(proxies, echo_server):
    proxy = proxies("microsocks", auth=True)
    with pytest.raises(websync.ProxyError, match="accepts none of the offered methods.*needs credentials"):
        websync.connect(origin(echo_server), proxy=proxy.url("socks5"), open_timeout=10)


def test_socks5_proxy_wrong_password(proxies, echo_server):
    proxy = proxies("microsocks", auth=True)
    with pytest.raises(websync.ProxyError, match="rejected the username and password") as info:
        websync.connect(origin(echo_server), proxy=proxy.url("socks5", WRONG), open_timeout=10)
    assert "wrong-password" not in str(info.value)


def test_socks5_proxy_cannot_reach_the_server(proxies):
    proxy = proxies("microsocks")
    with pytest.raises(websync.ProxyError, match="could not connect to 127.0.0.1") as info:
        websync.connect(f"ws://127.0.0.1:{free_port()}/", proxy=proxy.url("socks5"), open_timeout=10)
    assert info.value.socks_reply is not None and info.value.socks_reply != 0


# -- failures before the tunnel ----------------------------------------------------------------------


def test_unreachable_proxy_is_a_transport_error_without_credentials(echo_server):
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}"
    with pytest.raises(websync.TransportError, match="cannot connect to proxy http://127.0.0.1") as info:
        websync.connect(origin(echo_server), proxy=url, open_timeout=5)
    assert PASSWORD not in str(info.value) and USER not in str(info.value)


def test_silent_proxy_is_bounded_by_open_timeout(raw_server, echo_server):
    server = raw_server(lambda peer: peer.wait_stop())  # accepts, never answers CONNECT
    start = time.monotonic()
    with pytest.raises(websync.OpenTimeout, match="proxy"):
        websync.connect(origin(echo_server), proxy=f"http://127.0.0.1:{server.port}", open_timeout=0.5)
    assert time.monotonic() - start < 2


# -- the environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "secure"),
    [("http_proxy", False), ("HTTP_PROXY", False), ("https_proxy", True), ("HTTPS_PROXY", True), ("ALL_PROXY", False)],
)
def test_environment_proxy_is_used_by_default(
    proxies, echo_server, tls_echo, client_ssl_context, monkeypatch, variable, secure
):
    proxy = proxies("tinyproxy", auth=True)
    server = tls_echo if secure else echo_server
    tls = {"ssl": client_ssl_context} if secure else {}
    monkeypatch.setenv(variable, proxy.url("http", WRONG))
    with pytest.raises(websync.ProxyError) as info:  # went to the proxy: it refused the credentials
        websync.connect(origin(server, secure), open_timeout=10, **tls)
    assert info.value.status == 401
    monkeypatch.setenv(variable, proxy.url("http", proxy.credentials))
    echo_once(origin(server, secure), **tls)


@pytest.mark.parametrize("no_proxy", ["localhost", ".localhost", "LOCALHOST", "*", "example.com, localhost:{port}"])
def test_no_proxy_bypasses_the_environment_proxy(echo_server, monkeypatch, no_proxy):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(websync.TransportError, match="cannot connect to proxy"):
        websync.connect(origin(echo_server), open_timeout=5)
    monkeypatch.setenv("NO_PROXY", no_proxy.format(port=echo_server.port))
    echo_once(origin(echo_server))


def test_no_proxy_for_another_port_does_not_bypass(echo_server, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("no_proxy", f"localhost:{echo_server.port + 1}")
    with pytest.raises(websync.TransportError, match="cannot connect to proxy"):
        websync.connect(origin(echo_server), open_timeout=5)


def test_proxy_none_ignores_the_environment(echo_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ALL_PROXY", f"socks5://127.0.0.1:{free_port()}")
    echo_once(origin(echo_server), proxy=None)


def test_explicit_proxy_wins_over_the_environment(proxies, echo_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "*")
    proxy = proxies("microsocks")
    echo_once(origin(echo_server), proxy=proxy.url("socks5"))


# -- workers, tracing ----------------------------------------------------------------------------------


class Echoes(websync.Handler):
    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: queue.SimpleQueue[object] = queue.SimpleQueue()

    def handle_connect(self, response):
        return websync.Text("hello from a worker")

    def handle_frame(self, frame):
        self.frames.put(frame.data)
        return websync.Stop()


def test_worker_through_a_proxy(proxies, echo_server):
    proxy = proxies("squid", auth=True)
    handler = Echoes(origin(echo_server))
    worker = websync.start(handler, proxy=proxy.url("http", proxy.credentials))
    try:
        assert handler.frames.get(timeout=10) == "hello from a worker"
    finally:
        worker.stop(timeout=5)
    assert f"localhost:{echo_server.port}" in wait_for_log(proxy, f"localhost:{echo_server.port}")


def test_trace_names_the_proxy_without_credentials(proxies, echo_server, caplog):
    proxy = proxies("tinyproxy", auth=True)
    caplog.set_level(logging.DEBUG, logger="websync")
    echo_once(origin(echo_server), proxy=proxy.url("http", proxy.credentials), trace=True)
    text = caplog.text
    assert f"through proxy http://127.0.0.1:{proxy.ports['http']}" in text
    assert PASSWORD not in text and USER not in text


def test_worker_logs_never_show_proxy_credentials(proxies, echo_server, caplog):
    proxy = proxies("squid", auth=True)
    caplog.set_level(logging.DEBUG, logger="websync")

    class Refused(websync.Handler):
        url = origin(echo_server)
        reasons: queue.SimpleQueue[Exception] = queue.SimpleQueue()

        def handle_disconnect(self, reason, attempt):
            self.reasons.put(reason)
            return websync.Stop("normal")

    worker = websync.start(Refused(), proxy=proxy.url("http", WRONG), trace=True)
    try:
        reason = Refused.reasons.get(timeout=10)
    finally:
        worker.stop(timeout=5)
    assert isinstance(reason, websync.ProxyError) and reason.status == 407
    assert "407" in caplog.text and "wrong-password" not in caplog.text


# -- HTTP/2 (RFC 8441) through a tunnel: hypercorn behind the proxies ----------------------------------


@pytest.fixture(scope="module")
def hypercorn(tmp_path_factory, tls_certfile):
    """``hypercorn(tls)``: a hypercorn RFC 8441 echo server (h2c, or TLS with ALPN h2)."""
    pytest.importorskip("hypercorn")
    servers: dict[bool, Spawned] = {}
    logs = tmp_path_factory.mktemp("hypercorn-behind-proxies")

    def factory(tls: bool) -> Spawned:
        if tls not in servers:
            argv = [sys.executable, "-m", "hypercorn", "tests.peers.asgi_echo:app", "--bind", "127.0.0.1:0"]
            if tls:
                argv += ["--certfile", str(tls_certfile), "--keyfile", str(tls_certfile)]
            servers[tls] = Spawned(argv, r"Running on https?://127\.0\.0\.1:(\d+)", logs / f"{tls}.log", cwd=REPO)
        return servers[tls]

    yield factory
    for server in servers.values():
        server.stop()


@pytest.mark.parametrize(("kind", "scheme"), [("tinyproxy", "http"), ("microsocks", "socks5h"), ("squid", "https")])
@pytest.mark.parametrize("secure", [False, True], ids=["h2c", "h2-alpn"])
def test_http2_through_a_proxy(proxies, hypercorn, client_ssl_context, h2_client_ssl_context, kind, scheme, secure):
    proxy = proxies(kind)
    server = hypercorn(secure)
    url = f"{'wss' if secure else 'ws'}://localhost:{server.port}/"
    options = {"ssl": h2_client_ssl_context, "proxy_ssl": client_ssl_context}  # a caller's context offers h2 itself
    with websync.connect(url, http2=True, proxy=proxy.url(scheme), open_timeout=10, **options) as ws:
        assert ws.status == 200  # an RFC 8441 answer: HTTP/2 inside the tunnel
        ws.send("h2 through the proxy")
        assert ws.recv(timeout=5) == "h2 through the proxy"
    if kind != "microsocks":
        assert f"localhost:{server.port}" in wait_for_log(proxy, f"localhost:{server.port}")
