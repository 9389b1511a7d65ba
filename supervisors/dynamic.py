"""DynamicSupervisor: children started at run time, restarted one for one, stopped together."""

from __future__ import annotations

import itertools
from typing import Any

from .base import SupervisorBase
from .errors import MaxChildrenError, UnknownChildError
from .process import Process
from .spec import ChildSpec, check_significance

__all__ = ["DynamicSupervisor"]


class DynamicSupervisor(SupervisorBase):
    """Starts no children itself; ``start_child`` adds them at run time, at most ``max_children``.

    Children are known by their process; one that exits without being restarted is forgotten.
    Each start and restart calls ``spec.start(*extra_arguments)``. At shutdown every child is
    asked to stop at the same time, as Elixir's DynamicSupervisor does.
    """

    _keeps_stopped_children = False
    _stops_children_together = True

    def __init__(
        self,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
        *,
        extra_arguments: tuple[Any, ...] = (),
    ) -> None:
        super().__init__((), max_restarts, max_seconds, name, extra_arguments=extra_arguments)
        self.max_children = max_children
        self._ids = itertools.count()

    def start_child(self, spec: ChildSpec) -> Process:
        """Start a child from ``spec`` and return it.

        Raises MaxChildrenError at the limit, StartError if the start fails, ValueError for a
        significant child (a DynamicSupervisor never shuts down automatically).
        """
        check_significance(spec, self.auto_shutdown)

        def start_child() -> Process:
            if self.max_children is not None and len(self._children) >= self.max_children:
                raise MaxChildrenError(self.max_children)
            return self._add(next(self._ids), spec)

        return self._call(start_child)

    def terminate_child(self, child: Process) -> None:
        """Stop ``child`` as its spec says and forget it; UnknownChildError if it is not a child."""

        def terminate() -> None:
            key = self._keys.get(child)
            if key is None:
                raise UnknownChildError(child)
            self._terminate(key)

        self._call(terminate)
