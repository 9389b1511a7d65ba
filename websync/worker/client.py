"""``connect()``: the blocking connection for scripts, served by a worker thread like every other."""

from __future__ import annotations

import errno
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from supervisors import StartError

from ..core.errors import ConnectionClosed, ConnectionClosedOK, TransportError
from ..core.frames import Binary, Close, Frame, Outgoing, Ping, Pong, Text, close_payload
from ..core.handshake import Response
from ..core.headers import Headers
from ..core.uri import without_credentials
from ..net.connection import Connection
from ..net.tracing import Tracer
from .handler import Handler, Reply, Stop
from .opening import open_connection
from .options import WorkerOptions
from .worker import Lost, Worker

__all__ = ["DEFAULT_MAX_UNREAD", "ClientConnection", "connect"]

DEFAULT_MAX_UNREAD = 16
"""Messages a blocking client keeps unread before it stops reading the socket (``max_unread``)."""


class _Inbox(Handler):
    """The worker-side handler of a blocking connection: answers pings, wakes ``ping()``'s
    waiters; its ``frames`` are where ``recv`` takes every frame (see ``_ClientWorker.handle_read``)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.frames: queue.SimpleQueue[Frame | ConnectionClosed | _Violation] = queue.SimpleQueue()
        self.pong_waiters: dict[bytes, deque[threading.Event]] = {}
        self.lock = threading.Lock()

    def handle_pong(self, frame: Pong) -> Reply:
        with self.lock:
            waiters = self.pong_waiters.get(frame.data)
            waiter = waiters.popleft() if waiters else None
            if waiters is not None and not waiters:
                del self.pong_waiters[frame.data]
        if waiter is not None:
            waiter.set()
        return None

    def handle_disconnect(self, reason: Exception, attempt: int) -> Stop:
        return Stop("normal")  # the caller learns the close code from recv()/send()

    def terminate(self, reason: object) -> None:
        self.frames.put(self.connection.closed_exception())


class _Violation:
    """The place in the inbox where a protocol violation stopped the frames (see ``_ClientWorker``)."""


_VIOLATION = _Violation()
_MESSAGE_TYPES = frozenset({Text, Binary})
_FRAME_TYPES = frozenset({Text, Binary, Ping, Pong, Close})


class _ClientWorker(Worker):
    """A blocking connection's worker. After a protocol violation, the failing close waits until
    ``recv`` reaches the violation in the inbox: the messages before it can still be answered.

    ``max_unread`` bounds the inbox: once a read that brought messages leaves that many frames
    unread, the worker stops reading the socket (``reading_paused``) until ``recv`` has taken it
    down to a quarter. Pings, pongs and closes alone never pause the reads, and past the bound
    they are answered but not kept: a caller that only sends collects the pongs of the worker's
    keepalive pings unread, and the reads must go on to see the next pong.
    """

    def __init__(self, handler: _Inbox, connection: Connection, options: WorkerOptions, max_unread: int | None) -> None:
        super().__init__(handler, connection=connection, options=options)
        self._inbox_frames = handler.frames
        self._max_unread = math.inf if max_unread is None else max_unread
        self._resume_at = 0 if max_unread is None else max_unread // 4

    def _hold_failure(self) -> bool:
        """The failing close waits until ``recv`` reaches the violation's mark in the inbox: the
        application can still answer the messages before it."""
        self._inbox_frames.put(_VIOLATION)
        return True

    def handle_read(self, connection: Connection, frames: list[Frame]) -> None:
        """Put every frame a read produced in the inbox, in order, in the thread that read it
        (``recv``'s or the worker's, holding the socket's reads): the one way from the socket to
        ``recv``. A ping, pong or close goes on to the handler too, which answers it."""
        inbox = self._inbox_frames
        if self.reading_paused and connection.protocol.close_sent is not None:
            frames = self._past_the_bound(frames)
        messages = False
        for frame in frames:
            if type(frame) in _MESSAGE_TYPES:
                inbox.put(frame)
                messages = True
                continue
            if inbox.qsize() < self._max_unread:
                inbox.put(frame)
            self._answer(connection, frame)
        if messages and inbox.qsize() >= self._max_unread:
            self.reading_paused = True

    _dispatch = handle_read  # the worker's own reads take the same way

    def _past_the_bound(self, frames: list[Frame]) -> list[Frame]:
        """A close reads on through paused reads (see ``Worker._wait_and_read``): the messages it
        meets past ``max_unread`` are dropped (traced), or a peer still sending would grow the
        inbox until close_timeout. Control frames go on."""
        kept = [frame for frame in frames if type(frame) not in _MESSAGE_TYPES]
        if len(kept) < len(frames):
            self.tracer.event("closing: %d message(s) past max_unread dropped", len(frames) - len(kept))
        return kept

    def _answer(self, connection: Connection, frame: Frame) -> None:
        """The handler's answer to a control frame, written now if the socket takes it, else by
        the worker at its next turn (which also sees a connection that ended meanwhile)."""
        try:
            super()._dispatch(connection, [frame])
        except Lost:
            pass
        if connection.has_output or connection.eof:
            self.wake()

    def frame_taken(self) -> None:
        """After ``recv`` took a frame from the inbox while reads are paused: resume them once it
        is down to a quarter. A race may leave reads paused over a small inbox; ``recv`` then
        takes it to empty and reads the socket itself, which pauses again if needed."""
        if self._inbox_frames.qsize() <= self._resume_at:
            self.reading_paused = False
            self.wake()


class ClientConnection:
    """A WebSocket opened by :func:`connect`. Thread-safe; a context manager; iterable."""

    def __init__(self, connection: Connection, options: WorkerOptions, max_unread: int | None) -> None:
        self._connection = connection
        self._inbox = _Inbox(connection)
        self._closed: ConnectionClosed | None = None
        close_timeout = options.connect.close_timeout
        self._join_timeout = None if close_timeout is None else 2 * close_timeout + 1
        self._worker = _ClientWorker(self._inbox, connection, options, max_unread).start()

    # -- handshake results ----------------------------------------------------------------------

    @property
    def response(self) -> Response:
        """The server's handshake response."""
        return self._connection.response

    @property
    def status(self) -> int:
        return self._connection.response.status

    @property
    def headers(self) -> Headers:
        """The handshake response's headers."""
        return self._connection.response.headers

    @property
    def subprotocol(self) -> str | None:
        return self._connection.subprotocol

    @property
    def extensions(self) -> list[str]:
        """Names of the negotiated extensions, e.g. ``["permessage-deflate"]``."""
        return self._connection.extensions

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed (1006 if it was lost), else None."""
        end = self._end()
        return None if end is None else end.code

    @property
    def close_reason(self) -> str | None:
        end = self._end()
        return None if end is None else end.reason

    def _end(self) -> ConnectionClosed | None:
        """How the connection ended, once it has: seen by ``recv`` or ``close``, or its worker gone."""
        if self._closed is None and not self._worker.is_alive():
            self._closed = self._connection.closed_exception()
        return self._closed

    @property
    def worker(self) -> Worker:
        """The worker thread serving this connection (for ``websync.trace`` and ``statistics``)."""
        return self._worker

    # -- traffic --------------------------------------------------------------------------------

    def send(self, message: Outgoing, *, fragment_size: int | None = None) -> None:
        """Send ``str`` as text, bytes-like as binary, or a frame value; split into ``fragment_size`` pieces."""
        try:
            self._connection.send(message, fragment_size=fragment_size)
        except ConnectionClosed:
            closed = self._connection.closed_exception()
            raise closed from closed.__cause__

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next message; ``TimeoutError`` after ``timeout`` seconds (the connection stays usable)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            frame = self._next_frame(timeout, deadline)
            if type(frame) is Binary or type(frame) is Text:
                return frame.data

    def recv_frame(self, timeout: float | None = None) -> Frame:
        """The next frame, control frames included; ``TimeoutError`` after ``timeout`` seconds."""
        return self._next_frame(timeout, None if timeout is None else time.monotonic() + timeout)

    def _next_frame(self, timeout: float | None, deadline: float | None) -> Frame:
        """The next frame, waiting until ``deadline`` (a ``time.monotonic()`` value, None: forever);
        ``timeout`` is the caller's, for the ``TimeoutError`` message.

        A frame travels one way: the thread that reads the socket hands what it read to the
        worker's ``handle_read``, which answers what needs an answer and puts every frame in the
        inbox, where this method takes it. The caller reads the socket itself while the worker
        stands by (the common case has no thread hand-off), unless the worker holds the socket or
        the connection is closing: the worker then finishes the close handshake and reports the
        end through the inbox.
        """
        frames = self._inbox.frames
        connection = self._connection
        protocol = connection.protocol
        read_lock = connection.read_lock
        while True:
            if not frames.empty():
                item = frames.get_nowait()
            elif self._closed is not None:
                raise self._closed
            elif not protocol.closing and read_lock.acquire(False):
                try:
                    if frames.empty():  # else the worker put frames there before this thread came
                        if deadline is not None and not connection.wait_readable(max(deadline - time.monotonic(), 0)):
                            raise TimeoutError(f"no message within {timeout} seconds")
                        self._worker.handle_read(connection, connection.receive(block=deadline is None))
                finally:
                    read_lock.release()
                if protocol.closing or connection.eof:
                    self._worker.wake()
                continue
            else:
                try:
                    item = frames.get(timeout=None if deadline is None else max(deadline - time.monotonic(), 0))
                except queue.Empty:
                    raise TimeoutError(f"no message within {timeout} seconds") from None
            if self._worker.reading_paused:
                self._worker.frame_taken()
            if type(item) in _FRAME_TYPES:
                return item  # type: ignore[return-value]
            self._take_mark(item)  # type: ignore[arg-type]

    def _take_mark(self, item: ConnectionClosed | _Violation) -> None:
        """Act on an inbox entry that is not a frame: raise once closed; at the violation mark,
        every message before it was read (and perhaps answered): fail the connection now."""
        if isinstance(item, ConnectionClosed):
            self._closed = item
            self._inbox.frames.put(item)  # for every other thread waiting in recv(): the end is theirs too
            raise item
        self._connection.fail()
        try:
            self._connection.flush(wait=0)  # never blocks a recv(timeout=...): the worker writes the rest
        except ConnectionClosed:
            pass  # the transport is gone: the worker reports the end
        self._worker.wake()

    def __iter__(self) -> Iterator[str | bytes]:
        """Messages until the peer closes normally (an abnormal close raises)."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def ping(self, data: bytes = b"") -> threading.Event:
        """Send a ping; the returned event is set when the matching pong arrives."""
        waiter = threading.Event()
        with self._inbox.lock:
            self._inbox.pong_waiters.setdefault(bytes(data), deque()).append(waiter)
        self.send(Ping(data))
        return waiter

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the handshake with ``code`` and ``reason``, bounded by close_timeout; idempotent.

        Raises ``ValueError`` (and leaves the connection open) for a code that may not be sent
        or a reason longer than 123 bytes.
        """
        close_payload(code, reason)
        self._worker.close(code, reason)
        if not self._worker.join(self._join_timeout) and self._worker.is_alive():
            self._worker.kill()  # blocked writing to a peer that does not read: shut the socket down
            self._worker.join(1)
        self._closed = self._connection.closed_exception()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def connect(url: str, **options: Any) -> ClientConnection:
    """Open a WebSocket and return a blocking :class:`ClientConnection`.

    Options: ``headers``, ``subprotocols``, ``origin``, ``compression`` ("deflate" or None),
    ``open_timeout``, ``close_timeout``, ``max_size`` (None: unlimited), ``ssl`` (an
    ``ssl.SSLContext``), ``server_hostname``, ``follow_redirects``, ``max_redirects``, ``trace``,
    ``ping_interval``, ``ping_timeout``, ``proxy`` (a URL, None for none; default: the
    environment's), ``proxy_ssl``, ``record_frames`` (keep frames in the worker's flight recorder), ``max_unread``
    (messages kept unread before the socket's reads pause, default 16; None: no bound). Raises :class:`~websync.core.errors.InvalidHandshake`
    subclasses and :class:`~websync.core.errors.TransportError` when the connection cannot open
    (errno ``EAGAIN`` when no thread can be started for its worker: the socket is closed then).
    """
    max_unread = options.pop("max_unread", DEFAULT_MAX_UNREAD)
    worker_options = WorkerOptions.from_keywords(options, allowed=frozenset({"record_frames"}))
    tracer = Tracer(f"client {without_credentials(url)}", enabled=worker_options.connect.trace)
    connection = open_connection(url, worker_options.connect, tracer)
    try:
        return ClientConnection(connection, worker_options, max_unread)
    except BaseException as exc:
        connection.close_transport()
        if isinstance(exc, StartError):
            raise TransportError(errno.EAGAIN, f"no thread for the connection's worker: {exc.reason}") from exc
        raise
