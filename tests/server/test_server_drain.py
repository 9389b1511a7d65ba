"""Issue 22, graceful drain: ``Server.drain(timeout)`` closes the listening socket at once, tells each
handler (``handle_info(Draining)``), lets connections run up to the timeout and closes the rest with
1001, behind nginx and HAProxy too, losing no answered message; SIGTERM drains ``python -m websync
serve`` and gunicorn workers running the WSGI bridge."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from peers.spawn import Spawned, free_port
from peers.websync_serve import finish, serve_command, wait_listening
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

import websync
import websync.wsgi
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


PROXY_CLIENTS = 20
WINDOW = 16
"""Messages each client keeps in flight: at the drain's close, some are on their way both ways."""
PROXY_DRAIN_TIMEOUT = 1.5


class Ledger:
    """The server's side of the proxy drain test: per connection path, what its handler answered."""

    def __init__(self) -> None:
        self.answered: dict[str, int] = {}
        self.before_drain: dict[str, int] = {}
        self.reasons: dict[str, object] = {}
        self.draining = threading.Event()


class Answering(ServerHandler):
    """Echoes, and writes into its ledger how many messages it answered (before the drain and in
    all) and why its connection ended."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.answered = 0

    def init(self, request: Request) -> None:
        self.path = request.path

    def handle_in(self, frame: Text | Binary) -> Any:
        self.answered += 1
        return frame

    def handle_info(self, message: Any) -> None:
        if isinstance(message, Draining):
            self.ledger.before_drain[self.path] = self.answered
            self.ledger.draining.set()

    def terminate(self, reason: object) -> None:
        self.ledger.answered[self.path] = self.answered
        self.ledger.reasons[self.path] = reason


class Traffic:
    """PROXY_CLIENTS websockets asyncio clients in one thread, each on its own path, sending
    numbered messages with WINDOW in flight until the server closes; per path: the echoes
    received (checked in order) and the close code."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.flowing = threading.Event()
        """Set once every client has had WINDOW echoes."""
        self.received: dict[str, int] = {}
        self.codes: dict[str, int | None] = {}
        self.errors: list[str] = []
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), name="proxy-drain-clients")
        self.thread.start()

    async def _main(self) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*(self._client(f"/c{i}") for i in range(PROXY_CLIENTS))), 60)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(exc))
            self.flowing.set()

    async def _client(self, path: str) -> None:
        async with async_connect(self.url + path, compression=None, ping_interval=None) as ws:
            window = asyncio.Semaphore(WINDOW)

            async def send() -> None:
                index = 0
                try:
                    while True:
                        await window.acquire()
                        await ws.send(str(index))
                        index += 1
                except WebsocketsClosed:
                    pass  # the server closed: the reader sees how

            sender = asyncio.create_task(send())
            self.received[path] = 0
            try:
                async for message in ws:
                    if message != str(self.received[path]):
                        self.errors.append(f"{path}: echo {message!r} after {self.received[path]} echoes")
                    self.received[path] += 1
                    window.release()
                    if len(self.received) == PROXY_CLIENTS and min(self.received.values()) >= WINDOW:
                        self.flowing.set()
            except WebsocketsClosed as exc:
                self.errors.append(f"{path}: {exc!r}")
            finally:
                sender.cancel()
                self.codes[path] = ws.close_code


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_a_drain_behind_a_reverse_proxy_loses_no_answered_message(request: pytest.FixtureRequest, kind: str) -> None:
    """Clients echo through nginx or HAProxy with messages in flight both ways; the drain refuses
    new clients at once (the proxy answers 502 or 503), the traffic goes on until the drain
    timeout, then every client gets 1001 and has received every message its handler answered."""
    ledger = Ledger()
    server = websync.serve(lambda: Answering(ledger), close_timeout=2)
    try:
        start: Callable[..., Spawned] = request.getfixturevalue(kind)
        front = start(server.port)
        traffic = Traffic(f"ws://127.0.0.1:{front.port}")
        assert traffic.flowing.wait(30) and not traffic.errors, traffic.errors
        drained_after: list[float] = []

        def timed_drain() -> None:
            started = time.monotonic()
            server.drain(PROXY_DRAIN_TIMEOUT)
            drained_after.append(time.monotonic() - started)

        drain = threading.Thread(target=timed_drain)
        drain.start()
        assert ledger.draining.wait(5)  # the listening socket was closed before the first Draining
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(f"ws://127.0.0.1:{front.port}/late", open_timeout=10).close()
        assert refused.value.response.status_code in (502, 503)  # the proxy found no server behind it
        traffic.thread.join(30)
        drain.join(10)
    finally:
        server.stop()
    assert not traffic.thread.is_alive() and drained_after, "the drain or the clients did not finish"
    assert not traffic.errors, traffic.errors
    assert drained_after[0] >= PROXY_DRAIN_TIMEOUT
    paths = {f"/c{i}" for i in range(PROXY_CLIENTS)}
    assert set(traffic.codes) == set(ledger.answered) == paths
    assert set(traffic.codes.values()) == {1001}
    assert {str(reason) for reason in ledger.reasons.values()} == {"shutdown"}
    for path in paths:
        assert traffic.received[path] == ledger.answered[path], path  # none lost in the proxy
        assert ledger.answered[path] > ledger.before_drain[path], path  # served during the drain
    print(
        f"drain behind {kind}: {PROXY_CLIENTS} clients, {sum(ledger.answered.values())} answers "
        f"({sum(ledger.answered.values()) - sum(ledger.before_drain.values())} during the drain), "
        f"0 lost, all closed with 1001; drain took {drained_after[0]:.2f}s"
    )


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


