"""Supervisor: start and stop order, strategies, restart types, intensity, escalation, shutdown, start failures."""

from __future__ import annotations

import logging
import time

import pytest

from supervisors import (
    KILLED,
    ChildSpec,
    Process,
    StartError,
    Supervisor,
    trace,
)

pytestmark = pytest.mark.timeout(10)


def children(sup: Supervisor) -> dict[object, Process | None]:
    return {child_id: process for child_id, process, _ in sup.which_children()}


def alive(process: Process | None) -> bool:
    """A running child: there (not terminated) and alive."""
    return process is not None and process.is_alive()


def test_children_start_in_order_and_stop_in_reverse(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b"), kit.spec("c")]))
    assert kit.starts() == ["a", "b", "c"]
    assert all(p is not None and p.is_alive() for p in children(sup).values())
    old = children(sup)
    sup.stop()
    assert kit.stops() == ["c", "b", "a"]
    assert sup.exit_reason == "shutdown"
    assert not sup.is_alive() and sup.join(0)
    assert all(p is not None and p.exit_reason == "shutdown" for p in old.values())


def test_stop_reason_becomes_the_exit_reason(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")]))
    sup.stop(("shutdown", "deploy"))
    assert sup.exit_reason == ("shutdown", "deploy")


def test_one_for_one_restarts_only_the_failed_child(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b"), kit.spec("c")], "one_for_one"))
    before = children(sup)
    kit.exit_child(sup, "b")
    after = children(sup)
    assert after["a"] is before["a"] and after["c"] is before["c"]
    assert after["b"] is not before["b"] and alive(after["b"])
    assert kit.stops() == []
    assert kit.starts() == ["a", "b", "c", "b"]


def test_one_for_all_restarts_every_child(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b"), kit.spec("c")], "one_for_all"))
    before = children(sup)
    kit.exit_child(sup, "b")
    after = children(sup)
    assert all(after[i] is not before[i] and alive(after[i]) for i in "abc")
    assert kit.stops() == ["c", "a"]
    assert kit.starts()[3:] == ["a", "b", "c"]


def test_rest_for_one_restarts_the_failed_child_and_those_after_it(kit) -> None:
    sup = kit.start(Supervisor([kit.spec(i) for i in "abcd"], "rest_for_one"))
    before = children(sup)
    kit.exit_child(sup, "b")
    after = children(sup)
    assert after["a"] is before["a"]
    assert all(after[i] is not before[i] and alive(after[i]) for i in "bcd")
    assert kit.stops() == ["d", "c"]
    assert kit.starts()[4:] == ["b", "c", "d"]


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
def test_a_terminated_child_in_the_scope_is_restarted_too(kit, strategy: str) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b"), kit.spec("c")], strategy))  # type: ignore[arg-type]
    sup.terminate_child("c")
    kit.exit_child(sup, "a")
    after = children(sup)
    assert alive(after["a"]) and alive(after["b"]) and alive(after["c"])
    assert kit.starts() == ["a", "b", "c", "a", "b", "c"]


def test_one_for_all_forgets_temporary_siblings(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("tmp", restart="temporary")], "one_for_all"))
    kit.exit_child(sup, "a")
    assert list(children(sup)) == ["a"]
    assert kit.starts() == ["a", "tmp", "a"]


@pytest.mark.parametrize(
    ("restart", "reason", "restarted"),
    [
        ("permanent", "normal", True),
        ("permanent", RuntimeError("x"), True),
        ("transient", "normal", False),
        ("transient", "shutdown", False),
        ("transient", ("shutdown", "done"), False),
        ("transient", RuntimeError("x"), True),
        ("transient", KILLED, True),
        ("temporary", RuntimeError("x"), False),
        ("temporary", "normal", False),
    ],
)
def test_restart_types(kit, restart: str, reason: object, restarted: bool) -> None:
    sup = kit.start(Supervisor([kit.spec("w", restart=restart)]))
    old = kit.exit_child(sup, "w", reason)
    assert old.exit_reason is reason or old.exit_reason == reason
    after = children(sup)
    if restarted:
        assert after["w"] is not None and after["w"] is not old and after["w"].is_alive()
    elif restart == "temporary":
        assert after == {}
    else:
        assert after == {"w": None}
    assert sup.is_alive()


def test_restarts_up_to_max_restarts_then_escalates(kit, caplog: pytest.LogCaptureFixture) -> None:
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b")], max_restarts=2, max_seconds=60, name="top"))
    for _ in range(2):
        kit.exit_child(sup, "a")
        assert sup.is_alive()
    b = children(sup)["b"]
    assert b is not None
    last = kit.exit_child(sup, "a")
    assert sup.join(5)
    assert sup.exit_reason == "shutdown"  # as OTP: a transient parent does not restart it
    assert b.exit_reason == "shutdown"
    assert kit.stops()[-1] == "b"
    (record,) = [r for r in caplog.records if "reached_max_restart_intensity" in r.getMessage()]
    assert record.levelno == logging.ERROR and "max restart intensity" in record.getMessage()
    report = record.report  # type: ignore[attr-defined]
    assert (report["id"], report["reason"]) == ("a", last.exit_reason)
    assert (report["max_restarts"], report["max_seconds"]) == (2, 60)


def test_max_restarts_zero_escalates_at_the_first_crash(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("a")], max_restarts=0))
    kit.exit_child(sup, "a")
    assert sup.join(5)
    assert sup.exit_reason == "shutdown"


