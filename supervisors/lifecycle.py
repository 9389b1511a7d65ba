"""Processes in the life of the OS process: stopped at interpreter exit, marked dead after fork()."""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING

from .registry import REGISTRY

if TYPE_CHECKING:
    from .process import Process

__all__: list[str] = []


class _LiveProcesses:
    """Live processes in start order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: dict[Process, None] = {}

    def add(self, process: Process) -> None:
        with self._lock:
            self._processes[process] = None

    def discard(self, process: Process) -> None:
        with self._lock:
            self._processes.pop(process, None)

    def snapshot(self) -> list[Process]:
        with self._lock:
            return list(self._processes)

    def stop_at_exit(self) -> None:
        """Stop every live process that no supervisor owns, newest first."""
        for process in reversed(self.snapshot()):
            if process.supervisor is None:
                process.stop("shutdown", process.exit_timeout)

    def after_fork_in_child(self) -> None:
        """Only the forking thread survives fork(): every other process is dead in the child."""
        self._lock = threading.Lock()
        REGISTRY.reinit_after_fork()
        for process in self.snapshot():
            process._lose_to_fork()


LIVE = _LiveProcesses()
atexit.register(LIVE.stop_at_exit)
os.register_at_fork(after_in_child=LIVE.after_fork_in_child)
