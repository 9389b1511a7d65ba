"""A supervisor's mailbox: the queue that serialises exit notifications and calls."""

from __future__ import annotations

import queue
import threading

__all__ = ["Mailbox"]


class Mailbox:
    """A thread-safe FIFO queue that can be closed; puts after close are refused.

    It counts the messages put and not yet ``handled()``, so that ``idle`` tells whether a call
    may run now without overtaking one (a message counts until it is handled, not got).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._unhandled = 0

    def put(self, message: object) -> bool:
        """Queue ``message``; False if the mailbox is closed."""
        with self._lock:
            if self._closed:
                return False
            self._unhandled += 1
            self._queue.put(message)
            return True

    def get(self) -> object:
        """Wait for the next message."""
        return self._queue.get()

    def handled(self) -> None:
        """Note that a message got has been handled."""
        with self._lock:
            self._unhandled -= 1

    @property
    def idle(self) -> bool:
        """Open, with every message put handled."""
        return not self._closed and self._unhandled == 0

    def close(self) -> list[object]:
        """Refuse further messages and return those still queued."""
        with self._lock:
            self._closed = True
        left: list[object] = []
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                return left