def test_restarts_spread_wider_than_the_window_do_not_escalate(kit) -> None:
    window = 0.05
    sup = kit.start(Supervisor([kit.spec("a")], max_restarts=1, max_seconds=window))
    for _ in range(4):
        kit.exit_child(sup, "a")
        assert alive(children(sup)["a"])
        time.sleep(window * 1.5)
    assert sup.is_alive()


def test_nested_supervisors_escalate_to_the_top(kit) -> None:
    inner = ChildSpec(
        "inner",
        lambda: Supervisor([kit.spec("w")], max_restarts=1, max_seconds=60, name="inner").start(),
        type="supervisor",
        shutdown=None,
    )
    top = kit.start(Supervisor([kit.spec("sibling"), inner], max_restarts=1, max_seconds=60, name="top"))
    first_inner = children(top)["inner"]
    for round_ in range(2):
        current_inner = children(top)["inner"]
        assert current_inner is not None
        kit.exit_child(current_inner, "w")
        kit.exit_child(current_inner, "w")
        assert current_inner.join(5)
        assert current_inner.exit_reason == "shutdown"
        if round_ == 0:
            assert children(top)["inner"] is not first_inner
    assert top.join(5)
    assert top.exit_reason == "shutdown"
    assert kit.stops()[-1] == "sibling"


def test_a_transient_nested_supervisor_at_its_intensity_is_not_restarted(kit) -> None:
    inner = ChildSpec(
        "inner", lambda: Supervisor([kit.spec("w")], max_restarts=0).start(), "transient", type="supervisor"
    )
    top = kit.start(Supervisor([inner], max_restarts=0))
    first_inner = children(top)["inner"]
    kit.exit_child(first_inner, "w")
    assert first_inner is not None and first_inner.join(5)
    assert children(top) == {"inner": None} and top.is_alive()


def test_stop_waits_for_a_nested_tree(kit) -> None:
    inner = ChildSpec(
        "inner", lambda: Supervisor([kit.spec("x"), kit.spec("y")]).start(), type="supervisor", shutdown=None
    )
    top = kit.start(Supervisor([kit.spec("a"), inner, kit.spec("b")]))
    assert kit.starts() == ["a", "x", "y", "b"]
    top.stop()
    assert kit.stops() == ["b", "y", "x", "a"]


def test_shutdown_timeout_kills_a_child_that_ignores_stop(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("polite"), kit.spec("deaf", deaf=True, shutdown=0.05)]))
    polite, deaf = children(sup).values()
    assert polite is not None and deaf is not None
    sup.stop()
    assert deaf.exit_reason == KILLED
    assert polite.exit_reason == "shutdown"
    assert kit.stops() == ["deaf", "deaf", "polite"]  # asked to stop, then killed: kill() asks again


def test_brutal_kill_does_not_wait(kit) -> None:
    sup = kit.start(
        Supervisor([kit.spec("deaf", deaf=True, shutdown="brutal_kill"), kit.spec("willing", shutdown="brutal_kill")])
    )
    deaf, willing = children(sup).values()
    assert deaf is not None and willing is not None
    sup.stop()
    assert deaf.exit_reason == KILLED and willing.exit_reason == KILLED


