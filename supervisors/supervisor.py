"""Supervisor: children from specs with ids, a restart strategy and the OTP calls."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import get_args

from .base import SupervisorBase
from .errors import ChildRunningError, DuplicateChildError, UnknownChildError
from .process import Process
from .spec import ChildSpec
from .strategies import Strategy, restart_scope

__all__ = ["Supervisor"]


class Supervisor(SupervisorBase):
    """Starts ``children`` in order, restarts them by ``strategy`` and stops them in reverse order.

    More than ``max_restarts`` restarts within ``max_seconds`` make the supervisor stop
    every child and exit with a RestartIntensityError, for its own parent to handle.
    ``start()`` returns once every child has started, or raises StartError.
    """

    def __init__(
        self,
        children: Iterable[ChildSpec],
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
    ) -> None:
        if strategy not in get_args(Strategy):
            raise ValueError(f"strategy must be one of {get_args(Strategy)}, not {strategy!r}")
        specs = list(children)
        ids = [spec.id for spec in specs]
        duplicates = {child_id for child_id in ids if ids.count(child_id) > 1}
        if duplicates:
            raise ValueError(f"duplicate child ids: {sorted(map(repr, duplicates))}")
        super().__init__(zip(ids, specs), max_restarts, max_seconds, name)
        self.strategy = strategy

    def start_child(self, spec: ChildSpec) -> Process:
        """Add ``spec`` at the end of the children and start it.

        Raises DuplicateChildError if the id exists, StartError (and forgets the spec) if the start fails.
        """

        def start_child() -> Process:
            if spec.id in self._children:
                raise DuplicateChildError(spec.id)
            return self._add(spec.id, spec)

        return self._call(start_child)

    def terminate_child(self, child_id: Hashable) -> None:
        """Stop a child as its spec says; keep its spec (except for temporary children) for ``restart_child``."""
        self._call(lambda: self._terminate(self._known(child_id)))

    def restart_child(self, child_id: Hashable) -> Process:
        """Start again a child whose spec is kept but which is not running."""
        return self._call(lambda: self._start(self._stopped(child_id)))

    def delete_child(self, child_id: Hashable) -> None:
        """Forget the spec of a child that is not running."""
        self._call(lambda: self._children.pop(self._stopped(child_id)))

    def _scope(self, key: Hashable) -> list[Hashable]:
        return restart_scope(self.strategy, list(self._children), key)

    def _known(self, child_id: Hashable) -> Hashable:
        if child_id not in self._children:
            raise UnknownChildError(child_id)
        return child_id

    def _stopped(self, child_id: Hashable) -> Hashable:
        if self._children[self._known(child_id)].process is not None:
            raise ChildRunningError(child_id)
        return child_id
