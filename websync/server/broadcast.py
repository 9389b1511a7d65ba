"""Broadcast: one message queued to many connections, never waiting for any of them.

Each connection's worker has its own outgoing queue, bounded by ``max_queue``; what happens to a
slow connection past it is its ``overflow`` policy ("drop_oldest", "drop_newest", or "close"
with 1008). The frame is encoded by each connection (compression is per connection).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from ..core.frames import Frame, as_frame
from ..worker.outbox import QueueFull
from ..worker.worker import Worker

__all__ = ["broadcast"]

logger = logging.getLogger("websync.server")


def broadcast(
    workers: Iterable[Worker],
    message: str | bytes | bytearray | memoryview | Frame,
    exclude: Worker | Collection[Worker] | None = None,
) -> int:
    """Queue ``message`` to every worker of ``workers`` but ``exclude``; the number it was queued to.

    Never blocks: a worker whose queue is full follows its ``overflow`` policy (with "error", the
    message is skipped for it and counted in its statistics' ``dropped``). ``TypeError`` for a
    message that is not ``str``, bytes-like or a frame.
    """
    frame = as_frame(message)
    excluded = () if exclude is None else (exclude,) if isinstance(exclude, Worker) else exclude
    queued = 0
    for worker in workers:
        if worker in excluded:
            continue
        try:
            worker.send(frame)
        except QueueFull:
            worker.stats.dropped += 1
            continue
        queued += 1
    return queued
