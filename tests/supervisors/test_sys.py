"""supervisors.sys on plain processes and supervisors, and the flight recorder in crash reports."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time

import pytest

import supervisors.sys as otp_sys
from supervisors import (
    ChildSpec,
    FunctionProcess,
    NotRunningError,
    Process,
    Supervisor,
    SupervisorState,
    current_process,
)

pytestmark = pytest.mark.timeout(20)


class Sleeper(Process):
    def run(self) -> object:
        self.stop_requested.wait()
        return "shutdown"


def state(sup: Supervisor) -> SupervisorState:
    current = otp_sys.get_state(sup)
    assert isinstance(current, SupervisorState)
    return current


def test_a_suspended_supervisor_handles_only_system_calls(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    otp_sys.suspend(sup)
    assert otp_sys.get_status(sup).status == "suspended"
    answers: list[object] = []
    caller = threading.Thread(target=lambda: answers.append(sup.count_children()), daemon=True)
    caller.start()
    first = state(sup).children[0][1]
    assert first is not None
    first.exit(RuntimeError("crash"))  # type: ignore[attr-defined]
    assert first.join(5)
    time.sleep(0.1)
    assert answers == [] and state(sup).children[0][1] is first  # neither the call nor the exit handled
    otp_sys.resume(sup)
    caller.join(5)
    assert answers == [{"specs": 1, "active": 1, "supervisors": 0, "workers": 1}]
    assert state(sup).children[0][1] is not first
    assert otp_sys.get_status(sup).status == "running"


def test_a_suspended_supervisor_still_stops(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    otp_sys.suspend(sup)
    sup.stop(timeout=5)
    assert sup.exit_reason == "shutdown" and kit.stops() == ["a"]


def test_replace_state_changes_a_supervisors_intensity_only(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")], max_restarts=3))
    new = otp_sys.replace_state(sup, lambda s: dataclasses.replace(s, max_restarts=7))
    assert isinstance(new, SupervisorState) and sup.max_restarts == 7 == state(sup).max_restarts
    with pytest.raises(ValueError, match="children"):
        otp_sys.replace_state(sup, lambda s: dataclasses.replace(s, children=()))
    assert [child_id for child_id, _, _ in state(sup).children] == ["a"]


def test_a_plain_process_is_its_own_state() -> None:
    process = Sleeper().start()
    try:
        assert otp_sys.get_state(process) is process

        def tag(state: Sleeper) -> Sleeper:
            state.tag = 1  # type: ignore[attr-defined]
            return state

        otp_sys.replace_state(process, tag)
        assert process.tag == 1  # type: ignore[attr-defined]
        with pytest.raises(ValueError):
            otp_sys.replace_state(process, lambda p: "other")
        status = otp_sys.get_status(process)
        assert (status.status, status.supervisor, status.state) == ("running", None, process)
        otp_sys.suspend(process)
        assert process.suspended and otp_sys.get_status(process).status == "suspended"
        otp_sys.resume(process)
    finally:
        process.stop()
    with pytest.raises(NotRunningError):
        otp_sys.get_state(process)


def test_log_reads_the_flight_recorder_also_after_the_exit(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    kinds = [event.kind for event in otp_sys.log(sup, "get") or []]
    assert kinds[:2] == ["child started", "started"]
    otp_sys.log(sup, False)
    assert otp_sys.log(sup, "get") == [] and not otp_sys.get_status(sup).logging
    otp_sys.log(sup, True, size=2)
    for n in range(5):
        sup.record("custom", n)
    assert [event.detail for event in otp_sys.log(sup, "get") or []] == [3, 4]
    sup.stop()
    assert [event.kind for event in otp_sys.log(sup, "get") or []] == ["stop", "exited"]


def test_the_ring_is_bounded_by_default() -> None:
    process = Sleeper()
    for n in range(100):
        process.record("frame", n)
    events = process.recorded_events()
    assert len(events) == 20 and events[-1].detail == 99
    assert all(a.time <= b.time for a, b in itertools.pairwise(events))


def test_statistics_are_off_until_asked(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    assert otp_sys.statistics(sup, "get") is None
    otp_sys.statistics(sup, True)
    kit.exit_child(sup, "a")
    stats = otp_sys.statistics(sup, "get")
    assert stats is not None and stats["restarts"] == 1 and stats["starts"] == 2
    assert isinstance(stats["start_time"], float) and isinstance(stats["current_time"], float)
    assert stats["current_time"] >= stats["start_time"]
    assert otp_sys.get_status(sup).statistics
    otp_sys.statistics(sup, False)
    assert otp_sys.statistics(sup, "get") is None
    plain = Sleeper().start()
    otp_sys.statistics(plain, True)
    assert set(otp_sys.statistics(plain, "get") or ()) == {"start_time", "current_time"}
    plain.stop()


def test_trace_is_the_same_switch_as_supervisors_trace() -> None:
    process = Sleeper().start()
    try:
        otp_sys.trace(process, True)
        assert process.traced and otp_sys.get_status(process).traced
        otp_sys.trace(process, False)
        assert not process.traced
    finally:
        process.stop()


def test_the_crash_report_of_a_child_shows_its_last_events(caplog: pytest.LogCaptureFixture) -> None:
    def doomed() -> object:
        process = current_process()
        assert process is not None
        for n in range(25):
            process.record("frame in", n)
        raise RuntimeError("boom")

    sup = Supervisor([ChildSpec("doomed", lambda: FunctionProcess(doomed).start(), "temporary")]).start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("child_terminated" in r.getMessage() for r in caplog.records):
            time.sleep(0.01)
    finally:
        sup.stop()
    (record,) = [r for r in caplog.records if "child_terminated" in r.getMessage()]
    assert record.levelno == logging.ERROR and "'doomed'" in record.getMessage()
    assert "frame in 24" in record.getMessage() and "frame in 4\n" not in record.getMessage()
    events = record.report["events"]  # type: ignore[attr-defined]
    assert len(events) == 20 and events[-1].kind == "exited"
