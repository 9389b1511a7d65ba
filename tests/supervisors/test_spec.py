"""ChildSpec: validation and the adapter for plain functions."""

from __future__ import annotations

import threading

import pytest

from supervisors import ChildSpec, FunctionProcess, Process, Supervisor, whereis

pytestmark = pytest.mark.timeout(10)


def test_defaults() -> None:
    spec = ChildSpec("w", lambda: Process())
    assert (spec.restart, spec.shutdown, spec.type) == ("permanent", 5.0, "worker")


@pytest.mark.parametrize(
    "options",
    [{"restart": "always"}, {"type": "thread"}, {"shutdown": -1}, {"shutdown": "kill"}, {"shutdown": True}],
)
def test_invalid_specs(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ChildSpec("w", lambda: Process(), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("shutdown", [0, 2.5, "brutal_kill", None])
def test_valid_shutdowns(shutdown: object) -> None:
    assert ChildSpec("w", lambda: Process(), shutdown=shutdown).shutdown == shutdown  # type: ignore[arg-type]


def test_from_function_runs_the_function_as_a_child(kit) -> None:
    go = threading.Event()
    results: list[int] = []

    def work(a: int, b: int) -> str:
        go.wait()
        results.append(a + b)
        return "normal"

    spec = ChildSpec.from_function("fn", work, (1,), {"b": 2}, name="fn-child", restart="transient", shutdown=1.0)
    assert (spec.id, spec.restart, spec.shutdown) == ("fn", "transient", 1.0)
    sup = kit.start(Supervisor([spec]))
    child = sup.which_children()[0][1]
    assert isinstance(child, FunctionProcess) and whereis("fn-child") is child
    go.set()
    assert child.join(5)
    assert results == [3] and child.exit_reason == "normal"
    assert sup.which_children() == [("fn", None, "worker")]  # transient, normal exit: not restarted