GRACEFUL_TIMEOUT = 4
HOOKS = {
    "default": ("post_worker_init = websync.wsgi.drain_on_graceful_exit", GRACEFUL_TIMEOUT / 2),
    "explicit": ("post_worker_init = websync.wsgi.drain_hook(3.0)", 3.0),
    "none": ("", None),
}
"""gunicorn config lines, and how long the drain lets a WebSocket run (None: no drain)."""


class Gunicorn:
    """gunicorn (gthread, one worker) serving tests/wsgi_app.py with ``config`` as its config file,
    on a listening socket it inherits; ``graceful_timeout`` as ``--graceful-timeout``."""

    def __init__(self, folder: Path, config: str, graceful_timeout: int) -> None:
        conf = folder / "gunicorn.conf.py"
        conf.write_text(f"import websync.wsgi\n{config}\n")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        command = [
            str(GUNICORN), "--worker-class", "gthread", "--threads", "4", "--workers", "1", "-c", str(conf),
            "--bind", f"fd://{self.listener.fileno()}", "--chdir", str(TESTS), "--no-control-socket",
            "--error-logfile", "-", "--graceful-timeout", str(graceful_timeout), "wsgi_app:app",
        ]  # fmt: skip
        self.log = folder / "gunicorn.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                command, pass_fds=[self.listener.fileno()], stdout=output, stderr=subprocess.STDOUT
            )

    def connect(self) -> Any:
        """A websockets client on ``/ws``, once the worker is up."""
        deadline = time.monotonic() + 20
        while True:
            try:
                return ws_connect(f"ws://127.0.0.1:{self.port}/ws", open_timeout=2, legacy=True)
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(self.log.read_text()) from None
                time.sleep(0.2)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.listener.close()


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")
@pytest.mark.parametrize("hook", HOOKS)
def test_gunicorn_worker_drains_the_bridge_on_sigterm(tmp_path: Path, hook: str) -> None:
    """With the hook, a graceful stop closes the bridge's WebSockets with 1001 once the drain
    timeout is over (half the graceful timeout, or the hook's own) and gunicorn exits; without
    it they are cut (no close frame) when it gives up."""
    config, drain_timeout = HOOKS[hook]
    server = Gunicorn(tmp_path, config, GRACEFUL_TIMEOUT)
    try:
        with server.connect() as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            started = time.monotonic()
            os.kill(server.process.pid, signal.SIGTERM)
            with pytest.raises(WebsocketsClosed):
                ws.recv(timeout=10)
            elapsed = time.monotonic() - started
        if drain_timeout is not None:
            assert ws.close_code == 1001, server.log.read_text()
            assert drain_timeout <= elapsed < GRACEFUL_TIMEOUT, elapsed  # and before gunicorn's kill
            assert server.process.wait(10) == 0, server.log.read_text()
        else:
            assert ws.close_code != 1001
    finally:
        server.close()


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")
def test_gunicorn_refuses_a_drain_longer_than_its_graceful_timeout(tmp_path: Path) -> None:
    """A drain that would leave no time for the 1001 closes stops the worker's boot, and gunicorn."""
    server = Gunicorn(tmp_path, "post_worker_init = websync.wsgi.drain_hook(5)", GRACEFUL_TIMEOUT)
    try:
        assert server.process.wait(20) != 0
    finally:
        server.close()
    log = server.log.read_text()
    assert "leaves no time for the 1001 closes" in log and "failed to boot" in log.lower(), log


def test_drain_hook_refuses_a_negative_timeout() -> None:
    with pytest.raises(ValueError, match="negative"):
        websync.wsgi.drain_hook(-1)
