"""whereis: names of live processes and supervisors, kept across restarts."""

from __future__ import annotations

import pytest

from supervisors import ChildSpec, DynamicSupervisor, StartError, Supervisor, whereis

pytestmark = pytest.mark.timeout(10)


def test_a_named_supervisor_is_found_while_alive(kit) -> None:
    sup: Supervisor = kit.start(Supervisor([], name="reg-top"))
    assert whereis("reg-top") is sup
    sup.stop()
    assert whereis("reg-top") is None


def test_a_restarted_child_is_found_under_the_same_name(kit) -> None:
    sup = kit.start(Supervisor([kit.spec("w", name="reg-worker")]))
    old = whereis("reg-worker")
    assert old is sup.which_children()[0][1]
    kit.exit_child(sup, "w")
    sup.which_children()
    new = whereis("reg-worker")
    assert new is not None and new is not old and new.is_alive()


def test_a_restarted_supervisor_is_found_under_the_same_name(kit) -> None:
    inner = ChildSpec(
        "inner",
        lambda: Supervisor([kit.spec("w")], max_restarts=0, name="reg-inner").start(),
        type="supervisor",
        shutdown=None,
    )
    top = kit.start(Supervisor([inner]))
    old = whereis("reg-inner")
    assert old is not None
    kit.exit_child(old, "w")
    assert old.join(5)
    top.which_children()
    assert whereis("reg-inner") not in (None, old)


def test_a_taken_name_fails_the_child_start(kit) -> None:
    kit.start(Supervisor([kit.spec("w", name="reg-taken")]))
    dynamic = kit.start(DynamicSupervisor())
    with pytest.raises(StartError) as info:
        dynamic.start_child(kit.spec("w", name="reg-taken"))
    assert "reg-taken" in str(info.value.reason)


def test_unknown_name() -> None:
    assert whereis("reg-nobody") is None
