"""The child protocol: Process, FunctionProcess, exit reasons and monitors."""

from __future__ import annotations

import logging
import sys
import threading

import pytest

from supervisors import (
    KILLED,
    FunctionProcess,
    NameTakenError,
    Process,
    StartError,
    current_process,
    is_normal_exit,
    trace,
    whereis,
)

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("reason", "normal"),
    [
        ("normal", True),
        ("shutdown", True),
        (("shutdown", "gone"), True),
        (("shutdown", "a", "b"), False),
        (("normal", 1), False),
        ("killed", False),
        (RuntimeError("x"), False),
        (None, False),
        (0, False),
    ],
)
def test_is_normal_exit(reason: object, normal: bool) -> None:
    assert is_normal_exit(reason) is normal


def test_return_value_is_the_exit_reason() -> None:
    process = FunctionProcess(lambda: ("shutdown", 7)).start()
    process.join(5)
    assert process.exit_reason == ("shutdown", 7)
    assert not process.is_alive()


def test_none_is_normal() -> None:
    process = FunctionProcess(lambda: None).start()
    assert process.join(5)
    assert process.exit_reason == "normal"


def test_exception_is_the_reason_and_logged_once_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    error = ValueError("bad")

    def fail() -> None:
        raise error

    process = FunctionProcess(fail, name="failing").start()
    assert process.join(5)
    assert process.exit_reason is error
    crashes = [r for r in caplog.records if r.name == "supervisors" and r.exc_info]
    assert len(crashes) == 1
    exc_info = crashes[0].exc_info
    assert exc_info is not None and exc_info[1] is error
    assert "failing" in crashes[0].getMessage()


def test_function_process_passes_arguments_and_sees_stop_requests() -> None:
    def body(a: int, *, b: int) -> object:
        process = current_process()
        assert process is not None
        process.stop_requested.wait()
        return ("shutdown", a + b)

    process = FunctionProcess(body, 1, b=2).start()
    assert process.is_alive()
    process.stop()
    assert process.exit_reason == ("shutdown", 3)
    assert current_process() is None


def test_start_returns_self_and_is_once_only(kit) -> None:
    worker = kit.worker("w")
    assert worker.start() is worker
    with pytest.raises(RuntimeError):
        worker.start()


def test_unstarted_process_refuses_join_stop_and_kill(kit) -> None:
    worker = kit.worker("w")
    assert not worker.is_alive()
    for call in (worker.join, worker.stop, worker.kill):
        with pytest.raises(RuntimeError):
            call()


def test_init_failure_makes_start_raise() -> None:
    class Broken(Process):
        def init(self) -> None:
            raise OSError("no route")

    process = Broken(name="broken")
    with pytest.raises(StartError) as info:
        process.start()
    assert isinstance(info.value.reason, OSError)
    assert info.value.child_id == "broken"
    assert process.exit_reason is info.value.reason
    assert whereis("broken") is None


def test_stop_requests_then_joins(kit) -> None:
    worker = kit.worker("w").start()
    worker.stop(("shutdown", "bye"))
    assert kit.events == [("start", "w"), ("stop", "w")]
    assert worker.exit_reason == ("shutdown", "bye")
    assert worker.join(0)


def test_stop_kills_a_process_that_ignores_it(kit, caplog: pytest.LogCaptureFixture) -> None:
    worker = kit.worker("w", name="deaf", deaf=True).start()
    seen: list[object] = []
    worker.monitor(lambda process, reason: seen.append(reason))
    worker.stop(timeout=0.05)
    assert worker.exit_reason == KILLED
    assert seen == [KILLED]
    assert not worker.is_alive()
    assert whereis("deaf") is None
    assert "did not stop" in caplog.text
    assert worker._thread is not None and worker._thread.is_alive()  # Python cannot kill the thread


def test_kill_is_final_even_if_the_body_returns_later(kit) -> None:
    worker = kit.worker("w", deaf=True).start()
    seen: list[object] = []
    worker.monitor(lambda process, reason: seen.append(reason))
    worker.kill()
    thread = worker._thread
    assert thread is not None
    worker.exit("normal")
    thread.join(5)
    assert worker.exit_reason == KILLED
    assert seen == [KILLED]


def test_monitor_is_called_once_from_the_exiting_thread(kit) -> None:
    worker = kit.worker("w").start()
    calls: list[tuple[Process, object, threading.Thread]] = []
    worker.monitor(lambda process, reason: calls.append((process, reason, threading.current_thread())))
    worker.exit("normal")
    assert worker.join(5)
    assert calls == [(worker, "normal", worker._thread)]


def test_monitor_after_exit_is_called_at_once(kit) -> None:
    worker = kit.worker("w").start()
    worker.stop()
    seen: list[object] = []
    worker.monitor(lambda process, reason: seen.append(reason))
    assert seen == ["shutdown"]


def test_demonitor(kit) -> None:
    worker = kit.worker("w").start()
    seen: list[object] = []

    def callback(process: Process, reason: object) -> None:
        seen.append(reason)

    worker.monitor(callback)
    worker.demonitor(callback)
    worker.demonitor(callback)
    worker.stop()
    assert seen == []


