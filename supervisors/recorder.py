"""The flight recorder: each process's last events in a bounded ring, cheap enough for every frame."""

from __future__ import annotations

import time
from typing import NamedTuple

__all__ = ["DEFAULT_SIZE", "Event", "Recorder", "describe", "new_recorder", "read"]

DEFAULT_SIZE = 20
"""Events a process keeps unless told otherwise."""


class Recorder(list[tuple[float, str, object]]):
    """The last ``size`` events, ``(time.monotonic(), kind, detail)`` tuples, oldest first.

    A list that ``Process.record`` appends to (one C call, atomic under the GIL) and trims back
    to ``size`` once it holds ``limit`` (twice ``size``) with one slice deletion (atomic too: a
    concurrent one finds nothing left to do). 56 bytes while empty and a pointer per event, where
    a ``deque(maxlen=size)`` takes 760 bytes from its creation. Readers take the last ``size``
    (:func:`read`).
    """

    __slots__ = ("size", "limit")

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.limit = 2 * size


class Event(NamedTuple):
    """One recorded event: when (``time.monotonic()``), what kind, and a small detail."""

    time: float
    kind: str
    detail: object


def new_recorder(size: int = DEFAULT_SIZE) -> Recorder:
    """An empty ring keeping the last ``size`` events."""
    if size < 1:
        raise ValueError(f"a flight recorder keeps at least one event, not {size}")
    return Recorder(size)


def read(recorder: Recorder) -> list[Event]:
    """The events in ``recorder``, oldest first; safe while its process keeps recording."""
    return [Event(*event) for event in recorder[-recorder.size :]]  # the slice copies atomically


def describe(events: list[Event], now: float | None = None) -> str:
    """One line per event, its age in seconds first: for reports."""
    end = time.monotonic() if now is None else now
    return "\n".join(f"  -{end - event.time:.3f}s {event.kind} {event.detail!r}" for event in events)
