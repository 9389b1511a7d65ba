"""Restart decisions as small functions: restart types, strategies, intensity."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from typing import Literal

from .reasons import is_normal_exit
from .spec import Restart

__all__ = ["RestartIntensity", "Strategy", "restart_scope", "should_restart"]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]


def should_restart(restart: Restart, reason: object) -> bool:
    """Whether a child with this restart type is restarted after exiting with ``reason``."""
    if restart == "permanent":
        return True
    return restart == "transient" and not is_normal_exit(reason)


def restart_scope(strategy: Strategy, ids: Sequence[Hashable], failed: Hashable) -> list[Hashable]:
    """The ids, in start order, that the strategy restarts when child ``failed`` exits."""
    if strategy == "one_for_one":
        return [failed]
    if strategy == "one_for_all":
        return list(ids)
    return list(ids[list(ids).index(failed) :])


class RestartIntensity:
    """Counts restarts in a sliding window of ``max_seconds``."""

    def __init__(self, max_restarts: int, max_seconds: float) -> None:
        if max_restarts < 0 or max_seconds <= 0:
            raise ValueError("max_restarts must be >= 0 and max_seconds > 0")
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._restarts: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Record a restart at ``now``; False when it makes more than ``max_restarts`` within ``max_seconds``."""
        self._restarts.append(now)
        while now - self._restarts[0] >= self.max_seconds:
            self._restarts.popleft()
        return len(self._restarts) <= self.max_restarts
