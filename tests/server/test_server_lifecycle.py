"""The server as a supervision tree: graceful stop with 1001, tracing, statistics, stop during handshakes."""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from contextlib import ExitStack
from typing import Any

import pytest
import websocket  # websocket-client
from websockets.exceptions import ConnectionClosedOK as WebsocketsClosedOK
from websockets.sync.client import connect as ws_connect

import websync
from supervisors import DynamicSupervisor
from websync import Binary, ServerHandler, Text

pytestmark = pytest.mark.timeout(30)


class Echo(ServerHandler):
    terminated: queue.SimpleQueue[object] = queue.SimpleQueue()

    def handle_in(self, frame: Text | Binary) -> Text | Binary:
        return frame

    def terminate(self, reason: object) -> None:
        self.terminated.put(reason)


def url(server: websync.Server) -> str:
    return f"ws://127.0.0.1:{server.port}/"


def wait_for(condition: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_stop_closes_every_connection_with_1001() -> None:
    Echo.terminated = queue.SimpleQueue()
    server = websync.serve(Echo, close_timeout=1)  # websocket-client answers the close only when it reads
    with ExitStack() as stack:
        clients = [stack.enter_context(ws_connect(url(server))) for _ in range(3)]
        other = websocket.create_connection(url(server), timeout=5)
        stack.callback(other.shutdown)  # the socket, whatever the close handshake did
        stack.callback(other.close)
        wait_for(lambda: len(server.connections) == 4)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
        for ws in clients:
            with pytest.raises(WebsocketsClosedOK) as caught:
                ws.recv(timeout=5)
            assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
        opcode, frame = other.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1001
    assert [Echo.terminated.get(timeout=5) for _ in range(4)] == ["shutdown"] * 4
    assert not server.supervisor.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)
    server.stop()  # idempotent


def test_stop_does_not_wait_for_a_client_in_its_handshake() -> None:
    with websync.serve(Echo, handshake_timeout=30) as server:
        silent = socket.create_connection(("127.0.0.1", server.port))
        wait_for(lambda: len(server.connections) == 1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        silent.close()


def test_stop_timeout_bounds_a_client_that_never_answers_the_close() -> None:
    with websync.serve(Echo, close_timeout=30) as server:
        ws = websocket.create_connection(url(server), timeout=5)  # never reads: never answers our close
        wait_for(lambda: len(server.connections) == 1)
        started = time.monotonic()
        server.stop(timeout=0.5)
        assert time.monotonic() - started < 3
        ws.shutdown()


def test_connections_are_children_of_the_servers_supervisor() -> None:
    with websync.serve(Echo) as server, ws_connect(url(server)):
        wait_for(lambda: len(server.connections) == 1)
        [worker] = server.connections
        assert isinstance(worker, websync.Worker)
        [(_, connections, kind), (_, acceptor, _)] = server.supervisor.which_children()
        assert isinstance(connections, DynamicSupervisor) and kind == "supervisor"
        assert connections.count_children()["active"] == 1
        assert worker.supervisor is connections
        assert acceptor is not None and acceptor.is_alive()


def test_trace_and_statistics_work_on_server_connections(caplog: pytest.LogCaptureFixture) -> None:
    with websync.serve(Echo) as server, ws_connect(url(server)) as ws:
        wait_for(lambda: len(server.connections) == 1)
        [worker] = server.connections
        ws.send("before")
        ws.recv(timeout=5)
        with caplog.at_level(logging.DEBUG, logger="websync.trace"):
            websync.trace(worker, True)
            ws.send("traced")
            ws.recv(timeout=5)
            websync.trace(worker, False)
            ws.send("after")
            ws.recv(timeout=5)
        lines = [record.getMessage() for record in caplog.records if record.name == "websync.trace"]
        assert any("in TEXT 6 bytes 'traced'" in line for line in lines), lines
        assert any("out TEXT 6 bytes 'traced'" in line for line in lines), lines
        assert not any("before" in line or "after" in line for line in lines)
        assert all(f"server :{server.port}" in line for line in lines)
        wait_for(lambda: websync.statistics(worker)["frames_out"] == 3)  # counted just after the write
        assert websync.statistics(worker)["frames_in"] == 3
        assert isinstance(websync.get_state(worker), Echo)


def test_trace_option_traces_the_handshake(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="websync.trace"),
        websync.serve(Echo, trace=True) as server,
        ws_connect(url(server)) as ws,
    ):
        ws.send("x")
        ws.recv(timeout=5)
    lines = [record.getMessage() for record in caplog.records if record.name == "websync.trace"]
    assert any("GET /" in line for line in lines)
    assert any("HTTP 101" in line for line in lines)


def test_handlers_run_in_one_thread_per_connection() -> None:
    threads: queue.SimpleQueue[int] = queue.SimpleQueue()

    class Which(ServerHandler):
        def handle_in(self, frame: Text | Binary) -> Text:
            threads.put(threading.get_ident())
            return Text("ok")

    with websync.serve(Which) as server, ws_connect(url(server)) as a, ws_connect(url(server)) as b:
        for ws in (a, b, a):
            ws.send("which")
            ws.recv(timeout=5)
        first, second, third = (threads.get(timeout=5) for _ in range(3))
    assert first == third != second


def test_stop_without_a_timeout_is_bounded_by_close_timeout_when_a_callback_never_returns() -> None:
    """stop() asks every connection to close; one stuck in handle_in never reads that request,
    and is killed once close_timeout and a second have passed, not waited for forever."""
    stuck, release = threading.Event(), threading.Event()

    class Stuck(ServerHandler):
        def handle_in(self, frame: Text | Binary) -> None:
            stuck.set()
            release.wait(30)

    server = websync.serve(Stuck, close_timeout=1)
    try:
        with ws_connect(url(server)) as ws:
            ws.send("hang")
            assert stuck.wait(5)
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 4
            assert not server.connections
    finally:
        release.set()
        server.stop(5)


@pytest.mark.parametrize("how", ["stop", "drain"])
def test_a_handler_may_stop_its_own_server(how: str) -> None:
    """An admin command: stop() or drain() called from handle_in returns at once (a connection
    cannot wait for its own end) and the server stops: every client gets 1001, new ones are refused."""
    returned: queue.SimpleQueue[object] = queue.SimpleQueue()

    class Admin(ServerHandler):
        def handle_in(self, frame: Text | Binary) -> None:
            try:
                getattr(server, how)(5)
                returned.put("returned")
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                returned.put(exc)

    server = websync.serve(Admin, close_timeout=1)
    try:
        with ws_connect(url(server)) as other, ws_connect(url(server)) as admin:
            admin.send("shut down")
            assert returned.get(timeout=5) == "returned"
            for ws in (admin, other):
                with pytest.raises(WebsocketsClosedOK) as closed:
                    ws.recv(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert server.join(10)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        server.stop(5)
