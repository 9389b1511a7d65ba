"""Real HTTP/2 WebSocket servers on loopback: hypercorn and Node's http2 with npm ws, over h2c and
TLS (trustme certificates from the shared ``tls_certfile``), and Node without extended CONNECT."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from peers.h2 import Peer
from peers.spawn import Spawned

PEERS = Path(__file__).resolve().parent.parent / "peers"
NODE_DIR = PEERS / "node"
REPO = PEERS.parent.parent


@pytest.fixture(scope="session")
def spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Spawned]]:
    """``spawn(name, argv, ready, cwd=None)``: a server subprocess, stopped at the session's end."""
    logs = tmp_path_factory.mktemp("http2-peers")
    started: list[Spawned] = []

    def factory(name: str, argv: list[str], ready: str, cwd: Path | None = None) -> Spawned:
        process = Spawned(argv, ready, logs / f"{name}.log", cwd=cwd)
        started.append(process)
        return process

    yield factory
    for process in started:
        process.stop()


def _hypercorn(spawn: Callable[..., Spawned], name: str, *tls: str) -> Spawned:
    pytest.importorskip("hypercorn")
    argv = [sys.executable, "-m", "hypercorn", "tests.peers.asgi_echo:app", "--bind", "127.0.0.1:0", *tls]
    return spawn(name, argv, r"Running on https?://127\.0\.0\.1:(\d+)", cwd=REPO)


@pytest.fixture(scope="session")
def hypercorn_h2c(spawn: Callable[..., Spawned]) -> Peer:
    server = _hypercorn(spawn, "hypercorn-h2c")
    return Peer("hypercorn-h2c", f"ws://127.0.0.1:{server.port}", None)


@pytest.fixture(scope="session")
def hypercorn_tls(spawn: Callable[..., Spawned], tls_certfile: Path, client_ssl_context: ssl.SSLContext) -> Peer:
    server = _hypercorn(spawn, "hypercorn-tls", "--certfile", str(tls_certfile), "--keyfile", str(tls_certfile))
    return Peer("hypercorn-tls", f"wss://localhost:{server.port}", client_ssl_context)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``npm install`` of the Node peers' dependencies (npm ws) once; skips without node and npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node.js http2 peers")
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, capture_output=True, timeout=120
        )
        if result.returncode:
            pytest.skip(f"npm install failed: {result.stderr.decode(errors='replace')[-500:]}")
    return NODE_DIR / "node_modules"


def _node(spawn: Callable[..., Spawned], name: str, *args: str) -> Spawned:
    return spawn(name, ["node", str(NODE_DIR / "h2_ws_server.js"), *args], r"PORT (\d+)")


@pytest.fixture(scope="session")
def node_h2c(spawn: Callable[..., Spawned], node_modules: Path) -> Peer:
    return Peer("node-h2c", f"ws://127.0.0.1:{_node(spawn, 'node-h2c').port}", None)


@pytest.fixture(scope="session")
def node_tls(
    spawn: Callable[..., Spawned], node_modules: Path, tls_certfile: Path, client_ssl_context: ssl.SSLContext
) -> Peer:
    server = _node(spawn, "node-tls", "--tls", str(tls_certfile))
    return Peer("node-tls", f"wss://localhost:{server.port}", client_ssl_context)


@pytest.fixture(scope="session")
def node_no_connect_h2c(spawn: Callable[..., Spawned], node_modules: Path) -> Peer:
    """Node's http2 with ``enableConnectProtocol: false`` (h2c)."""
    server = _node(spawn, "node-no-connect-h2c", "--no-connect-protocol")
    return Peer("node-no-connect-h2c", f"ws://127.0.0.1:{server.port}", None)


@pytest.fixture(scope="session")
def node_no_connect_tls(
    spawn: Callable[..., Spawned], node_modules: Path, tls_certfile: Path, client_ssl_context: ssl.SSLContext
) -> Peer:
    """Node's http2 over TLS without extended CONNECT, serving HTTP/1.1 upgrades on the same port."""
    server = _node(spawn, "node-no-connect-tls", "--tls", str(tls_certfile), "--no-connect-protocol", "--allow-http1")
    return Peer("node-no-connect-tls", f"wss://localhost:{server.port}", client_ssl_context)


@pytest.fixture(params=["hypercorn_h2c", "hypercorn_tls", "node_h2c", "node_tls"])
def peer(request: pytest.FixtureRequest) -> Peer:
    """Each RFC 8441 server in turn."""
    return request.getfixturevalue(request.param)
