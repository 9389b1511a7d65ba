"""ChildSpec: a child described by data."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self, get_args

from .process import FunctionProcess, Process

__all__ = ["ChildSpec", "Restart", "Shutdown", "ChildType"]

Restart = Literal["permanent", "transient", "temporary"]
ChildType = Literal["worker", "supervisor"]
Shutdown = float | Literal["brutal_kill"] | None


@dataclass(frozen=True)
class ChildSpec:
    """How a supervisor starts and stops one child.

    - ``start``: called with no arguments, returns a started Process.
    - ``restart``: ``"permanent"`` (always restarted), ``"transient"`` (restarted
      after an abnormal exit only) or ``"temporary"`` (never restarted).
    - ``shutdown``: seconds to wait for a graceful stop before killing the child,
      ``"brutal_kill"``, or None to wait forever (use None for supervisors).
    - ``type``: ``"worker"`` or ``"supervisor"``.
    """

    id: Hashable
    start: Callable[[], Process]
    restart: Restart = "permanent"
    shutdown: Shutdown = 5.0
    type: ChildType = "worker"

    def __post_init__(self) -> None:
        if self.restart not in get_args(Restart):
            raise ValueError(f"restart must be one of {get_args(Restart)}, not {self.restart!r}")
        if self.type not in get_args(ChildType):
            raise ValueError(f"type must be one of {get_args(ChildType)}, not {self.type!r}")
        shutdown = self.shutdown
        if not (shutdown is None or shutdown == "brutal_kill" or _is_seconds(shutdown)):
            raise ValueError(f"shutdown must be seconds >= 0, 'brutal_kill' or None, not {shutdown!r}")

    @classmethod
    def from_function(
        cls,
        id: Hashable,  # OTP's name, though it shadows the builtin
        target: Callable[..., object],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        restart: Restart = "permanent",
        shutdown: Shutdown = 5.0,
    ) -> Self:
        """A spec whose child runs ``target(*args, **kwargs)`` in a FunctionProcess registered as ``name``."""
        kw = dict(kwargs or {})
        return cls(id, lambda: FunctionProcess(target, *args, name=name, **kw).start(), restart, shutdown)


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
