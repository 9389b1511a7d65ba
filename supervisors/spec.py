"""ChildSpec: a child described by data."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Literal, Self, get_args

from .process import FunctionProcess, Process

__all__ = ["AutoShutdown", "ChildSpec", "ChildType", "Restart", "Shutdown", "check_childspecs"]

Restart = Literal["permanent", "transient", "temporary"]
ChildType = Literal["worker", "supervisor"]
Shutdown = float | Literal["brutal_kill"] | None
AutoShutdown = Literal["never", "any_significant", "all_significant"]


@dataclass(frozen=True, init=False, slots=True)
class ChildSpec:
    """How a supervisor starts and stops one child.

    - ``start``: returns a started Process; called with no arguments (with a
      DynamicSupervisor's ``extra_arguments``, if any).
    - ``restart``: ``"permanent"`` (always restarted), ``"transient"`` (restarted
      after an abnormal exit only) or ``"temporary"`` (never restarted).
    - ``shutdown``: seconds to wait for a graceful stop before killing the child,
      ``"brutal_kill"``, or None to wait forever; by default 5.0 for a worker and
      None for a supervisor, as in OTP.
    - ``type``: ``"worker"`` or ``"supervisor"``.
    - ``significant``: its exit (not restarted) may shut the supervisor down, see
      ``Supervisor(auto_shutdown=...)``; only for transient and temporary children.

    Raises ValueError for an invalid value.
    """

    id: Hashable
    start: Callable[..., Process]
    restart: Restart
    shutdown: Shutdown
    type: ChildType
    significant: bool

    def __init__(
        self,
        id: Hashable,  # OTP's name, though it shadows the builtin
        start: Callable[..., Process],
        restart: Restart = "permanent",
        shutdown: Shutdown | EllipsisType = ...,
        type: ChildType = "worker",
        *,
        significant: bool = False,
    ) -> None:
        if restart not in get_args(Restart):
            raise ValueError(f"restart must be one of {get_args(Restart)}, not {restart!r}")
        if type not in get_args(ChildType):
            raise ValueError(f"type must be one of {get_args(ChildType)}, not {type!r}")
        if shutdown is ...:
            shutdown = None if type == "supervisor" else 5.0
        if not (shutdown is None or shutdown == "brutal_kill" or _is_seconds(shutdown)):
            raise ValueError(f"shutdown must be seconds >= 0, 'brutal_kill' or None, not {shutdown!r}")
        if significant and restart == "permanent":
            raise ValueError(f"child {id!r}: a permanent child cannot be significant")
        fields = {"id": id, "start": start, "restart": restart, "shutdown": shutdown, "type": type}
        for field, value in {**fields, "significant": bool(significant)}.items():
            object.__setattr__(self, field, value)  # frozen

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


def check_childspecs(specs: Iterable[ChildSpec], auto_shutdown: AutoShutdown = "never") -> list[ChildSpec]:
    """Check a supervisor's children as OTP's ``check_childspecs``: return them as a list.

    Raises ValueError for something that is not a ChildSpec, duplicate ids, an unknown
    ``auto_shutdown``, or a significant child under ``auto_shutdown="never"``.
    """
    if auto_shutdown not in get_args(AutoShutdown):
        raise ValueError(f"auto_shutdown must be one of {get_args(AutoShutdown)}, not {auto_shutdown!r}")
    checked = list(specs)
    strangers = [spec for spec in checked if not isinstance(spec, ChildSpec)]
    if strangers:
        raise ValueError(f"not child specs: {strangers!r}")
    ids = [spec.id for spec in checked]
    duplicates = {child_id for child_id in ids if ids.count(child_id) > 1}
    if duplicates:
        raise ValueError(f"duplicate child ids: {sorted(map(repr, duplicates))}")
    for spec in checked:
        check_significance(spec, auto_shutdown)
    return checked


def check_significance(spec: ChildSpec, auto_shutdown: AutoShutdown) -> None:
    """ValueError for a significant child under a supervisor that never shuts down automatically."""
    if spec.significant and auto_shutdown == "never":
        raise ValueError(f"child {spec.id!r} is significant but auto_shutdown is 'never'")
