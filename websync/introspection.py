"""Runtime introspection of workers, in the spirit of Erlang's ``sys``: trace, state, statistics.

Each call goes through ``supervisors.sys`` (the worker's system protocol: it runs in the worker's
thread); on a worker that has exited, the last values are read directly.
"""

from __future__ import annotations

from typing import Any

from supervisors import NotRunningError
from supervisors import sys as system

from .server.handler import ServerHandler
from .worker.client import ClientConnection
from .worker.handler import Handler
from .worker.worker import Worker

__all__ = ["trace", "get_state", "statistics"]


def _worker(target: Worker | ClientConnection) -> Worker:
    return target.worker if isinstance(target, ClientConnection) else target


def trace(target: Worker | ClientConnection, enabled: bool = True) -> None:
    """Switch the trace of one running worker (or blocking connection) on or off."""
    worker = _worker(target)
    try:
        system.trace(worker, enabled)
    except NotRunningError:
        worker.tracer.switch(enabled)


def get_state(target: Worker | ClientConnection) -> Handler | ServerHandler:
    """The handler object of a worker: the state its callbacks keep (a server connection's ServerHandler)."""
    worker = _worker(target)
    try:
        state = system.get_state(worker)
    except NotRunningError:
        state = worker.system_get_state()
    assert isinstance(state, (Handler, ServerHandler))
    return state


def statistics(target: Worker | ClientConnection) -> dict[str, Any]:
    """Counters of a worker: frames and bytes in and out, queued frames, reconnects, connected since."""
    worker = _worker(target)
    try:
        return worker.system_call(worker.system_statistics)
    except NotRunningError:
        return worker.system_statistics()
