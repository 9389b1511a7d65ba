"""Shared fixtures: real peers on loopback (a `websockets` server subprocess, a scripted raw
TCP peer, nginx, HAProxy, headless Chromium, npm ws), a trustme CA for TLS, and a check that a
test leaves no thread behind."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
from peers.chromium import Chromium, chromium_binary
from peers.haproxy import haproxy_binary, start_haproxy
from peers.nginx import nginx_binary, start_nginx
from peers.node_ws import node_ws_available
from peers.raw_server import THREAD_PREFIX, RawServer, Script
from peers.spawn import Spawned
from peers.websockets_server import ServerOptions, ServerProcess, start_server
from worker_peers import ScriptedServer, SilentPeer

import websync

THREAD_JOIN_TIMEOUT = 2.0


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    """A throw-away certificate authority (trustme)."""
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_certfile(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Key and certificate chain for localhost, 127.0.0.1 and ::1, in one PEM file."""
    path = tmp_path_factory.mktemp("tls") / "server.pem"
    tls_ca.issue_cert("localhost", "127.0.0.1", "::1").private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def server_ssl_context(tls_certfile: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls_certfile))
    return context


@pytest.fixture(scope="session")
def client_ssl_context(tls_ca: Any) -> ssl.SSLContext:
    """A client context that trusts only the test CA."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    tls_ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def h2_client_ssl_context(tls_ca: Any) -> ssl.SSLContext:
    """A client context that trusts only the test CA and offers h2 and http/1.1 by ALPN: what a
    caller gives for ``http2=True`` with a context of its own (websync never modifies it)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    tls_ca.configure_trust(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.fixture
def websync_trusts_the_test_ca(monkeypatch: pytest.MonkeyPatch, tls_ca: Any, tmp_path: Path) -> None:
    """Make the contexts websync builds itself (``ssl=None``, offering the ALPN protocols it
    chooses) trust the test CA instead of certifi's bundle, for this test."""
    bundle = tmp_path / "test-ca.pem"
    tls_ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setattr(certifi, "where", lambda: str(bundle))  # websync.net.transport calls certifi.where()


@pytest.fixture(scope="session")
def websockets_server(
    tmp_path_factory: pytest.TempPathFactory, tls_certfile: Path
) -> Iterator[Callable[..., ServerProcess]]:
    """``websockets_server(**options)``: a running ``websockets`` server subprocess.

    Options are those of :class:`peers.websockets_server.ServerOptions` (``send`` as a list)
    plus ``tls=True`` (serve wss with the trustme certificate). Servers with equal options are shared by the whole
    session and killed at its end.
    """
    servers: dict[ServerOptions, ServerProcess] = {}
    logs = tmp_path_factory.mktemp("websockets-server")

    def factory(*, tls: bool = False, **options: Any) -> ServerProcess:
        if options.get("subprotocols") is not None:
            options["subprotocols"] = tuple(options["subprotocols"])
        if "send" in options:
            options["send"] = json.dumps(list(options["send"]))
        key = ServerOptions(certfile=str(tls_certfile) if tls else None, **options)
        if key not in servers:
            servers[key] = start_server(key, logs / f"server-{len(servers)}.log")
        return servers[key]

    yield factory
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def echo_server(websockets_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A ``websockets`` echo server (compression on, no size limit); ``/request`` first reports the request."""
    return websockets_server()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """``raw_server(script, ssl_context=None)``: a scripted raw TCP peer, closed at teardown."""
    servers: list[RawServer] = []

    def factory(script: Script, *, ssl_context: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(script, ssl_context=ssl_context)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.close()


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    """Fail the test if a thread it started (raw peers aside) is still alive shortly after it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_JOIN_TIMEOUT
    leaked = []
    for thread in threading.enumerate():
        if thread in before or thread.name.startswith(THREAD_PREFIX):
            continue
        thread.join(max(deadline - time.monotonic(), 0))
        if thread.is_alive():
            leaked.append(thread)
    assert not leaked, f"threads left running: {leaked}"


# -- browsers and reverse proxies (tests/peers/chromium.py, nginx.py, haproxy.py, node_ws.py) -------


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory, tls_certfile: Path) -> Iterator[Callable[..., Spawned]]:
    """``nginx(backend_port, tls=False, http2=False)``: a running nginx (``.port``) in front of
    127.0.0.1:backend_port, TLS with the trustme certificate; shared by equal arguments, stopped
    at the session's end. Skips without nginx."""
    started: dict[tuple[int, bool, bool], Spawned] = {}

    def factory(backend: int, *, tls: bool = False, http2: bool = False) -> Spawned:
        if nginx_binary() is None:
            pytest.skip("nginx is not installed (Debian package nginx-light)")
        key = (backend, tls, http2)
        if key not in started:
            folder = tmp_path_factory.mktemp("nginx")
            started[key] = start_nginx(folder, backend, certfile=tls_certfile if tls else None, http2=http2)
        return started[key]

    yield factory
    for process in started.values():
        process.stop()


@pytest.fixture(scope="session")
def haproxy(tmp_path_factory: pytest.TempPathFactory, tls_certfile: Path) -> Iterator[Callable[..., Spawned]]:
    """``haproxy(backend_port, tls=False)``: like :func:`nginx`, with HAProxy. Skips without it."""
    started: dict[tuple[int, bool], Spawned] = {}

    def factory(backend: int, *, tls: bool = False) -> Spawned:
        if haproxy_binary() is None:
            pytest.skip("haproxy is not installed (Debian package haproxy)")
        if (backend, tls) not in started:
            folder = tmp_path_factory.mktemp("haproxy")
            started[backend, tls] = start_haproxy(folder, backend, certfile=tls_certfile if tls else None)
        return started[backend, tls]

    yield factory
    for process in started.values():
        process.stop()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """A headless Chromium with a page on a local origin (``chromium.evaluate(js)``). Skips without it."""
    if chromium_binary() is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    browser = Chromium(tmp_path_factory.mktemp("chromium"))
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def node_ws() -> None:
    """Skips unless node and npm ``ws`` are installed (use :mod:`peers.node_ws` then)."""
    missing = node_ws_available()
    if missing is not None:
        pytest.skip(missing)


# -- the worker tests' peers (tests/worker_peers.py) ----------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """A ``websockets`` server shared by a module's tests (they use distinct paths)."""
    scripted = ScriptedServer().start()
    yield scripted
    scripted.kill()


@pytest.fixture
def own_server() -> Iterator[ScriptedServer]:
    """A server for one test, which may kill and restart it."""
    scripted = ScriptedServer()
    yield scripted
    scripted.kill()


@pytest.fixture
def silent_peers() -> Iterator[Callable[..., SilentPeer]]:
    """``silent_peers(**options)``: a :class:`SilentPeer`, closed at teardown."""
    peers: list[SilentPeer] = []

    def make(**kwargs: Any) -> SilentPeer:
        peers.append(SilentPeer(**kwargs))
        return peers[-1]

    yield make
    for peer in peers:
        peer.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., websync.Worker]]:
    """``spawn(handler, **options)``: websync.start with a short close_timeout; stopped at teardown."""
    started: list[websync.Worker] = []

    def start(handler: websync.Handler, **options: Any) -> websync.Worker:
        options.setdefault("close_timeout", 2)
        worker = websync.start(handler, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.is_alive():
            worker.stop(timeout=3)
