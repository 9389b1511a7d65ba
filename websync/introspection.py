"""Runtime introspection of workers, in the spirit of Erlang's ``:sys``: trace, state, statistics."""

from __future__ import annotations

from typing import Any

from .server.connection_worker import HandlerAdapter
from .server.serving import ServerHandler
from .worker.client import ClientConnection
from .worker.handler import Handler
from .worker.worker import Worker

__all__ = ["trace", "get_state", "statistics"]


def _worker(target: Worker | ClientConnection) -> Worker:
    return target.worker if isinstance(target, ClientConnection) else target


def trace(target: Worker | ClientConnection, enabled: bool = True) -> None:
    """Switch the trace of one running worker (or blocking connection) on or off."""
    _worker(target).tracer.switch(enabled)


def get_state(target: Worker | ClientConnection) -> Handler | ServerHandler:
    """The handler object of a worker: the state its callbacks keep (a server connection's ServerHandler)."""
    handler = _worker(target).handler
    return handler.handler if isinstance(handler, HandlerAdapter) else handler


def statistics(target: Worker | ClientConnection) -> dict[str, Any]:
    """Counters of a worker: frames and bytes in and out, queued frames, reconnects, connected since."""
    worker = _worker(target)
    counters = worker.stats.as_dict()
    counters["queued"] = worker.queued
    return counters