def test_a_failed_start_stops_the_started_children(kit, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Process:
        raise OSError("cannot start")

    sup = Supervisor([kit.spec("a"), kit.spec("b"), ChildSpec("broken", broken), kit.spec("c")])
    with pytest.raises(StartError) as info:
        sup.start()
    assert info.value.child_id == "broken"
    assert isinstance(info.value.reason, OSError)
    assert "'broken' failed to start" in str(info.value)
    assert kit.starts() == ["a", "b"]
    assert kit.stops() == ["b", "a"]
    assert not sup.is_alive()
    assert sup.exit_reason is info.value
    assert "cannot start" in caplog.text


def test_start_must_return_a_started_process(kit) -> None:
    for start in (lambda: "not a process", lambda: kit.worker("unstarted")):
        with pytest.raises(StartError) as info:
            Supervisor([ChildSpec("bad", start)]).start()  # type: ignore[arg-type]
        assert isinstance(info.value.reason, TypeError)


def test_a_nested_start_failure_reaches_the_top(kit) -> None:
    def broken() -> Process:
        raise OSError("deep")

    inner = ChildSpec("inner", lambda: Supervisor([ChildSpec("broken", broken)]).start(), type="supervisor")
    with pytest.raises(StartError) as info:
        Supervisor([kit.spec("a"), inner]).start()
    assert info.value.child_id == "inner"
    assert isinstance(info.value.reason, StartError) and info.value.reason.child_id == "broken"
    assert kit.stops() == ["a"]


def test_a_failed_restart_is_retried_within_the_intensity(kit) -> None:
    failures = [OSError("flaky")]

    def flaky() -> Process:
        if kit.starts() and failures:
            raise failures.pop()
        worker: Process = kit.worker("f").start()
        return worker

    sup = kit.start(Supervisor([ChildSpec("f", flaky)], max_restarts=2, max_seconds=60))
    kit.exit_child(sup, "f")
    deadline = time.monotonic() + 5
    while not alive(children(sup)["f"]) and time.monotonic() < deadline:  # the retry is queued, as in OTP
        time.sleep(0.01)
    assert alive(children(sup)["f"])
    assert kit.starts() == ["f", "f"]


def test_restarts_that_keep_failing_escalate(kit) -> None:
    def once() -> Process:
        if "f" in kit.starts():
            raise OSError("gone for good")
        worker: Process = kit.worker("f").start()
        return worker

    sup = kit.start(
        Supervisor([kit.spec("a"), ChildSpec("f", once), kit.spec("z")], "rest_for_one", max_restarts=3, max_seconds=60)
    )
    kit.exit_child(sup, "f")
    assert sup.join(5)
    assert sup.exit_reason == "shutdown"
    assert kit.starts() == ["a", "f", "z"]  # "z" waits for "f" under rest_for_one
    assert kit.stops() == ["z", "a"]


def test_restarts_and_exits_are_logged_with_child_id_and_reason(kit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="supervisors")
    sup = kit.start(Supervisor([kit.spec("logged-child")], name="logging-sup"))
    kit.exit_child(sup, "logged-child", ValueError("oops"))
    children(sup)
    messages = [r.getMessage() for r in caplog.records if r.name == "supervisors"]
    assert any("child_terminated: child 'logged-child'" in m and "oops" in m and "logging-sup" in m for m in messages)
    assert any("progress: started child 'logged-child'" in m for m in messages)
    assert any("restarting child 'logged-child'" in m for m in messages)


def test_trace_switches_debug_events_per_supervisor(kit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="supervisors.trace")
    traced = kit.start(Supervisor([kit.spec("t1")], name="traced-sup"))
    quiet = kit.start(Supervisor([kit.spec("q1")], name="quiet-sup"))
    trace(traced, True)
    kit.exit_child(traced, "t1")
    kit.exit_child(quiet, "q1")
    children(traced), children(quiet)
    trace(traced, False)
    traced.terminate_child("t1")
    messages = [r.getMessage() for r in caplog.records if r.name == "supervisors.trace"]
    assert any("traced-sup" in m and "started child 't1'" in m for m in messages)
    assert not any("quiet-sup" in m for m in messages)
    assert not any("terminated child" in m for m in messages)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "supervisors.trace")


def test_invalid_arguments() -> None:
    spec = ChildSpec("a", lambda: Process())
    with pytest.raises(ValueError):
        Supervisor([spec], strategy="simple_one_for_one")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Supervisor([spec, spec])
    with pytest.raises(ValueError):
        Supervisor([spec], max_restarts=-1)
    with pytest.raises(ValueError):
        Supervisor([spec], max_seconds=0)
