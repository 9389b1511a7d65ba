"""``supervisors.sys`` against a real websync worker connected to a real websync server: suspend,
resume, get_state, replace_state, statistics, trace, the flight recorder and crash reports."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import supervisors
import websync
from supervisors import sys as system

pytestmark = pytest.mark.timeout(30)


class Echo(websync.ServerHandler):
    def handle_in(self, frame: websync.Text | websync.Binary) -> websync.Text | websync.Binary:
        return frame


class Collect(websync.Handler):
    """Puts every message it gets in ``got``; the text "crash" makes handle_frame raise."""

    def __init__(self, url: str) -> None:
        self.address = url
        self.got: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.connected = threading.Event()

    def connect(self) -> str:
        return self.address

    def handle_connect(self, response: websync.Response) -> None:
        self.connected.set()

    def handle_frame(self, frame: websync.Text | websync.Binary) -> None:
        if frame.data == "crash":
            raise RuntimeError("boom")
        self.got.put(frame.data)

    def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Stop:
        return websync.Stop()


@pytest.fixture
def server() -> Iterator[websync.Server]:
    with websync.serve(Echo) as running:
        yield running


def started(server: websync.Server, **options: Any) -> tuple[websync.Worker, Collect]:
    handler = Collect(f"ws://127.0.0.1:{server.port}/")
    worker = websync.start(handler, **options)
    assert handler.connected.wait(5)
    return worker, handler


def test_suspend_holds_frames_while_system_calls_are_answered(server: websync.Server) -> None:
    worker, handler = started(server)
    try:
        system.suspend(worker)
        worker.send("while suspended")  # goes out only after resume: no writes while suspended
        worker.send_info("info")  # waits too
        time.sleep(0.3)
        assert handler.got.empty()
        assert system.get_status(worker).status == "suspended"
        assert system.get_state(worker) is handler  # answered from the worker's thread
        assert websync.statistics(worker)["frames_out"] == 0
        system.resume(worker)
        assert handler.got.get(timeout=5) == "while suspended"
        assert system.get_status(worker).status == "running"
    finally:
        worker.stop()
    assert worker.exit_reason == "normal"


def test_suspended_worker_reads_nothing_until_resumed(server: websync.Server) -> None:
    worker, handler = started(server)
    try:
        worker.send("before")
        assert handler.got.get(timeout=5) == "before"
        (connection,) = server.connections
        system.suspend(worker)
        connection.send("pushed")  # the server pushes: the suspended worker reads nothing
        time.sleep(0.3)
        assert websync.statistics(worker)["frames_in"] == 1 and handler.got.empty()
        system.resume(worker)
        assert handler.got.get(timeout=5) == "pushed"
    finally:
        worker.stop()


def test_a_stop_ends_a_suspension(server: websync.Server) -> None:
    worker, _ = started(server)
    system.suspend(worker)
    worker.stop(timeout=5)
    assert worker.exit_reason == "normal"
    with pytest.raises(supervisors.NotRunningError):
        system.get_state(worker)


def test_replace_state_and_statistics_and_trace(server: websync.Server) -> None:
    worker, handler = started(server)
    try:
        replacement = Collect(handler.address)
        assert system.replace_state(worker, lambda old: replacement) is replacement
        assert websync.get_state(worker) is replacement
        worker.send("to the new handler")
        assert replacement.got.get(timeout=5) == "to the new handler"
        system.statistics(worker, True)
        stats = system.statistics(worker, "get")
        assert stats is not None and stats["frames_in"] == 1 and stats["frames_out"] == 1
        websync.trace(worker, True)
        assert worker.tracer.enabled and worker.traced
        websync.trace(worker, False)
        assert not worker.tracer.enabled and not worker.traced
    finally:
        worker.stop()


def test_server_connection_state_is_its_server_handler(server: websync.Server) -> None:
    worker, handler = started(server)
    try:
        (connection,) = server.connections
        echo = websync.get_state(connection)
        assert isinstance(echo, Echo) and system.get_state(connection) is echo
        replacement = Echo()
        assert system.replace_state(connection, lambda old: replacement) is replacement
        worker.send("still echoed")
        assert handler.got.get(timeout=5) == "still echoed"
        assert websync.get_state(connection) is replacement
    finally:
        worker.stop()


def test_log_returns_the_last_frames(server: websync.Server) -> None:
    worker, handler = started(server, record_frames=True)
    try:
        worker.send("x" * 10)
        assert handler.got.get(timeout=5) == "x" * 10
        kinds = [(event.kind, event.detail) for event in system.log(worker, "get") or []]
        assert ("connected", f"ws://127.0.0.1:{server.port}/") in kinds
        assert ("out Text", 10) in kinds and ("in Text", 10) in kinds
    finally:
        worker.stop()
    assert "disconnected" in [event.kind for event in system.log(worker, "get") or []]  # also after the exit


def test_frames_are_not_recorded_by_default(server: websync.Server) -> None:
    worker, handler = started(server)
    try:
        worker.send("y")
        assert handler.got.get(timeout=5) == "y"
        kinds = [event.kind for event in system.log(worker, "get") or []]
        assert "connected" in kinds and not any(kind.startswith(("in ", "out ")) for kind in kinds)
    finally:
        worker.stop()


def test_a_blocking_client_records_the_frames_its_caller_reads(server: websync.Server) -> None:
    with websync.connect(f"ws://127.0.0.1:{server.port}/", record_frames=True) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"  # read in this thread, recorded in the worker's ring
        kinds = [(event.kind, event.detail) for event in system.log(ws.worker, "get") or []]
    assert ("out Text", 5) in kinds and ("in Text", 5) in kinds


def test_the_crash_report_shows_the_last_frames(server: websync.Server, caplog: pytest.LogCaptureFixture) -> None:
    url = f"ws://127.0.0.1:{server.port}/"
    handler = Collect(url)
    spec = websync.child_spec(handler, id="crashy", restart="temporary", record_frames=True)
    with caplog.at_level(logging.ERROR, logger="supervisors"):
        tree = supervisors.Supervisor([spec], strategy="one_for_one").start()
        try:
            assert handler.connected.wait(5)
            ((_, child, _),) = tree.which_children()
            assert isinstance(child, websync.Worker)
            child.send("fine")
            assert handler.got.get(timeout=5) == "fine"
            child.send("crash")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any("child_terminated" in r.getMessage() for r in caplog.records):
                time.sleep(0.01)
        finally:
            tree.stop()
    (record,) = [r for r in caplog.records if "child_terminated" in r.getMessage()]
    message = record.getMessage()
    assert "boom" in message and "callback raised 'RuntimeError'" in message
    assert "in Text 5" in message and "out Text 5" in message  # the last frames: "crash" in and out


def test_exit_from_a_callback_is_the_exit_reason(server: websync.Server) -> None:
    reasons: list[object] = []

    class Leaving(Collect):
        def handle_frame(self, frame: websync.Text | websync.Binary) -> None:
            raise supervisors.Exit(("left", frame.data))  # not handle_error's: a BaseException

        def terminate(self, reason: object) -> None:
            reasons.append(reason)

    handler = Leaving(f"ws://127.0.0.1:{server.port}/")
    worker = websync.start(handler)
    assert handler.connected.wait(5)
    worker.send("now")
    assert worker.join(5)
    assert worker.exit_reason == ("left", "now") and reasons == [("left", "now")]
