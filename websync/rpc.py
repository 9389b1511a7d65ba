"""Request/reply over a long-lived worker: many threads send through one connection and each waits
for the answer that carries its own correlation key.

The handler says how to find the key in an incoming frame (:meth:`Correlated.correlate`); the
caller says which key its request expects (:func:`request`). Answers are routed in the worker's
thread to the one waiting caller, so concurrent requests never get each other's answers::

    class Api(websync.Correlated):
        url = "wss://api.example.org/"

        def correlate(self, frame):
            return json.loads(frame.data).get("id")

    tree = Supervisor([websync.child_spec(Api, id="api", name="api")]).start()
    answer = websync.request("api", json.dumps({"id": 7, "op": "quote"}), key=7, timeout=5)
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Self

from supervisors import whereis

from .core.errors import ConnectionClosed, WebSocketError, closed_error
from .core.frames import Binary, CloseCode, Frame, Text
from .worker.handler import Handler, Reconnect, Reply, Stop
from .worker.worker import Worker

if TYPE_CHECKING:
    from .core.handshake import Response

__all__ = ["Correlated", "WorkerNotFound", "request"]


class WorkerNotFound(WebSocketError, LookupError):
    """No live worker is registered under the name given to :func:`request` (yet, or any more)."""


class _Pending:
    """The requests waiting for an answer, by key; shared by the callers and the worker's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[Hashable, Future[str | bytes]] = {}
        self._closed: BaseException | None = None

    def add(self, key: Hashable) -> Future[str | bytes]:
        """Wait for ``key``; raises the final error once the worker has exited (see ``fail_all``)."""
        future: Future[str | bytes] = Future()
        with self._lock:
            if self._closed is not None:
                raise self._closed
            if key in self._waiting:
                raise ValueError(f"a request with key {key!r} is already waiting for its answer")
            self._waiting[key] = future
        return future

    def discard(self, key: Hashable, future: Future[str | bytes]) -> None:
        with self._lock:
            if self._waiting.get(key) is future:
                del self._waiting[key]

    def resolve(self, key: Hashable, data: str | bytes) -> bool:
        """Hand ``data`` to the request waiting for ``key``; False if none is."""
        with self._lock:
            future = self._waiting.pop(key, None)
        if future is None:
            return False
        future.set_result(data)
        return True

    def fail_all(self, error: BaseException, *, final: bool = False) -> None:
        """Fail every waiting request with ``error``; ``final``: and every later one."""
        with self._lock:
            futures, self._waiting = list(self._waiting.values()), {}
            if final:
                self._closed = error
        for future in futures:
            future.set_exception(error)


class Correlated(Handler):
    """A handler whose worker answers :func:`request` calls: override :meth:`correlate`.

    A data frame whose key a request is waiting for goes to that request; every other data frame
    goes to :meth:`handle_unmatched` (the push messages of a feed, or an answer that came after
    its request timed out). When an established connection is lost, or the worker exits, waiting
    requests fail with :class:`~websync.ConnectionClosed`: the server may or may not have
    acted on them. Subclasses that override ``handle_connect``, ``handle_disconnect`` or
    ``terminate`` call ``super()``.
    """

    _pending: _Pending
    _connected: bool

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Set here rather than in __init__, so that subclasses need not call super().__init__().
        self = super().__new__(cls)
        self._pending = _Pending()
        self._connected = False
        return self

    def correlate(self, frame: Text | Binary) -> Hashable | None:
        """The correlation key an incoming data frame carries, or None if it answers no request."""
        raise NotImplementedError("Correlated handlers override correlate()")

    def handle_unmatched(self, frame: Text | Binary) -> Reply:
        """A data frame that answers no waiting request."""
        return None

    def handle_frame(self, frame: Text | Binary) -> Reply:
        key = self.correlate(frame)
        if key is not None and self._pending.resolve(key, frame.data):
            return None
        return self.handle_unmatched(frame)

    def handle_connect(self, response: Response) -> Reply:
        self._connected = True
        return super().handle_connect(response)

    def handle_disconnect(self, reason: Exception, attempt: int) -> Reconnect | Stop:
        if self._connected:
            self._connected = False
            self._pending.fail_all(_as_closed(reason))
        return super().handle_disconnect(reason, attempt)

    def terminate(self, reason: object) -> None:
        self._pending.fail_all(closed_error(CloseCode.GOING_AWAY, f"the worker exited: {reason!r}"), final=True)
        super().terminate(reason)


def _as_closed(reason: Exception) -> ConnectionClosed:
    if isinstance(reason, ConnectionClosed):
        return reason
    return closed_error(CloseCode.ABNORMAL, f"connection lost: {reason}")


def request(worker: Worker | str, message: str | bytes | Frame, *, key: Hashable, timeout: float | None) -> str | bytes:
    """Send ``message`` through ``worker`` (or the worker registered under that name) and return the
    data of the answer whose :meth:`Correlated.correlate` key is ``key``.

    Thread-safe; the message is queued like ``worker.send`` (and waits for a reconnect if the
    connection is down). Raises ``TimeoutError`` when no answer comes within ``timeout`` seconds
    (None: wait until the connection is lost), :class:`~websync.ConnectionClosed` when the
    connection is lost or the worker exits first, :class:`WorkerNotFound` for a name with no live
    worker, ``ValueError`` when a request with the same key is already waiting, and ``TypeError``
    when the worker's handler is not :class:`Correlated`.
    """
    target = whereis(worker) if isinstance(worker, str) else worker
    if not isinstance(target, Worker) or not target.is_alive():
        raise WorkerNotFound(f"no live websync worker {worker!r}")
    handler = target.handler
    if not isinstance(handler, Correlated):
        raise TypeError(f"the handler of {target!r} is {type(handler).__name__}, not a Correlated handler")
    pending = handler._pending
    future = pending.add(key)
    try:
        target.send(message)
        return future.result(timeout)
    finally:
        pending.discard(key, future)