def test_a_failing_monitor_does_not_stop_the_others(kit, caplog: pytest.LogCaptureFixture) -> None:
    worker = kit.worker("w").start()
    seen: list[object] = []

    def broken(process: Process, reason: object) -> None:
        raise RuntimeError("monitor bug")

    worker.monitor(broken)
    worker.monitor(lambda process, reason: seen.append(reason))
    worker.stop()
    assert seen == ["shutdown"]
    assert "monitor bug" in caplog.text


def test_a_process_cannot_join_itself() -> None:
    errors: list[BaseException] = []

    def body() -> None:
        process = current_process()
        assert process is not None
        try:
            process.join(0)
        except RuntimeError as exc:
            errors.append(exc)

    assert FunctionProcess(body).start().join(5)
    assert len(errors) == 1


def test_stop_from_its_own_thread_does_not_deadlock() -> None:
    def body() -> object:
        process = current_process()
        assert process is not None
        process.stop(("shutdown", "self"))
        return "normal" if process.stop_requested.is_set() else "not requested"

    process = FunctionProcess(body).start()
    assert process.join(5)
    assert process.exit_reason == "normal"


def test_name_is_registered_while_alive(kit) -> None:
    worker: Process = kit.worker("w", name="proc-name").start()
    assert whereis("proc-name") is worker
    with pytest.raises(NameTakenError) as info:
        kit.worker("x", name="proc-name").start()
    assert info.value.process is worker
    worker.stop()
    assert whereis("proc-name") is None
    assert kit.worker("y", name="proc-name").start().is_alive()


def test_repr_shows_name_and_state(kit) -> None:
    worker = kit.worker("w", name="shown").start()
    assert "'shown'" in repr(worker) and "alive" in repr(worker)
    worker.stop()
    assert "exited 'shutdown'" in repr(worker)


def test_trace_logs_process_events(kit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="supervisors.trace")
    worker = kit.worker("w", name="traced")
    trace(worker, True)
    worker.start()
    worker.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "supervisors.trace"]
    assert any("started" in m for m in messages)
    assert any("exited: 'shutdown'" in m for m in messages)
    untraced = kit.worker("u", name="untraced")
    trace(untraced, True)
    trace(untraced, False)
    untraced.start()
    untraced.stop()
    assert not [r for r in caplog.records if "untraced" in r.getMessage()]


def test_a_process_makes_stop_requested_at_its_first_use_only() -> None:
    """Most processes (websync workers) override request_stop and never need the Event."""
    released = threading.Event()

    class Quiet(Process):
        def run(self) -> object:
            released.wait()
            return None

        def request_stop(self, reason: object) -> None:
            released.set()

    quiet = Quiet().start()
    quiet.stop()
    assert quiet._stop_requested is None
    plain = FunctionProcess(lambda: current_process().stop_requested.wait(5) and None).start()  # type: ignore[union-attr]
    assert plain.stop_requested is plain.stop_requested
    plain.stop()
    assert plain.exit_reason == "normal" and plain.stop_requested.is_set()


def test_current_process_is_per_thread_and_forgotten_at_the_exit() -> None:
    seen: list[object] = []
    process = FunctionProcess(lambda: seen.append(current_process())).start()
    assert process.join(5)
    assert seen == [process] and current_process() is None


def test_the_flight_recorder_keeps_the_last_events_in_order() -> None:
    process = FunctionProcess(lambda: None)
    process.set_recording(3)
    for i in range(50):
        process.record("tick", i)
    assert [event.detail for event in process.recorded_events()] == [47, 48, 49]
    assert len(process._recorder or []) < 6  # trimmed back at twice the size


def test_start_does_not_wait_for_the_new_threads_first_turn() -> None:
    """Without init(), start() hands the GIL to no thread: with a long switch interval the new
    thread cannot have run when start() returns (each start among a thousand busy threads would
    otherwise wait a round of them all)."""
    ran = threading.Event()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(5.0)
    try:
        process = FunctionProcess(ran.set).start()
        assert not ran.is_set() and process.is_alive()
    finally:
        sys.setswitchinterval(interval)
    assert process.join(5) and ran.is_set()


def test_a_process_thread_looks_started_to_threading() -> None:
    """The state ``threading`` keeps for the thread (replaced by shared objects while it starts and
    once it runs) says what it says of any thread: alive, listed, joinable, and stopped at the end."""
    inside = threading.Event()
    release = threading.Event()

    def body() -> None:
        inside.set()
        release.wait(5)

    process = FunctionProcess(body).start()
    assert inside.wait(5)
    thread = process._thread
    assert thread is not None
    assert thread.is_alive() and thread in threading.enumerate() and "started" in repr(thread)
    assert thread.ident is not None
    release.set()
    thread.join(5)
    assert not thread.is_alive() and "stopped" in repr(thread)
    assert process.join(5)


def test_start_waits_for_an_init_only_when_there_is_one() -> None:
    """Without init() there is nothing to wait for: start() returns once the thread started, and
    "started" is still the first event, before a stop that follows at once."""
    plain = FunctionProcess(lambda: current_process().stop_requested.wait(5) and None).start()  # type: ignore[union-attr]
    plain.stop()
    assert [event.kind for event in plain.recorded_events()][:2] == ["started", "stop"]
    ran: list[str] = []

    class WithInit(Process):
        def init(self) -> None:
            ran.append("init")

        def run(self) -> object:
            self.stop_requested.wait(5)
            return None

    with_init = WithInit().start()
    assert ran == ["init"]  # done before start() returned
    with_init.stop()
