"""The counters of one connection or worker, as ``websync.statistics()`` reports them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Statistics"]


@dataclass
class Statistics:
    """Counters of one worker or connection, as ``websync.statistics()`` reports them."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    reconnects: int = 0
    dropped: int = 0
    """Frames given to ``Worker.send`` that never went out: dropped by ``overflow``, or still
    queued when the worker exited (logged at WARNING with their count)."""
    connected_since: float | None = None
    """``time.time()`` of the current connection's handshake, None while disconnected."""

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)
