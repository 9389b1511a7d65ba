"""OTP's ``sys`` for every ``supervisors.Process``: suspend, resume, state, status, log, statistics, trace.

Each call goes through the process's system protocol (``Process.system_call`` and the
``system_*`` methods), so it works on a plain Process, a supervisor or any subclass that
overrides them. Calls on a process that is not alive raise NotRunningError, except
``log(process, "get")``, which reads the flight recorder also after the exit.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .process import Process
from .recorder import DEFAULT_SIZE, Event
from .trace import trace

__all__ = [
    "Status",
    "get_state",
    "get_status",
    "log",
    "replace_state",
    "resume",
    "statistics",
    "suspend",
    "trace",
]

_statistics_lock = threading.Lock()
_statistics_since: weakref.WeakKeyDictionary[Process, float] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Status:
    """What ``get_status`` reports, as OTP's ``sys:get_status``."""

    process: Process
    status: Literal["running", "suspended"]
    supervisor: Process | None
    traced: bool
    logging: bool
    statistics: bool
    state: object


def suspend(process: Process) -> None:
    """Suspend ``process``: a process with a loop (a supervisor) then handles only system calls
    and stop requests; other messages wait for ``resume``. A plain body is not paused."""
    process.system_call(lambda: _set_suspended(process, True))


def resume(process: Process) -> None:
    """Resume a suspended process: it handles the messages that waited, in order."""
    process.system_call(lambda: _set_suspended(process, False))


def get_state(process: Process) -> object:
    """The process's state (``system_get_state``): a supervisor's SupervisorState, a plain process itself."""
    return process.system_call(process.system_get_state)


def replace_state(process: Process, replace: Callable[[Any], Any]) -> object:
    """Replace the state with ``replace(state)`` in the process's thread and return the new state."""
    return process.system_call(lambda: process.system_replace_state(replace))


def get_status(process: Process) -> Status:
    """The process's status: running or suspended, its supervisor, its debug switches and its state."""

    def status() -> Status:
        return Status(
            process,
            "suspended" if process.suspended else "running",
            process.supervisor,
            process.traced,
            process.recording,
            process in _statistics_since,
            process.system_get_state(),
        )

    return process.system_call(status)


def log(process: Process, flag: bool | Literal["get"], *, size: int = DEFAULT_SIZE) -> list[Event] | None:
    """The flight recorder: ``True`` keeps the last ``size`` events (a new ring), ``False`` keeps
    none, ``"get"`` returns them, oldest first (also after the exit)."""
    if flag == "get":
        return process.recorded_events()
    process.set_recording(size if flag else None)
    return None


def statistics(process: Process, flag: bool | Literal["get"]) -> dict[str, object] | None:
    """``True`` starts statistics, ``False`` stops them, ``"get"`` returns them (None when off):
    ``start_time`` and ``current_time`` (``time.time()``) and the process's ``system_statistics()``."""
    if flag == "get":
        with _statistics_lock:
            since = _statistics_since.get(process)
        if since is None:
            return None
        counters = process.system_call(process.system_statistics)
        return {"start_time": since, "current_time": time.time(), **counters}
    process.system_call(lambda: None)  # NotRunningError unless alive
    with _statistics_lock:
        if flag:
            _statistics_since[process] = time.time()
        else:
            _statistics_since.pop(process, None)
    return None


def _set_suspended(process: Process, suspended: bool) -> None:
    process.suspended = suspended
