"""The OTP calls on a running Supervisor: start_child, terminate_child, restart_child, delete_child, which/count_children."""

from __future__ import annotations

import threading
import time

import pytest

from supervisors import (
    ChildRunningError,
    ChildSpec,
    DuplicateChildError,
    DynamicSupervisor,
    FunctionProcess,
    NotRunningError,
    Process,
    StartError,
    Supervisor,
    UnknownChildError,
    current_process,
)

pytestmark = pytest.mark.timeout(10)


def test_which_children_lists_id_process_and_type_in_start_order(kit) -> None:
    inner = ChildSpec("inner", lambda: Supervisor([]).start(), type="supervisor", shutdown=None)
    sup = kit.start(Supervisor([kit.spec("a"), inner, kit.spec("b")]))
    rows = sup.which_children()
    assert [(child_id, kind) for child_id, _, kind in rows] == [
        ("a", "worker"),
        ("inner", "supervisor"),
        ("b", "worker"),
    ]
    assert all(isinstance(process, Process) and process.is_alive() for _, process, _ in rows)


def test_count_children(kit) -> None:
    inner = ChildSpec("inner", lambda: Supervisor([]).start(), type="supervisor", shutdown=None)
    sup = kit.start(Supervisor([kit.spec("a"), inner, kit.spec("b")]))
    assert sup.count_children() == {"specs": 3, "active": 3, "supervisors": 1, "workers": 2}
    sup.terminate_child("b")
    assert sup.count_children() == {"specs": 3, "active": 2, "supervisors": 1, "workers": 2}


def test_start_child_appends_and_starts(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    child = sup.start_child(kit.spec("b"))
    assert child.is_alive()
    assert sup.which_children()[-1] == ("b", child, "worker")
    sup.stop()
    assert kit.stops() == ["b", "a"]


def test_start_child_refuses_a_duplicate_id(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    with pytest.raises(DuplicateChildError):
        sup.start_child(kit.spec("a"))
    sup.terminate_child("a")
    with pytest.raises(DuplicateChildError):
        sup.start_child(kit.spec("a"))
    assert kit.starts() == ["a"]


def test_start_child_that_fails_is_not_kept(kit) -> None:
    def broken() -> Process:
        raise OSError("no")

    sup = kit.start(Supervisor([kit.spec("a")]))
    with pytest.raises(StartError) as info:
        sup.start_child(ChildSpec("broken", broken))
    assert info.value.child_id == "broken"
    assert [child_id for child_id, _, _ in sup.which_children()] == ["a"]
    assert sup.is_alive()


def test_started_children_are_supervised_like_the_others(kit) -> None:
    sup = kit.start(Supervisor([]))
    old = sup.start_child(kit.spec("late"))
    kit.exit_child(sup, "late")
    new = sup.which_children()[0][1]
    assert new is not old and new.is_alive()


def test_terminate_child_keeps_the_spec_and_does_not_restart(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b")]))
    a = sup.which_children()[0][1]
    sup.terminate_child("a")
    assert a.exit_reason == "shutdown"
    assert sup.which_children()[0] == ("a", None, "worker")
    sup.terminate_child("a")  # already stopped: nothing to do
    assert kit.stops() == ["a"]


def test_terminate_child_forgets_a_temporary_child(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("tmp", restart="temporary")]))
    sup.terminate_child("tmp")
    assert sup.which_children() == []


def test_restart_child(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b")]))
    with pytest.raises(ChildRunningError):
        sup.restart_child("a")
    sup.terminate_child("a")
    child = sup.restart_child("a")
    assert child.is_alive()
    assert sup.which_children()[0] == ("a", child, "worker")
    assert kit.starts() == ["a", "b", "a"]


def test_delete_child(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b")]))
    with pytest.raises(ChildRunningError):
        sup.delete_child("a")
    sup.terminate_child("a")
    sup.delete_child("a")
    assert [child_id for child_id, _, _ in sup.which_children()] == ["b"]


@pytest.mark.parametrize("call", ["terminate_child", "restart_child", "delete_child"])
def test_unknown_ids_raise(kit, call: str) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    with pytest.raises(UnknownChildError):
        getattr(sup, call)("nope")
    with pytest.raises(LookupError):
        getattr(sup, call)("nope")


def test_calls_need_a_running_supervisor(kit) -> None:
    sup = Supervisor([kit.spec("a")])
    with pytest.raises(NotRunningError):
        sup.which_children()
    sup.start()
    sup.stop()
    with pytest.raises(NotRunningError):
        sup.count_children()


@pytest.mark.parametrize("from_a_process", [False, True], ids=["from-a-thread", "from-a-process"])
def test_a_call_runs_as_the_supervisor_even_from_a_child_start(kit, from_a_process: bool) -> None:
    seen: list[tuple[threading.Thread, Process | None]] = []
    holder: list[Supervisor] = []

    def start() -> Process:
        seen.append((threading.current_thread(), current_process()))
        holder[0].which_children()  # a call from within a call: must not deadlock
        worker: Process = kit.worker("late").start()
        return worker

    sup = kit.start(Supervisor([]))
    holder.append(sup)
    if from_a_process:  # through the mailbox: in the supervisor's thread
        caller = FunctionProcess(sup.start_child, ChildSpec("late", start)).start()
        assert caller.join(5)
        assert seen == [(sup._thread, sup)]
    else:  # a thread that is no process, the supervisor idle: in the calling thread
        child = sup.start_child(ChildSpec("late", start))
        assert seen == [(threading.current_thread(), sup)]
        assert child.supervisor is sup
    assert current_process() is None
    assert [child_id for child_id, _, _ in sup.which_children()] == ["late"]


def test_a_call_from_a_thread_comes_after_the_exits_before_it(kit) -> None:
    """A call runs in its caller's thread only once the supervisor has handled every message
    put before it: an exit notified before the call is always seen by it."""
    sup = kit.start(DynamicSupervisor())
    for _ in range(100):
        started = sup.start_child(kit.spec("child", restart="temporary"))
        child = kit.workers[-1]
        assert child is started and child.supervisor is sup
        child.exit("normal")
        assert child.join(5)
        assert sup.count_children()["active"] == 0


def test_calls_from_threads_race_restarts_and_the_tree_stays_whole(kit) -> None:
    """Threads start children (some calls run in the caller's thread, some through the mailbox when
    the supervisor is busy) while earlier children crash and are restarted: no call fails or hangs,
    and every child ends up known once, running, and counted. Five rounds."""
    for _ in range(5):
        _race_starts_and_crashes(kit)


def _race_starts_and_crashes(kit) -> None:
    sup = kit.start(DynamicSupervisor(max_restarts=1000, max_seconds=60))
    errors: list[BaseException] = []

    def add_and_crash(base: int) -> None:
        try:
            for index in range(base, base + 10):
                sup.start_child(kit.spec(index))
                kit.workers[-1].exit(RuntimeError("crash"))  # the newest worker, whichever thread started it
                sup.count_children()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add_and_crash, args=(base,)) for base in range(0, 40, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    deadline = time.monotonic() + 5
    while True:  # the crashed children's restarts settle
        rows = sup.which_children()
        if all(process is not None and process.is_alive() for _, process, _ in rows):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.01)
    assert len(rows) == 40 == sup.count_children()["active"]
    assert len({process for _, process, _ in rows}) == 40
    sup.stop()


def test_concurrent_calls_are_serialised(kit) -> None:
    sup = kit.start(Supervisor([]))
    errors: list[BaseException] = []

    def add(index: int) -> None:
        try:
            sup.start_child(kit.spec(index))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(child_id for child_id, _, _ in sup.which_children()) == list(range(8))
