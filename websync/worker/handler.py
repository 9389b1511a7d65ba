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

__all__ = ["Handler", "Reconnect", "Stop", "Reply", "ConnectDetails", "backoff"]


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


def backoff(attempt: int, min: float = 0.2, max: float = 30.0, factor: float = 2, jitter: float = 0.0) -> float:
    """Seconds to wait before reconnect ``attempt`` (1, 2, ...): ``min * attempt**factor`` capped at ``max``.

    With the defaults, attempts 1..4 give 0.2, 0.8, 1.8 and 3.2 seconds. ``jitter`` (0..1) spreads
    reconnect storms: the delay is drawn uniformly from ``[delay * (1 - jitter), delay]``.
    """
    delay: float = min * attempt**factor
    if delay > max:  # noqa: PLR1730 - min and max are the parameters here
        delay = max
    if jitter:
        delay *= 1 - random.uniform(0, jitter)
    return delay


class Handler:
    """Base class of a worker's callbacks; override what you need. The handler holds your state.

    Every ``handle_*`` may return ``None``, a frame, a list of frames (sent in order) or
    :class:`Stop`.
    """

    url: str | None = None
    """The URL the default :meth:`connect` returns."""

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
        """The connection was lost or a connection attempt failed (``attempt`` counts failures in a row).

        ``reason`` is a :class:`~websync.ConnectionClosed` (with the close code) or the error that
        failed the attempt. Default: reconnect after
        :func:`backoff` of ``attempt``.
        """
        return Reconnect(backoff(attempt))

    def handle_error(self, error: Exception) -> Reply:
        """One of this handler's callbacks raised ``error``; the default re-raises (let it crash)."""
        raise error

    def terminate(self, reason: object) -> None:
        """Called once when the worker is about to exit, whatever the reason."""
