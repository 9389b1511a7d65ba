"""Issue 22, graceful drain: ``Server.drain(timeout)`` closes the listening socket at once, tells each
handler (``handle_info(Draining)``), lets connections run up to the timeout and closes the rest with
1001; SIGTERM drains ``python -m websync serve`` and gunicorn workers running the WSGI bridge."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from peers.spawn import free_port
from peers.websync_serve import finish, serve_command, wait_listening
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.sync.client import connect as ws_connect

import websync
from websync import Binary, Close, Draining, ServerHandler, Text
from websync.core.server_handshake import Request

pytestmark = pytest.mark.timeout(60)

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


class Polite(ServerHandler):
    """On a drain, ``/leave`` closes at once with 1000; others say ``draining`` and stay."""

    drained: list[Draining]

    def init(self, request: Request) -> None:
        self.path = request.path

    def handle_in(self, frame: Text | Binary) -> Any:
        return frame

    def handle_info(self, message: Any) -> Any:
        if isinstance(message, Draining):
            self.drained.append(message)
            return Close(1000, "leaving") if self.path == "/leave" else Text("draining")
        return None


def test_drain_tells_handlers_refuses_at_once_and_closes_the_rest_with_1001() -> None:
    drained: list[Draining] = []

    def factory() -> Polite:
        handler = Polite()
        handler.drained = drained
        return handler

    server = websync.serve(factory, close_timeout=2)
    port = server.port
    with ExitStack() as stack:
        leaving = stack.enter_context(ws_connect(f"ws://127.0.0.1:{port}/leave"))
        staying = [stack.enter_context(ws_connect(f"ws://127.0.0.1:{port}/stay")) for _ in range(3)]
        try:
            drain_and_check(server, leaving, staying, drained)
        finally:
            server.stop()


def drain_and_check(server: websync.Server, leaving: Any, staying: list[Any], drained: list[Draining]) -> None:
    port = server.port
    staying[0].send("before")
    assert staying[0].recv(timeout=5) == "before"
    started = time.monotonic()
    drain = threading.Thread(target=server.drain, args=(1.5,))
    drain.start()
    with pytest.raises(WebsocketsClosed):
        leaving.recv(timeout=5)
    assert leaving.close_code == 1000
    with pytest.raises(ConnectionRefusedError):  # the listening socket is closed already
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    for ws in staying:
        assert ws.recv(timeout=5) == "draining"
    staying[1].send("still served while draining")
    assert staying[1].recv(timeout=5) == "still served while draining"
    for ws in staying:
        with pytest.raises(WebsocketsClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1001
    drain.join(10)
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 4, elapsed
    assert len(drained) == 4 and all(message.timeout == 1.5 for message in drained)
    assert server.join(1) and server.connections == []


def test_drain_ends_early_when_every_connection_is_gone() -> None:
    server = websync.serve(Polite, close_timeout=2)
    Polite.drained = []
    with ws_connect(f"ws://127.0.0.1:{server.port}/leave") as ws:
        started = time.monotonic()
        server.drain(30)
        assert time.monotonic() - started < 3
        assert ws.close_code == 1000 or ws.recv(timeout=1) is None
    assert server.join(1)


def test_sigterm_drains_the_serve_command() -> None:
    port = free_port()
    process = serve_command(port, "--drain-timeout", "1")
    try:
        wait_listening(port, process)
        with ws_connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            process.send_signal(signal.SIGTERM)
            assert ws.recv(timeout=5) == "draining"
            ws.send("during the drain")
            assert ws.recv(timeout=5) == "during the drain"
            with pytest.raises(WebsocketsClosed):
                ws.recv(timeout=5)
            assert ws.close_code == 1001
    finally:
        status, _, stderr = finish(process)
    assert status == 0, stderr
    assert "drained" in stderr


GUNICORN_CONF = """\
import websync.wsgi
post_worker_init = websync.wsgi.drain_on_graceful_exit
"""


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")
@pytest.mark.parametrize("hooked", [True, False])
def test_gunicorn_worker_drains_the_bridge_on_sigterm(tmp_path: Path, hooked: bool) -> None:
    """With the hook, a graceful stop closes the bridge's WebSockets with 1001 after half the
    graceful timeout and gunicorn exits; without it they are cut (no close frame) when it gives up."""
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(GUNICORN_CONF if hooked else "")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    command = [
        str(GUNICORN), "--worker-class", "gthread", "--threads", "4", "--workers", "1", "-c", str(config),
        "--bind", f"fd://{listener.fileno()}", "--chdir", str(TESTS), "--no-control-socket",
        "--error-logfile", "-", "--graceful-timeout", "3", "wsgi_app:app",
    ]  # fmt: skip
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, pass_fds=[listener.fileno()], stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ws = ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=2, legacy=True)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.2)
        with ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            started = time.monotonic()
            os.kill(process.pid, signal.SIGTERM)
            with pytest.raises(WebsocketsClosed):
                ws.recv(timeout=10)
            elapsed = time.monotonic() - started
        if hooked:
            assert ws.close_code == 1001, log.read_text()
            assert 1.2 < elapsed < 2.8, elapsed  # half of the graceful timeout
        else:
            assert ws.close_code != 1001
        assert process.wait(10) == 0 or not hooked
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        listener.close()
