"""The process registry: find a live process by name from anywhere."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .errors import NameTakenError

if TYPE_CHECKING:
    from .process import Process

__all__ = ["whereis"]


class _Registry:
    """Names of live processes; a process registers at start and unregisters at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, Process] = {}

    def register(self, name: str, process: Process) -> None:
        with self._lock:
            holder = self._names.setdefault(name, process)
        if holder is not process:
            raise NameTakenError(name, holder)

    def unregister(self, name: str, process: Process) -> None:
        with self._lock:
            if self._names.get(name) is process:
                del self._names[name]

    def whereis(self, name: str) -> Process | None:
        with self._lock:
            return self._names.get(name)

    def reinit_after_fork(self) -> None:
        """In a forked child: a dead thread may have held the lock."""
        self._lock = threading.Lock()


REGISTRY = _Registry()


def whereis(name: str) -> Process | None:
    """The live process registered under ``name``, or None."""
    return REGISTRY.whereis(name)
