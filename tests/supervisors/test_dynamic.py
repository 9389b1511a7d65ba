"""DynamicSupervisor: children started at run time."""

from __future__ import annotations

import pytest

from supervisors import (
    ChildSpec,
    DynamicSupervisor,
    MaxChildrenError,
    Process,
    StartError,
    UnknownChildError,
)

pytestmark = pytest.mark.timeout(10)


def test_start_child_returns_the_started_child(kit) -> None:
    sup = kit.start(DynamicSupervisor())
    assert sup.which_children() == []
    child = sup.start_child(kit.spec("w"))
    assert child.is_alive()
    assert sup.which_children() == [("w", child, "worker")]
    assert sup.count_children() == {"specs": 1, "active": 1, "supervisors": 0, "workers": 1}


def test_max_children(kit) -> None:
    sup = kit.start(DynamicSupervisor(max_children=2))
    first = sup.start_child(kit.spec("w"))
    sup.start_child(kit.spec("w"))
    with pytest.raises(MaxChildrenError) as info:
        sup.start_child(kit.spec("w"))
    assert info.value.max_children == 2
    assert kit.starts() == ["w", "w"]
    sup.terminate_child(first)
    assert sup.start_child(kit.spec("w")).is_alive()


def test_terminate_child_stops_and_forgets(kit) -> None:
    sup = kit.start(DynamicSupervisor())
    child = sup.start_child(kit.spec("w"))
    sup.terminate_child(child)
    assert child.exit_reason == "shutdown"
    assert sup.which_children() == []
    with pytest.raises(UnknownChildError):
        sup.terminate_child(child)


def test_a_crashed_child_is_restarted_in_its_place(kit) -> None:
    sup = kit.start(DynamicSupervisor())
    first = sup.start_child(kit.spec("a"))
    second = sup.start_child(kit.spec("b"))
    first.exit(RuntimeError("crash"))
    assert first.join(5)
    rows = sup.which_children()
    assert [child_id for child_id, _, _ in rows] == ["a", "b"]
    assert rows[0][1] is not first and rows[0][1].is_alive()
    assert rows[1][1] is second


@pytest.mark.parametrize(("restart", "reason"), [("temporary", RuntimeError("x")), ("transient", "normal")])
def test_a_child_that_is_not_restarted_is_forgotten(kit, restart: str, reason: object) -> None:
    sup = kit.start(DynamicSupervisor())
    child = sup.start_child(kit.spec("w", restart=restart))
    child.exit(reason)
    assert child.join(5)
    assert sup.which_children() == []


def test_a_failing_start_is_reported_and_not_kept(kit) -> None:
    def broken() -> Process:
        raise OSError("no")

    sup = kit.start(DynamicSupervisor(max_children=1))
    with pytest.raises(StartError):
        sup.start_child(ChildSpec("broken", broken))
    assert sup.count_children()["specs"] == 0
    assert sup.start_child(kit.spec("w")).is_alive()


def test_restart_intensity_escalates(kit) -> None:
    sup = kit.start(DynamicSupervisor(max_restarts=1, max_seconds=60))
    other = sup.start_child(kit.spec("other"))
    sup.start_child(kit.spec("w"))
    for _ in range(2):
        child = sup.which_children()[-1][1]
        child.exit(RuntimeError("crash"))
        assert child.join(5)
    assert sup.join(5)
    assert sup.exit_reason == "shutdown"
    assert other.exit_reason == "shutdown"


def test_stop_stops_children_newest_first(kit) -> None:
    sup = kit.start(DynamicSupervisor())
    for tag in "abc":
        sup.start_child(kit.spec(tag))
    sup.stop()
    assert kit.stops() == ["c", "b", "a"]
    assert sup.exit_reason == "shutdown"
