"""A worker's outbox: the frames it was given to send and could not send yet, bounded by
``max_queue`` with an ``overflow`` policy."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

from ..core.errors import WebSocketError
from ..core.frames import Close, Frame
from ..net.statistics import Statistics
from .options import Overflow

__all__ = ["Outbox", "QueueFull"]


class QueueFull(WebSocketError):
    """A worker's queue of frames waiting for a connection is full (``max_queue``)."""


class Outbox:
    """Frames waiting to go out, oldest first; thread-safe.

    Any thread puts frames in; one thread at a time takes them out in order (:meth:`send_queued`).
    Frames dropped by the ``overflow`` policy are counted in ``stats.dropped``. ``frames`` may be
    read without the lock for a quick look (its truthiness: whether anything waits); it changes
    only through these methods, and is None until the first frame (an empty deque is 760 bytes,
    and most of a thousand idle workers never queue one).
    """

    def __init__(self, max_queue: int | None, overflow: Overflow, stats: Statistics) -> None:
        self.frames: deque[Frame] | None = None
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._max_queue = max_queue
        self._overflow = overflow
        self._stats = stats
        self.overflowed = False
        """Whether the queue overflowed with ``overflow="close"``: every later frame is dropped."""

    def __len__(self) -> int:
        frames = self.frames
        return 0 if frames is None else len(frames)

    def put(self, frame: Frame) -> bool:
        """Queue ``frame`` behind the others. Past ``max_queue`` the policy applies: raise
        :class:`QueueFull` (``"error"``), drop the oldest frame or this one, or (``"close"``) drop
        the queue and this frame and return False, once: the caller then closes with 1008."""
        with self._lock:
            if self.overflowed:
                self._stats.dropped += 1
                return True
            frames, max_queue = self.frames, self._max_queue
            if frames is None:
                frames = self.frames = deque()
            if max_queue is not None and len(frames) >= max_queue:
                if self._overflow == "error":
                    raise QueueFull(f"{max_queue} frames are already queued")
                if self._overflow == "close":
                    self.overflowed = True
                    self._stats.dropped += len(frames) + 1
                    frames.clear()
                    return False
                self._stats.dropped += 1
                if self._overflow == "drop_newest":
                    return True
                frames.popleft()
            frames.append(frame)
        return True

    def put_all(self, frames: Iterable[Frame], *, first: bool = False) -> None:
        """Queue ``frames`` in order, behind the others or (``first``) before them; never bounded:
        these are a handler's replies, not an application's sends."""
        with self._lock:
            queued = self.frames
            if queued is None:
                queued = self.frames = deque()
            if first:
                queued.extendleft(reversed(list(frames)))
            else:
                queued.extend(frames)

    def send_queued(self, send: Callable[[Frame], bool]) -> None:
        """Hand the queued frames in order to ``send`` until it declines one (returns False), which
        stays first. One thread at a time: another thread sending already makes this return."""
        if not self.frames or not self._sending.acquire(False):
            return
        try:
            while True:
                with self._lock:
                    queued = self.frames
                    if not queued:
                        return
                    frame = queued[0]
                if not send(frame):
                    return
                with self._lock:
                    queued = self.frames
                    if queued and queued[0] is frame:  # unless dropped meanwhile (drop_oldest, drop_closes, discard)
                        queued.popleft()
        finally:
            self._sending.release()

    def has_close(self) -> bool:
        """Whether a close frame waits."""
        with self._lock:
            return any(type(frame) is Close for frame in self.frames or ())

    def drop_closes(self) -> None:
        """Drop the close frames that wait: each was meant for a connection that is gone."""
        with self._lock:
            if self.frames:
                self.frames = deque(frame for frame in self.frames if type(frame) is not Close)

    def discard(self) -> int:
        """Drop every waiting frame, counted as dropped; return how many there were."""
        with self._lock:
            count = len(self)
            if self.frames:
                self.frames.clear()
        self._stats.dropped += count
        return count
