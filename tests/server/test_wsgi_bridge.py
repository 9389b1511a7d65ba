"""websync.wsgi: a Flask app under real gunicorn (gthread) and werkzeug's development server accepts
WebSockets from clients we did not write (websockets) and from websync's own, while its plain HTTP
routes keep working on the same server."""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.exceptions import InvalidStatus as WebsocketsInvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol
from werkzeug.serving import BaseWSGIServer, make_server
from wsgi_app import Echo, Refuser, create_app

import websync
import websync.wsgi
from supervisors import DynamicSupervisor

pytestmark = pytest.mark.timeout(60)

TESTS = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
STARTUP_TIMEOUT = 20.0
ANSI_STYLE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Running:
    """A WSGI server serving the test app on 127.0.0.1:``port``; ``log()`` is what it has logged."""

    name: str
    port: int
    log: Callable[[], str]

    def url(self, path: str, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path, "http"), timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def ended(self) -> list[dict[str, Any]]:
        """How the WebSockets of the server's app ended, oldest first."""
        status, body = self.get("/events")
        assert status == 200
        events: list[dict[str, Any]] = json.loads(body)
        return events

    def next_end(self, before: int) -> dict[str, Any]:
        """How the WebSocket after the first ``before`` ended, once its ``terminate`` has run."""
        deadline = time.monotonic() + 5
        while len(ended := self.ended()) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        return ended[before]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with _gunicorn(tmp_path_factory.mktemp("gunicorn"), "gthread") as running:
        yield running


class _gunicorn:
    """gunicorn serving tests/wsgi_app.py on a listening socket it inherits; stopped by its pid."""

    def __init__(self, directory: Path, worker_class: str, threads: int = 4) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.logfile = directory / "gunicorn.log"
        command = [
            str(GUNICORN), "--worker-class", worker_class, "--threads", str(threads), "--workers", "1",
            "--bind", f"fd://{self.listener.fileno()}", "--chdir", str(TESTS), "--no-control-socket",
            "--access-logfile", "-", "--error-logfile", "-", "--graceful-timeout", "5", "wsgi_app:app",
        ]  # fmt: skip
        with self.logfile.open("w") as log:
            self.process = subprocess.Popen(
                command, pass_fds=[self.listener.fileno()], stdout=log, stderr=subprocess.STDOUT
            )
        self.running = Running(f"gunicorn {worker_class}", self.listener.getsockname()[1], self.logfile.read_text)

    def __enter__(self) -> Running:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.running.get("/hello")[0] == 200:
                    return self.running
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not start:\n{self.logfile.read_text()}")

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.listener.close()


class _LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(ANSI_STYLE.sub("", self.format(record)))  # werkzeug colours its access lines


def _werkzeug(app: Any, *, threaded: bool = True) -> Iterator[Running]:
    """werkzeug's development server in a thread of this process; its log is what werkzeug and the app logged."""
    records = _LogRecords()
    loggers = [logging.getLogger("werkzeug"), logging.getLogger("wsgi_app")]  # the server's, the Flask app's
    for logger in loggers:
        logger.addHandler(records)
        logger.setLevel(logging.INFO)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=threaded)
    thread = threading.Thread(target=server.serve_forever, name="werkzeug-test-server", daemon=True)
    thread.start()
    try:
        yield Running("werkzeug", server.port, lambda: "\n".join(records.lines))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        for logger in loggers:
            logger.removeHandler(records)


@pytest.fixture(scope="module")
def werkzeug() -> Iterator[Running]:
    yield from _werkzeug(create_app())


@pytest.fixture(params=["gunicorn", "werkzeug"])
def served(request: pytest.FixtureRequest) -> Running:
    """The app under each server."""
    running: Running = request.getfixturevalue(request.param)
    return running


def _handshake_request(path: str, version: str = "HTTP/1.1", upgrade: bool = True) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} {version}", "Host: 127.0.0.1"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- echo and close codes, under each server -------------------------------------------------------


def test_websockets_client_echo(served: Running) -> None:
    messages: list[str | bytes] = ["hello", "ünïcødé ✓", b"\x00\xff" * 40_000, ""]
    with ws_connect(served.url("/ws"), subprotocols=[Subprotocol("chat")]) as ws:
        assert ws.subprotocol == "chat"
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=5) == message


