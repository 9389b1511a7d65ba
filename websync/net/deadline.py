"""Deadlines: the one helper for "at most this long" across several waits."""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class Deadline:
    """A point on the ``time.monotonic()`` clock, ``timeout`` seconds after its creation (None: none).

    Every bounded wait that spans several calls (an opening handshake, a close, a drain, a send)
    asks it for the time left instead of doing the arithmetic inline.
    """

    __slots__ = ("at",)

    def __init__(self, timeout: float | None) -> None:
        self.at = None if timeout is None else time.monotonic() + timeout

    def remaining(self, minimum: float = 0.0) -> float | None:
        """Seconds left, never below ``minimum`` (a socket timeout needs more than 0); None: no deadline."""
        return None if self.at is None else max(self.at - time.monotonic(), minimum)

    def expired(self) -> bool:
        """Whether the deadline has passed (never, without one)."""
        return self.at is not None and time.monotonic() >= self.at

    def left(self, expired: type[Exception] = TimeoutError, message: str = "timed out") -> float | None:
        """Seconds left, raising ``expired(message)`` once none are; None: no deadline."""
        if self.at is None:
            return None
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise expired(message)
        return remaining
