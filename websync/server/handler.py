"""The callbacks of a server connection: :class:`ServerHandler` (the WebSock behaviour), and
:class:`Reject`, which refuses an upgrade."""

from __future__ import annotations

from typing import Any

from ..core.frames import Binary, Close, Ping, Pong, Text
from ..core.headers import HeadersLike
from ..core.server_handshake import Request
from ..worker.handler import Reply
from ..worker.worker import Worker

__all__ = ["Reject", "ServerHandler"]


class Reject(Exception):
    """Refuse the upgrade with an HTTP ``status`` (e.g. 403), ``body`` and extra ``headers``.

    ``ServerHandler.init`` raises it or returns it; the client gets the response and the
    connection closes without ever opening. ``Content-Length`` and ``Connection: close`` are added.
    """

    def __init__(self, status: int, body: bytes = b"", headers: HeadersLike | None = None) -> None:
        if not 300 <= status <= 599:
            raise ValueError(f"a rejection needs a 3xx, 4xx or 5xx status, not {status}")
        super().__init__(f"upgrade rejected with HTTP status {status}")
        self.status = status
        self.body = body
        self.headers = headers


class ServerHandler:
    """The callbacks of one server connection (the WebSock behaviour); one instance per connection.

    Every callback but ``init`` and ``terminate`` may return ``None``, a frame, a list of frames
    (sent in order) or :class:`~websync.Stop` (close with 1000; ``Stop("shutdown")`` with 1001).
    Return ``Close(code, reason)`` to close with another code. Callbacks run in the connection's
    own thread, one at a time, so the handler's state needs no lock.

    Before ``init``, the server sets:

    - ``worker``: the connection's :class:`~websync.Worker`. Other threads push to the client with
      ``worker.send(message)`` and reach ``handle_info`` with ``worker.send_info(message)``.
    - ``remote_address``: the client's address, as ``socket.accept`` gives it.
    - ``subprotocol``: the negotiated subprotocol, or None.
    """

    worker: Worker | None = None
    remote_address: Any = None
    subprotocol: str | None = None

    def init(self, request: Request) -> Reply | Reject:
        """The client asked for the upgrade (``request.path``, ``request.headers``).

        Raise or return :class:`Reject` to refuse it with an HTTP status; otherwise the 101 is sent
        and what ``init`` returns (frames, or Stop) is carried out on the open connection.
        """
        return None

    def handle_in(self, frame: Text | Binary) -> Reply:
        """A whole message arrived (fragments are joined, compression undone).

        Messages that arrive after the server sent its close frame (a stop, a drain's 1001) are
        not handed over: no answer could reach the client any more.
        """
        return None

    def handle_info(self, message: Any) -> Reply:
        """A message from another thread, sent with ``self.worker.send_info(message)``.

        When the server drains (:meth:`Server.drain`), ``message`` is a :class:`Draining` value:
        the connection is closed with 1001 once its ``timeout`` is over, unless it ends first.
        """
        return None

    def handle_control(self, frame: Ping | Pong | Close) -> Reply:
        """A control frame arrived; the default answers a ping with its pong.

        A close frame is answered by the protocol itself; the connection ends after it.
        """
        return Pong(frame.data) if isinstance(frame, Ping) else None

    def handle_error(self, error: Exception) -> Reply:
        """A callback raised ``error``; the default re-raises, ending the connection (let it crash)."""
        raise error

    def terminate(self, reason: object) -> None:
        """Called once the connection is over, if ``init`` accepted it.

        ``reason`` is the :class:`~websync.ConnectionClosed` error when the client closed or the
        connection was lost (with ``code`` and ``reason``), ``"shutdown"`` when the server stops,
        the reason of a :class:`~websync.Stop` the handler returned, or the exception that
        crashed a callback.
        """