def test_websync_client_echo(served: Running) -> None:
    with websync.connect(served.url("/ws")) as ws:
        assert ws.extensions == ["permessage-deflate"]
        ws.send("text")
        assert ws.recv(timeout=5) == "text"
        ws.send(b"\x01" * 300_000, fragment_size=4096)
        assert ws.recv(timeout=5) == b"\x01" * 300_000


def test_server_closes_with_the_handlers_code(served: Running) -> None:
    before = len(served.ended())
    with ws_connect(served.url("/ws")) as ws:
        ws.send("close 4001")
        with pytest.raises(WebsocketsClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    assert served.next_end(before)["code"] == 4001


def test_client_close_code_reaches_terminate(served: Running) -> None:
    before = len(served.ended())
    with websync.connect(served.url("/ws")) as ws:
        ws.send("x")
        assert ws.recv(timeout=5) == "x"
        ws.close(4002, "bye")
    end = served.next_end(before)
    assert end["code"] == 4002 and "bye" in end["reason"]


def test_plain_http_beside_open_websockets(served: Running) -> None:
    with ws_connect(served.url("/ws")) as first, websync.connect(served.url("/ws")) as second:
        assert served.get("/hello") == (200, b"hello over HTTP")
        first.send("still open")
        second.send("me too")
        assert (first.recv(timeout=5), second.recv(timeout=5)) == ("still open", "me too")
    for _ in range(3):  # the request threads the WebSockets held serve HTTP again
        assert served.get("/hello") == (200, b"hello over HTTP")


def test_rejection_is_an_ordinary_response(served: Running) -> None:
    with pytest.raises(WebsocketsInvalidStatus) as refused:
        ws_connect(served.url("/reject"))
    response = refused.value.response
    assert (response.status_code, response.body, response.headers["X-Why"]) == (403, b"not you", "test")
    with pytest.raises(websync.InvalidStatus) as refused_websync:
        websync.connect(served.url("/reject"))
    assert refused_websync.value.status == 403
    assert served.get("/hello")[0] == 200


def test_server_writes_nothing_after_the_websocket(served: Running) -> None:
    """The server's own response meets a dead socket: no bytes after the close, no error logged."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(_handshake_request("/ws"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        sock.sendall(bytes([0x88, 0x82]) + b"\x00\x00\x00\x00" + (1000).to_bytes(2, "big"))  # masked close 1000
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert rest == bytes([0x88, 0x02]) + (1000).to_bytes(2, "big")  # the close reply, then EOF
    deadline = time.monotonic() + 5
    while '"GET /ws HTTP/1.1" 101' not in served.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = served.log()
    assert '"GET /ws HTTP/1.1" 101' in log
    assert "Traceback" not in log and "Error on request" not in log and "[ERROR]" not in log


# -- werkzeug only: a plain WSGI app, refusals, a supervisor ------------------------------------------


def _plain_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return websync.wsgi.accept(environ, Echo)(environ, start_response)


@pytest.fixture
def plain(request: pytest.FixtureRequest) -> Iterator[Running]:
    yield from _werkzeug(_plain_wsgi_app)


def test_plain_wsgi_app_refuses_a_request_without_upgrade(plain: Running) -> None:
    answer = _raw_exchange(plain.port, _handshake_request("/", upgrade=False))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 426 ") and b"\r\nUpgrade: websocket" in head
    assert head.lower().count(b"\r\nconnection:") == 1  # the server's own: an app sends no hop-by-hop header
    assert body == b"this is a WebSocket endpoint: ask for an upgrade"


def test_plain_wsgi_app_refuses_http_1_0(plain: Running) -> None:
    answer = _raw_exchange(plain.port, _handshake_request("/", version="HTTP/1.0"))
    assert b" 400 " in answer.split(b"\r\n")[0]
    assert answer.endswith(b"WebSocket needs HTTP/1.1, not 'HTTP/1.0'")


def test_plain_wsgi_app_echoes(plain: Running) -> None:
    with ws_connect(plain.url("/any/path?x=1")) as ws:
        ws.send("plain")
        assert ws.recv(timeout=5) == "plain"


def test_a_refusal_leaves_the_servers_socket_blocking_as_it_was() -> None:
    """The worker's duplicate of the socket was non-blocking, a flag the two descriptors share."""
    flags: list[int] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = websync.wsgi.accept(environ, Refuser)
        flags.append(fcntl.fcntl(environ["werkzeug.socket"].fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)
        return answer(environ, start_response)

    for running in _werkzeug(app):
        with pytest.raises(WebsocketsInvalidStatus) as refused:
            ws_connect(running.url("/"))
        assert refused.value.response.status_code == 403
    assert flags == [0]


def test_supervisor_bounds_and_stops_the_websockets() -> None:
    supervisor = DynamicSupervisor(max_children=1, max_restarts=0).start()
    try:
        for running in _werkzeug(create_app(supervisor)):
            with ws_connect(running.url("/ws")) as ws:
                ws.send("one")
                assert ws.recv(timeout=5) == "one"
                with pytest.raises(WebsocketsInvalidStatus) as refused:
                    ws_connect(running.url("/ws"))
                assert refused.value.response.status_code == 503
                (worker,) = [process for _, process, _ in supervisor.which_children()]
                assert isinstance(worker, websync.Worker) and worker.is_alive()
                supervisor.stop("shutdown", 10)
                with pytest.raises(WebsocketsClosed) as closed:
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    finally:
        supervisor.stop("shutdown", 5)


# -- servers that cannot lend a connection --------------------------------------------------------------


def test_gunicorn_sync_worker_is_refused(tmp_path: Path) -> None:
    with _gunicorn(tmp_path, "sync", threads=1) as running:  # with threads, "sync" means gthread
        with pytest.raises(WebsocketsInvalidStatus) as refused:
            ws_connect(running.url("/ws"))
        assert refused.value.response.status_code == 500
        assert running.get("/hello")[0] == 200
        assert "UnsupportedServer: gunicorn" in running.log() and "sync worker" in running.log()


def test_werkzeug_without_threads_is_refused() -> None:
    for running in _werkzeug(create_app(), threaded=False):
        with pytest.raises(WebsocketsInvalidStatus) as refused:
            ws_connect(running.url("/ws"))
        assert refused.value.response.status_code == 500
        assert "UnsupportedServer" in running.log()


def _environ(**extra: Any) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.multithread": True,
    }  # fmt: skip
    environ.update(extra)
    return environ


def test_a_server_that_lends_no_socket_is_refused() -> None:
    with pytest.raises(websync.wsgi.UnsupportedServer, match="wsgiref/0.2 does not lend"):
        websync.wsgi.accept(_environ(SERVER_SOFTWARE="wsgiref/0.2"), Echo)


def test_a_tls_socket_is_refused() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with (
        context.wrap_socket(socket.socket(), server_side=True) as tls,
        pytest.raises(websync.wsgi.UnsupportedServer, match="TLS"),
    ):
        websync.wsgi.accept(_environ(**{"gunicorn.socket": tls}), Echo)


@pytest.mark.parametrize("option", ["max_connections", "handshake_timeout"])
def test_options_of_the_wsgi_server_are_refused(option: str) -> None:
    options: dict[str, Any] = {option: 1}
    with pytest.raises(TypeError, match=option):
        websync.wsgi.accept(_environ(), Echo, **options)


def test_request_from_environ_without_raw_uri() -> None:
    environ = _environ(SCRIPT_NAME="/app", PATH_INFO="/a b/ü".encode().decode("latin-1"), QUERY_STRING="x=1")
    environ.update(HTTP_SEC_WEBSOCKET_KEY="k", HTTP_UPGRADE="websocket")
    request = websync.wsgi.request_from_environ(environ)
    assert request.path == "/app/a%20b/%C3%BC?x=1"
    assert (request.headers["sec-websocket-key"], request.headers["Upgrade"]) == ("k", "websocket")


NO_STACK_FITS = 1 << 40
"""A thread stack of 1 TiB: more than the machine's memory, so no thread can start with it."""


def test_no_thread_for_the_websocket_is_a_503() -> None:
    """The bridge's worker cannot start (``threading.stack_size`` past what the machine can map,
    set around the upgrade only): the client gets 503, as from a full supervisor, not a 500."""
    threading.stack_size(NO_STACK_FITS)
    try:
        probe = threading.Thread(target=lambda: None)
        try:
            probe.start()
        except RuntimeError:
            pass
        else:
            probe.join()
            pytest.skip("this machine maps a 1 TiB thread stack (memory overcommit: always)")
    finally:
        threading.stack_size(0)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        threading.stack_size(NO_STACK_FITS)
        try:
            answer = websync.wsgi.accept(environ, Echo)
        finally:
            threading.stack_size(0)
        return answer(environ, start_response)

    for running in _werkzeug(app):
        with pytest.raises(WebsocketsInvalidStatus) as refused:
            ws_connect(running.url("/"))
        assert refused.value.response.status_code == 503
