"""The flight recorder: each process's last events in a bounded ring, cheap enough for every frame."""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

__all__ = ["DEFAULT_SIZE", "Event", "Recorder", "describe", "new_recorder", "read"]

DEFAULT_SIZE = 20
"""Events a process keeps unless told otherwise."""

Recorder = deque[tuple[float, str, object]]
"""A ring of ``(time.monotonic(), kind, detail)`` tuples; ``append`` is the whole recording cost."""


class Event(NamedTuple):
    """One recorded event: when (``time.monotonic()``), what kind, and a small detail."""

    time: float
    kind: str
    detail: object


def new_recorder(size: int = DEFAULT_SIZE) -> Recorder:
    """An empty ring keeping the last ``size`` events."""
    if size < 1:
        raise ValueError(f"a flight recorder keeps at least one event, not {size}")
    return deque(maxlen=size)


def read(recorder: Recorder) -> list[Event]:
    """The events in ``recorder``, oldest first; safe while its process keeps recording."""
    while True:
        try:
            return [Event(*event) for event in tuple(recorder)]
        except RuntimeError:  # appended to while copied (only without the GIL)
            continue


def describe(events: list[Event], now: float | None = None) -> str:
    """One line per event, its age in seconds first: for reports."""
    end = time.monotonic() if now is None else now
    return "\n".join(f"  -{end - event.time:.3f}s {event.kind} {event.detail!r}" for event in events)
