"""The callback object a worker drives (WebSockex/Minch style), its return values, and backoff."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.frames import Binary, Close, Frame, Ping, Pong, Text

if TYPE_CHECKING:
    from ..core.handshake import Response
    from ..core.headers import HeadersLike

__all__ = ["Handler", "Reconnect", "Stop", "Reply", "ConnectDetails", "Attempts", "backoff"]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Returned by ``handle_disconnect``: connect again after ``delay`` seconds."""

    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Stop:
    """Returned by any callback: end the worker with ``reason`` (``"normal"`` is a normal exit)."""

    reason: object = "normal"


Reply = None | Frame | list[Frame] | Stop
"""What a ``handle_*`` callback may return: nothing, frames to send in order, or Stop."""

ConnectDetails = str | tuple[str, "HeadersLike"] | tuple[str, "HeadersLike", Mapping[str, Any]]
"""What ``Handler.connect`` returns: a URL, ``(url, headers)`` or ``(url, headers, options)``."""


DEFAULT_JITTER = 0.5
"""The share of each reconnect delay drawn at random by default: delays fall in ``[d/2, d]``."""


def backoff(
    attempt: int, min: float = 0.2, max: float = 30.0, factor: float = 2, jitter: float = DEFAULT_JITTER
) -> float:
    """Seconds to wait before reconnect ``attempt`` (1, 2, ...): ``min * factor**(attempt - 1)``
    capped at ``max``, with jitter.

    The nominal delays with the defaults are 0.2, 0.4, 0.8, 1.6, 3.2, … up to 30 seconds.
    ``jitter`` (0..1) spreads clients that lost the same server over time: the delay is drawn
    uniformly from ``[d * (1 - jitter), d]`` for the nominal delay ``d``, so ``max`` stays the
    longest wait. The default, 0.5, keeps the growth (each delay at least half its nominal
    value) while no two clients retry in step; ``jitter=0`` gives the nominal delays.
    Raises ``ValueError`` for ``jitter`` outside 0..1.
    """
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be between 0 and 1, not {jitter}")
    try:
        delay = float(min * factor ** (attempt - 1))
    except OverflowError:  # a very long outage: the delay is long capped
        delay = max
    if delay > max:  # noqa: PLR1730 - min and max are the parameters here
        delay = max
    if jitter:
        delay *= 1 - random.uniform(0, jitter)
    return delay


class Attempts:
    """Counts the reconnect attempts a worker reports to ``handle_disconnect``: connections that
    failed, or ended within ``stable_after`` seconds of their handshake, in a row.

    A connection that lasted ``stable_after`` seconds or more starts the count again at 1, so a
    server that accepts and then closes at once sees the reconnects spaced by :func:`backoff`.
    Times are ``time.monotonic()`` values.
    """

    def __init__(self, stable_after: float) -> None:
        self.stable_after = stable_after
        self.count = 0
        self._connected_at: float | None = None

    def failed(self) -> int:
        """A connection attempt failed: the attempt number it counts as."""
        self.count += 1
        return self.count

    def connected(self, now: float) -> None:
        """A connection opened (its handshake completed) at ``now``."""
        self._connected_at = now

    def ended(self, now: float) -> int:
        """The connection opened last ended at ``now``: the attempt number it counts as."""
        opened, self._connected_at = self._connected_at, None
        stable = opened is not None and now - opened >= self.stable_after
        self.count = 1 if stable else self.count + 1
        return self.count


class Handler:
    """Base class of a worker's callbacks; override what you need. The handler holds your state.

    Every ``handle_*`` may return ``None``, a frame, a list of frames (sent in order) or
    :class:`Stop`.
    """

    url: str | None = None
    """The URL the default :meth:`connect` returns."""

    stable_after: float = 10.0
    """Seconds a connection must last to count as stable: one that ends sooner counts as a failed
    attempt, so ``handle_disconnect``'s ``attempt`` (and its backoff) keeps growing."""

    def connect(self) -> ConnectDetails:
        """The connection details, asked before every (re)connect so they can change."""
        if self.url is None:
            raise NotImplementedError("set Handler.url or override Handler.connect()")
        return self.url

    def handle_connect(self, response: Response) -> Reply:
        """The handshake succeeded; ``response`` has ``status`` and ``headers``."""
        return None

    def handle_frame(self, frame: Text | Binary) -> Reply:
        """A whole data message arrived."""
        return None

    def handle_ping(self, frame: Ping) -> Reply:
        """A ping arrived; the default answers it with the matching pong."""
        return Pong(frame.data)

    def handle_pong(self, frame: Pong) -> Reply:
        """A pong arrived."""
        return None

    def handle_close(self, frame: Close) -> Reply:
        """The peer started or answered the close handshake."""
        return None

    def handle_info(self, message: Any) -> Reply:
        """A message sent to the worker with ``worker.send_info``."""
        return None

    def handle_disconnect(self, reason: Exception, attempt: int) -> Reconnect | Stop:
        """The connection was lost or a connection attempt failed.

        ``reason`` is a :class:`~websync.ConnectionClosed` (with the close code) or the error that
        failed the attempt. ``attempt`` counts, from 1, the attempts in a row that failed or whose
        connection ended within :attr:`stable_after` seconds. Default: reconnect after
        :func:`backoff` of ``attempt`` (jittered).
        """
        return Reconnect(backoff(attempt))

    def handle_error(self, error: Exception) -> Reply:
        """One of this handler's callbacks raised ``error``; the default re-raises (let it crash)."""
        raise error

    def terminate(self, reason: object) -> None:
        """Called once when the worker is about to exit, whatever the reason."""
