"""OTP semantics of issue 20: specs, significant children, DynamicSupervisor arguments and shutdown, reports."""

from __future__ import annotations

import logging
import time

import pytest

from supervisors import (
    ChildSpec,
    DynamicSupervisor,
    Process,
    Supervisor,
    UnknownChildError,
    check_childspecs,
)

pytestmark = pytest.mark.timeout(20)


def test_get_childspec(kit) -> None:
    spec = kit.spec("a")
    sup = kit.start(Supervisor([spec]))
    assert sup.get_childspec("a") is spec
    with pytest.raises(UnknownChildError):
        sup.get_childspec("nope")


def test_check_childspecs(kit) -> None:
    a, b = kit.spec("a"), kit.spec("b", restart="transient", significant=True)
    assert check_childspecs([a, b], "any_significant") == [a, b]
    for bad in ([a, a], [a, "a"], [b]):
        with pytest.raises(ValueError):
            check_childspecs(bad)
    with pytest.raises(ValueError):
        check_childspecs([a], "sometimes")  # type: ignore[arg-type]


def test_a_permanent_child_cannot_be_significant(kit) -> None:
    with pytest.raises(ValueError, match="permanent"):
        kit.spec("a", significant=True)
    with pytest.raises(ValueError, match="never"):
        Supervisor([kit.spec("t", restart="transient", significant=True)])
    sup = kit.start(Supervisor([]))
    with pytest.raises(ValueError, match="never"):
        sup.start_child(kit.spec("t", restart="transient", significant=True))
    with pytest.raises(ValueError, match="never"):
        kit.start(DynamicSupervisor()).start_child(kit.spec("t", restart="temporary", significant=True))


def test_any_significant_exit_shuts_the_supervisor_down(kit) -> None:
    specs = [kit.spec("plain"), kit.spec("sig", restart="transient", significant=True)]
    sup = kit.start(Supervisor(specs, auto_shutdown="any_significant"))
    kit.exit_child(sup, "sig", "normal")
    assert sup.join(5) and sup.exit_reason == "shutdown"
    assert kit.stops()[-1] == "plain"


def test_all_significant_waits_for_the_last_one(kit) -> None:
    specs = [kit.spec(tag, restart="temporary", significant=True) for tag in ("s1", "s2")]
    sup = kit.start(Supervisor(specs, auto_shutdown="all_significant"))
    kit.exit_child(sup, "s1", "normal")
    assert sup.count_children()["active"] == 1 and sup.is_alive()
    kit.exit_child(sup, "s2", RuntimeError("crash"))
    assert sup.join(5) and sup.exit_reason == "shutdown"


def test_terminate_child_does_not_trigger_auto_shutdown(kit) -> None:
    sup = kit.start(
        Supervisor([kit.spec("sig", restart="transient", significant=True)], auto_shutdown="any_significant")
    )
    sup.terminate_child("sig")
    assert sup.is_alive() and sup.count_children()["active"] == 0


def test_extra_arguments_come_first_at_every_start(kit) -> None:
    calls: list[tuple[object, ...]] = []

    def start(*args: object) -> Process:
        calls.append(args)
        worker: Process = kit.worker("w").start()
        return worker

    sup = kit.start(DynamicSupervisor(extra_arguments=("pool", 7)))
    child = sup.start_child(ChildSpec("w", start))
    child.exit(RuntimeError("crash"))
    assert child.join(5)
    sup.count_children()
    assert calls == [("pool", 7), ("pool", 7)]


class SlowStop(Process):
    def run(self) -> object:
        self.stop_requested.wait()
        time.sleep(0.5)
        return "shutdown"


def test_a_dynamic_supervisor_stops_its_children_together() -> None:
    sup = DynamicSupervisor().start()
    for n in range(4):
        sup.start_child(ChildSpec(n, lambda: SlowStop().start()))
    began = time.monotonic()
    sup.stop()
    assert time.monotonic() - began < 1.5  # one after the other would take 2 s


def test_reports_progress_and_child_terminated(kit, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="supervisors")
    sup = kit.start(Supervisor([kit.spec("a"), kit.spec("b")], name="reporting"))
    kit.exit_child(sup, "a", "normal")  # a permanent child: reported even after a normal exit, as OTP
    sup.count_children()
    progress = [r for r in caplog.records if "progress" in r.getMessage()]
    assert [r.report["id"] for r in progress] == ["a", "b", "a"]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.INFO for r in progress)
    (terminated,) = [r for r in caplog.records if "child_terminated" in r.getMessage()]
    assert terminated.levelno == logging.ERROR and terminated.report["reason"] == "normal"  # type: ignore[attr-defined]
