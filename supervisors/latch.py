"""A one-shot event in one lock: what a process needs to wait for its exit, at a tenth of the memory."""

from __future__ import annotations

import threading

__all__ = ["Latch"]

_SETTING = threading.Lock()
"""Serialises ``Latch.set`` (once in a latch's life: never contended in practice)."""


class Latch:
    """Set once, never cleared; any number of threads wait for it (``threading.Event``'s
    ``set``, ``is_set`` and ``wait``, with the same results and timeouts).

    An Event holds a Condition: a lock, two bound methods, a dict each and a 760-byte deque
    for its waiters, about 1.2 KiB. A latch is one lock held from its creation: ``set``
    releases it, and each waiter takes it and hands it on (``acquire`` then ``release``).
    A thousand processes each wait for their exit: the difference is a megabyte.
    """

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._set = False
        self._lock = threading.Lock()
        self._lock.acquire()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Set the latch and wake every waiter; no effect once set."""
        with _SETTING:
            if self._set:
                return
            self._set = True
            self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the latch is set, at most ``timeout`` seconds (None: for ever; 0 or less:
        not at all); True once it is set."""
        if self._set:
            return True
        if timeout is not None and timeout <= 0:
            return False
        lock = self._lock
        if lock.acquire(timeout=-1 if timeout is None else timeout):
            lock.release()  # the next waiter's turn
        return self._set
