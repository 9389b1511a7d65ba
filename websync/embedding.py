"""Running a supervision tree inside a pre-forking web server (gunicorn, uWSGI) or a framework
that may load the application twice (Django's autoreloader, Flask's reloader).

:class:`ProcessTree` holds one tree per OS process: it builds and starts it on first use (or from
a server hook after the fork), at most once per process however often it is asked, and builds a
fresh one in a forked child, where the parent's threads do not exist. The tree stops at
interpreter exit with reason ``"shutdown"`` (``supervisors`` does that for every top-level
supervisor), so every worker closes its connection with 1001 (going away). See docs/embedding.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from supervisors import Process, SupervisorBase, whereis

from .rpc import WorkerNotFound

__all__ = ["ProcessTree"]


class ProcessTree:
    """A supervision tree built by ``build`` and started at most once per process; create it at import.

    ``build`` returns a new, not yet started supervisor (e.g. ``lambda: Supervisor([...])``).
    """

    def __init__(self, build: Callable[[], SupervisorBase]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._tree: SupervisorBase | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def start(self) -> SupervisorBase:
        """The running tree of this process, built and started by the first call (idempotent, thread-safe).

        A tree that has exited (stopped, or escalated past its restart intensity) is built and
        started again. Raises ``supervisors.StartError`` if a child cannot start.
        """
        with self._lock:
            tree = self._tree
            if tree is None or not tree.is_alive():
                tree = self._tree = self._build().start()
            return tree

    @property
    def started(self) -> bool:
        """Whether this process's tree is running (without starting it)."""
        tree = self._tree
        return tree is not None and tree.is_alive()

    def whereis(self, name: str) -> Process:
        """The live process registered under ``name``, after starting the tree if needed.

        Raises :class:`~websync.rpc.WorkerNotFound` if there is none (say, while it restarts).
        """
        self.start()
        process = whereis(name)
        if process is None:
            raise WorkerNotFound(f"no live process {name!r} in this process's tree")
        return process

    def stop(self, timeout: float | None = None) -> None:
        """Stop this process's tree with reason ``"shutdown"`` (workers close with 1001); no-op if not running."""
        with self._lock:
            tree, self._tree = self._tree, None
        if tree is not None:
            tree.stop("shutdown", timeout)

    def _after_fork(self) -> None:
        # The parent's tree has no threads here (supervisors marks it exited, and its names are
        # free); another thread of the parent may have held the lock at the fork.
        self._lock = threading.Lock()
        self._tree = None
