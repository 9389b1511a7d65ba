"""Real HTTP/2 WebSocket servers on loopback: hypercorn and Node's http2 with npm ws, over h2c and
TLS (trustme certificates from the shared ``tls_certfile``), and Node without extended CONNECT."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.h2 import Peer
from peers.spawn import Spawned, free_port

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
def hypercorn_tls(spawn: Callable[..., Spawned], tls_certfile: Path, h2_client_ssl_context: ssl.SSLContext) -> Peer:
    server = _hypercorn(spawn, "hypercorn-tls", "--certfile", str(tls_certfile), "--keyfile", str(tls_certfile))
    return Peer("hypercorn-tls", f"wss://localhost:{server.port}", h2_client_ssl_context)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``npm install`` of the Node peers' dependencies (npm ws) once; skips without node and npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node.js http2 peers")
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            capture_output=True,
            timeout=120,
            check=False,
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
    spawn: Callable[..., Spawned], node_modules: Path, tls_certfile: Path, h2_client_ssl_context: ssl.SSLContext
) -> Peer:
    server = _node(spawn, "node-tls", "--tls", str(tls_certfile))
    return Peer("node-tls", f"wss://localhost:{server.port}", h2_client_ssl_context)


@pytest.fixture(scope="session")
def node_no_connect_h2c(spawn: Callable[..., Spawned], node_modules: Path) -> Peer:
    """Node's http2 with ``enableConnectProtocol: false`` (h2c)."""
    server = _node(spawn, "node-no-connect-h2c", "--no-connect-protocol")
    return Peer("node-no-connect-h2c", f"ws://127.0.0.1:{server.port}", None)


@pytest.fixture(scope="session")
def node_no_connect_tls(
    spawn: Callable[..., Spawned], node_modules: Path, tls_certfile: Path, h2_client_ssl_context: ssl.SSLContext
) -> Peer:
    """Node's http2 over TLS without extended CONNECT, serving HTTP/1.1 upgrades on the same port."""
    server = _node(spawn, "node-no-connect-tls", "--tls", str(tls_certfile), "--no-connect-protocol", "--allow-http1")
    return Peer("node-no-connect-tls", f"wss://localhost:{server.port}", h2_client_ssl_context)


@pytest.fixture(params=["hypercorn_h2c", "hypercorn_tls", "node_h2c", "node_tls"])
def peer(request: pytest.FixtureRequest) -> Peer:
    """Each RFC 8441 server in turn."""
    server: Peer = request.getfixturevalue(request.param)
    return server


@pytest.fixture(scope="session")
def h2_proxy(
    spawn: Callable[..., Spawned], tmp_path_factory: pytest.TempPathFactory, websockets_server: Callable[..., Any]
) -> Callable[..., Peer]:
    """``h2_proxy(kind, name, backend=None)``: nghttpx or Apache mod_http2 (kind) as an RFC 8441 h2c
    front of a ``websockets`` HTTP/1.1 server (``"echo"``, or ``"close"``: closes with 4001 "bye"
    after one echo), or of the server on port ``backend`` (then ``name`` is the front's own).
    Skips when the Debian package is not installed."""
    backends = {
        "echo": websockets_server(),
        "close": websockets_server(close_code=4001, close_reason="bye", close_after=1),
    }
    started: dict[tuple[str, str], Peer] = {}

    def factory(kind: str, name: str, backend: int | None = None) -> Peer:
        if (kind, name) not in started:
            folder = tmp_path_factory.mktemp(f"{kind}-{name}")
            port, backend = free_port(), backends[name].port if backend is None else backend
            if kind == "nghttpx":
                if shutil.which("nghttpx") is None:
                    pytest.skip("nghttpx is not installed (Debian package nghttp2-proxy)")
                (folder / "nghttpx.conf").write_text(NGHTTPX_CONF.format(port=port, backend=backend))
                argv = ["nghttpx", f"--conf={folder / 'nghttpx.conf'}"]
                spawn(f"nghttpx-{name}", argv, r"Created worker thread")
            else:
                if shutil.which("apache2") is None or not Path(APACHE_MODULES, "mod_http2.so").exists():
                    pytest.skip("Apache httpd with mod_http2 is not installed (Debian package apache2)")
                conf = APACHE_CONF.format(port=port, backend=backend, folder=folder, modules=APACHE_MODULES)
                (folder / "httpd.conf").write_text(conf)
                argv = ["apache2", "-f", str(folder / "httpd.conf"), "-DFOREGROUND"]
                spawn(f"apache-{name}", argv, r"resuming normal operations")
            started[kind, name] = Peer(f"{kind}-{name}", f"ws://127.0.0.1:{port}", None)
        return started[kind, name]

    return factory


NGHTTPX_CONF = """\
frontend=127.0.0.1,{port};no-tls
backend=127.0.0.1,{backend};;proto=http/1.1
workers=1
no-ocsp=yes
backend-connections-per-host=64
"""

APACHE_MODULES = "/usr/lib/apache2/modules"
APACHE_CONF = """\
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {folder}/httpd.pid
DefaultRuntimeDir {folder}
Mutex file:{folder}
ErrorLog /proc/self/fd/2
LogLevel notice
User www-data
Group www-data
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule http2_module {modules}/mod_http2.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so
LoadModule proxy_wstunnel_module {modules}/mod_proxy_wstunnel.so
Protocols h2c http/1.1
H2WebSockets on
ProxyPass / ws://127.0.0.1:{backend}/ upgrade=websocket
"""
