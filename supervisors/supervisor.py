"""Supervisor: children from specs with ids, a restart strategy and the OTP calls."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import get_args

from .base import SupervisorBase
from .errors import ChildRunningError, DuplicateChildError, UnknownChildError
from .process import Process
from .spec import AutoShutdown, ChildSpec, check_childspecs, check_significance
from .strategies import Strategy

__all__ = ["Supervisor"]


class Supervisor(SupervisorBase):
    """Starts ``children`` in order, restarts them by ``strategy`` and stops them in reverse order.

    More than ``max_restarts`` restarts within ``max_seconds`` make the supervisor report
    it, stop every child and exit with reason ``"shutdown"``, as OTP's does. With
    ``auto_shutdown`` ``"any_significant"`` or ``"all_significant"``, the exit of
    significant children (see ``ChildSpec``) shuts it down too. ``start()`` returns once
    every child has started, or raises StartError. ValueError for invalid children.
    """

    def __init__(
        self,
        children: Iterable[ChildSpec],
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
        *,
        auto_shutdown: AutoShutdown = "never",
    ) -> None:
        if strategy not in get_args(Strategy):
            raise ValueError(f"strategy must be one of {get_args(Strategy)}, not {strategy!r}")
        specs = check_childspecs(children, auto_shutdown)
        super().__init__(
            ((spec.id, spec) for spec in specs),
            max_restarts,
            max_seconds,
            name,
            strategy=strategy,
            auto_shutdown=auto_shutdown,
        )

    def start_child(self, spec: ChildSpec) -> Process:
        """Add ``spec`` at the end of the children and start it.

        Raises DuplicateChildError if the id exists, StartError (and forgets the spec) if the
        start fails, ValueError for a significant child when ``auto_shutdown`` is ``"never"``.
        """

        def start_child() -> Process:
            if spec.id in self._children:
                raise DuplicateChildError(spec.id)
            check_significance(spec, self.auto_shutdown)
            return self._add(spec.id, spec)

        return self._call(start_child)

    def terminate_child(self, child_id: Hashable) -> None:
        """Stop a child as its spec says; keep its spec (except for temporary children) for ``restart_child``.

        Never triggers ``auto_shutdown``.
        """
        self._call(lambda: self._terminate(self._known(child_id)))

    def restart_child(self, child_id: Hashable) -> Process:
        """Start again a child whose spec is kept but which is not running."""
        return self._call(lambda: self._start(self._stopped(child_id)))

    def delete_child(self, child_id: Hashable) -> None:
        """Forget the spec of a child that is not running."""
        self._call(lambda: self._children.pop(self._stopped(child_id)))

    def get_childspec(self, child_id: Hashable) -> ChildSpec:
        """The spec of child ``child_id``; UnknownChildError if there is none."""
        return self._call(lambda: self._children[self._known(child_id)].spec)

    def _known(self, child_id: Hashable) -> Hashable:
        if child_id not in self._children:
            raise UnknownChildError(child_id)
        return child_id

    def _stopped(self, child_id: Hashable) -> Hashable:
        if self._children[self._known(child_id)].process is not None:
            raise ChildRunningError(child_id)
        return child_id
