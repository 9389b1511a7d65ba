"""The restart decisions as plain functions: restart types, scopes and the intensity window."""

from __future__ import annotations

import pytest

from supervisors.strategies import RestartIntensity, restart_scope, should_restart

IDS = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("strategy", "failed", "scope"),
    [
        ("one_for_one", "b", ["b"]),
        ("one_for_all", "b", IDS),
        ("rest_for_one", "b", ["b", "c", "d"]),
        ("rest_for_one", "a", IDS),
        ("rest_for_one", "d", ["d"]),
    ],
)
def test_restart_scope(strategy: str, failed: str, scope: list[str]) -> None:
    assert restart_scope(strategy, IDS, failed) == scope  # type: ignore[arg-type]


def test_should_restart() -> None:
    crash = RuntimeError("x")
    assert should_restart("permanent", "normal") and should_restart("permanent", crash)
    assert should_restart("transient", crash) and not should_restart("transient", ("shutdown", 1))
    assert not should_restart("temporary", crash)


def test_intensity_allows_max_restarts_within_the_window() -> None:
    intensity = RestartIntensity(max_restarts=3, max_seconds=5.0)
    assert [intensity.allow(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]


def test_intensity_forgets_restarts_older_than_the_window() -> None:
    intensity = RestartIntensity(max_restarts=2, max_seconds=5.0)
    assert [intensity.allow(t) for t in (0.0, 4.0, 5.0, 9.5, 10.0, 10.5)] == [True, True, True, True, True, False]


def test_intensity_zero_refuses_every_restart() -> None:
    assert not RestartIntensity(max_restarts=0, max_seconds=1.0).allow(0.0)
