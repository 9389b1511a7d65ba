"""How websync workers plug into ``supervisors`` trees."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from supervisors import ChildSpec, Restart, Shutdown

from .handler import Handler
from .worker import Worker, start

__all__ = ["child_spec"]


def child_spec(
    handler: Handler | Callable[[], Handler],
    *,
    id: Hashable,  # OTP's name, though it shadows the builtin
    restart: Restart = "permanent",
    shutdown: Shutdown = 5.0,
    name: str | None = None,
    **options: Any,
) -> ChildSpec:
    """The :class:`~supervisors.ChildSpec` of a worker started with ``websync.start(handler, name=name, **options)``.

    ``handler`` is a Handler class (or any factory), called anew at every start and restart so a
    restarted worker begins from a clean state, as in OTP; a Handler instance is reused across
    restarts instead, keeping whatever state it had when the worker crashed.
    """

    def start_worker() -> Worker:
        instance = handler if isinstance(handler, Handler) else handler()
        return start(instance, name=name, **options)

    return ChildSpec(id, start_worker, restart=restart, shutdown=shutdown)
