"""Faults meeting shutdown: each test holds one bug of issue 20 fixed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable

import pytest

from supervisors import (
    KILLED,
    ChildSpec,
    FunctionProcess,
    NotRunningError,
    Process,
    StartError,
    Supervisor,
    current_process,
    whereis,
)

pytestmark = pytest.mark.timeout(30)


def children(sup: Supervisor) -> dict[Hashable, Process | None]:
    return {child_id: process for child_id, process, _ in sup.which_children()}


class RaisingStop(Process):
    """Its ``request_stop`` raises (after noting the request) unless it is killed."""

    def __init__(self, events: list[tuple[str, Hashable]]) -> None:
        super().__init__()
        self.events = events

    def request_stop(self, reason: object) -> None:
        if reason == KILLED:
            self.stop_requested.set()
            return
        self.events.append(("stop", "raiser"))
        raise RuntimeError("cannot stop")

    def run(self) -> object:
        self.stop_requested.wait()
        return "shutdown"


def test_every_child_stops_when_one_request_stop_raises(kit, caplog: pytest.LogCaptureFixture) -> None:
    raiser = ChildSpec("raiser", lambda: RaisingStop(kit.events).start())
    sup = kit.start(Supervisor([kit.spec("first", name="first"), raiser, kit.spec("last")]))
    first = children(sup)["first"]
    assert first is not None
    sup.stop(timeout=3)
    assert not first.is_alive() and whereis("first") is None
    assert kit.stops() == ["last", "raiser", "first"]
    with pytest.raises(NotRunningError):
        sup.which_children()
    (report,) = [r for r in caplog.records if "shutdown_error" in r.getMessage()]
    assert report.levelno == logging.ERROR and "'raiser'" in report.getMessage()


@pytest.mark.parametrize("timeout", [None, 0.3])
def test_stop_is_seen_between_failing_restarts(timeout: float | None) -> None:
    attempts: list[float] = []

    def start() -> Process:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            return FunctionProcess(lambda: 1 / 0).start()
        time.sleep(0.2)
        raise RuntimeError("cannot start")

    sup = Supervisor([ChildSpec("flaky", start)], max_restarts=30, max_seconds=60).start()
    while len(attempts) < 3:
        time.sleep(0.01)
    began = time.monotonic()
    sup.stop(timeout=timeout)
    returned = time.monotonic()
    assert returned - began < 2
    assert sup.exit_reason == "shutdown"
    time.sleep(0.5)
    assert all(at < returned for at in attempts)


def test_supervisor_is_set_in_init_and_callable_at_once_from_run() -> None:
    seen: list[object] = []

    class Eager(Process):
        def init(self) -> None:
            seen.append(self.supervisor)

        def run(self) -> object:
            assert self.supervisor is not None
            seen.append(len(self.supervisor.which_children()))  # type: ignore[attr-defined]
            self.stop_requested.wait()
            return "shutdown"

    sup = Supervisor([ChildSpec("eager", lambda: Eager().start())]).start()
    try:
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [sup, 1]
    finally:
        sup.stop()


@pytest.mark.parametrize("shutdown", [None, 5.0])
def test_a_child_terminating_itself_exits_with_shutdown(shutdown: float | None) -> None:
    done = threading.Event()

    def suicide() -> object:
        process = current_process()
        assert process is not None and isinstance(process.supervisor, Supervisor)
        try:
            process.supervisor.terminate_child("self")
        finally:
            done.set()
        return "unreachable"

    sup = Supervisor([ChildSpec("self", lambda: FunctionProcess(suicide).start(), shutdown=shutdown)]).start()
    try:
        assert done.wait(2)
        child = None
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            child = children(sup)["self"]
            if child is None:
                break
            time.sleep(0.01)
        assert child is None
    finally:
        sup.stop(timeout=5)


def test_a_child_calling_its_supervisor_while_a_sibling_stops_still_stops() -> None:
    sibling_stopping = threading.Event()
    exits: list[object] = []

    def caller() -> object:
        process = current_process()
        assert process is not None and isinstance(process.supervisor, Supervisor)
        sibling_stopping.wait()
        process.supervisor.count_children()
        return "unreachable"

    class SlowSibling(Process):
        def request_stop(self, reason: object) -> None:
            sibling_stopping.set()
            super().request_stop(reason)

        def run(self) -> object:
            self.stop_requested.wait()
            time.sleep(0.3)
            return "shutdown"

    specs = [
        ChildSpec("caller", lambda: FunctionProcess(caller).start(), shutdown=None),
        ChildSpec("sibling", lambda: SlowSibling().start(), shutdown=None),
    ]
    for _ in range(5):
        sibling_stopping.clear()
        sup = Supervisor(specs).start()
        caller_process = children(sup)["caller"]
        assert caller_process is not None
        stopper = threading.Thread(target=sup.stop, daemon=True)
        stopper.start()
        stopper.join(3)
        assert not stopper.is_alive()
        exits.append(caller_process.exit_reason)
    assert exits == ["shutdown"] * 5


def test_a_thread_that_cannot_start_is_a_start_error_and_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    real_start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        if thread.name.startswith("FunctionProcess-doomed"):
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    process = FunctionProcess(lambda: None, name="doomed")
    with pytest.raises(StartError):
        process.start()
    assert not process.is_alive() and whereis("doomed") is None
    assert process.join(0)

    sup = Supervisor([], max_restarts=5).start()
    try:
        with pytest.raises(StartError):
            sup.start_child(ChildSpec.from_function("doomed", time.sleep, (60,), name="doomed"))
        monkeypatch.setattr(threading.Thread, "start", real_start)
        child = sup.start_child(ChildSpec.from_function("doomed", time.sleep, (60,), name="doomed", shutdown=0))
        assert whereis("doomed") is child
    finally:
        sup.stop()


class SlowToStop(Process):
    def run(self) -> object:
        self.stop_requested.wait()
        time.sleep(1)
        return "shutdown"


def test_killing_a_supervisor_kills_its_subtree_so_a_restart_succeeds(kit) -> None:
    def nested() -> Process:
        return Supervisor([ChildSpec("slow", lambda: SlowToStop(name="slow").start())], name="nested").start()

    top = kit.start(
        Supervisor(
            [kit.spec("sibling"), ChildSpec("nested", nested, type="supervisor", shutdown=0.1)],
            "one_for_all",
            max_restarts=3,
            max_seconds=60,
        )
    )
    first_nested = children(top)["nested"]
    kit.exit_child(top, "sibling")
    new_nested = children(top)["nested"]  # answered once the restart is done
    assert first_nested is not None and first_nested.exit_reason == KILLED
    assert top.is_alive()
    assert new_nested is not None and new_nested is not first_nested and new_nested.is_alive()
    assert whereis("slow") is not None


def test_a_supervisor_child_waits_for_its_subtree_by_default(kit) -> None:
    def nested() -> Process:
        return Supervisor([ChildSpec("slow", lambda: SlowToStop().start(), shutdown=None)]).start()

    spec = ChildSpec("nested", nested, type="supervisor")
    assert spec.shutdown is None
    top = kit.start(Supervisor([kit.spec("sibling"), spec], "one_for_all", max_restarts=3))
    first_nested = children(top)["nested"]
    kit.exit_child(top, "sibling")
    assert children(top)["nested"] is not first_nested
    assert first_nested is not None and first_nested.exit_reason == "shutdown"
    assert top.is_alive()
