"""Graceful drain: stop taking connections, tell the open ones, give them time, then close the rest.

Each open connection's handler gets a :class:`Draining` value in ``handle_info`` at the start of
the drain; connections still open ``timeout`` seconds later are closed with 1001 (going away).
:func:`drain_on_signals` runs a drain when the process gets SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from ..worker.worker import Worker

__all__ = ["Draining", "close_all", "drain_on_signals", "drain_workers"]

logger = logging.getLogger("websync.server")

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Draining:
    """What ``ServerHandler.handle_info`` gets when the server drains.

    ``timeout`` is how many seconds the connection may still run (None: until it ends) before the
    server closes it with 1001; ``deadline`` is that moment on ``time.monotonic()``'s clock. A
    handler may tell its client to reconnect elsewhere, finish its work, or close at once.
    """

    timeout: float | None
    deadline: float | None


def drain_workers(
    workers: Callable[[], Sequence[Worker]],
    timeout: float | None,
    *,
    opened: Callable[[Worker], bool],
    hurry: threading.Event | None = None,
) -> None:
    """Drain the connections ``workers()`` lists; returns when all are gone.

    Open ones (``opened(worker)``) get :class:`Draining` and ``timeout`` seconds to end; those
    still in their opening handshake are stopped at once (the client sees the TCP connection
    close before any answer, as from a server that went away). Past the timeout, or once
    ``hurry`` is set, the rest are closed by :func:`close_all`.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    message = Draining(timeout, deadline)
    for worker in workers():
        if opened(worker):
            worker.send_info(message)
        else:
            worker.request_stop("shutdown")
    while remaining := [worker for worker in workers() if worker.is_alive()]:
        left = None if deadline is None else deadline - time.monotonic()
        if (left is not None and left <= 0) or (hurry is not None and hurry.is_set()):
            break
        wait = 0.05 if left is None else min(left, 0.05)
        if hurry is not None:
            hurry.wait(wait)
        else:
            remaining[0].join(wait)
    stopping = [worker for worker in workers() if worker.is_alive()]
    if stopping:
        logger.info("drain: closing %d connection(s) still open with 1001", len(stopping))
    close_all(stopping, None)


def close_all(workers: Sequence[Worker], timeout: float | None) -> None:
    """Ask every worker to close with 1001 (going away) at once, wait up to ``timeout`` seconds in
    all for them to end, and kill those still alive then. ``timeout`` None: the longest
    close_timeout among them and one second to end, or no limit if one has none; a callback that
    never returns cannot hold the stop up past it."""
    for worker in workers:
        worker.request_stop("shutdown")
    if timeout is None:
        bounds = [worker.options.connect.close_timeout for worker in workers]
        if None not in bounds:
            timeout = max((bound for bound in bounds if bound is not None), default=0.0) + 1
    deadline = None if timeout is None else time.monotonic() + timeout
    for worker in workers:
        if not worker.join(None if deadline is None else max(deadline - time.monotonic(), 0)):
            worker.kill()


def drain_on_signals(drain: Callable[[], None], hurry: Callable[[], None]) -> None:
    """Run ``drain()`` in a thread of its own on the first SIGTERM or SIGINT; a second one calls
    ``hurry()`` (close what is left now). Call from the main thread (``ValueError`` otherwise, as
    for :func:`signal.signal`)."""
    started = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if started.is_set():
            logger.info("%s again: closing the remaining connections now", signal.Signals(signum).name)
            hurry()
            return
        started.set()
        logger.info("%s: draining", signal.Signals(signum).name)
        threading.Thread(target=drain, name="websync-drain").start()

    for signum in DRAIN_SIGNALS:
        signal.signal(signum, on_signal)
