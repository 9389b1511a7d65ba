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

__all__ = ["Draining", "drain_on_signals", "drain_workers"]

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
    ``hurry`` is set, the rest are asked to stop with 1001; a worker that is still alive after
    its close_timeout on top of that is killed.
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
    for worker in stopping:
        worker.request_stop("shutdown")
    for worker in stopping:
        close_timeout = worker.options.connect.close_timeout
        if not worker.join(None if close_timeout is None else close_timeout + 1):
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
