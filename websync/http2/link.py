"""One HTTP/2 connection on a socket, owned by one thread that multiplexes WebSocket streams.

Each accepted stream is handed to the caller as one end of a ``socket.socketpair()``: websync's
:class:`~websync.net.connection.Connection` and worker use it like a TCP socket, while the link thread
copies bytes between the other end and the stream. The pair's buffers give backpressure both
ways: the link reads from a stream's end only while HTTP/2 flow control lets it send, and it
acknowledges received DATA (which lets the server send more) only as the application's end
takes it.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.errors import InvalidHandshake, OpenTimeout, TransportError
from ..core.handshake import MAX_BODY_BYTES
from ..core.headers import Headers
from ..net.tracing import Tracer
from ..net.transport import WOULD_BLOCK, Waitable, Waker
from .protocol import (
    CANCEL,
    Answered,
    Ended,
    Event,
    GoingAway,
    H2Protocol,
    Pinged,
    Ready,
    Received,
    Reset,
    WindowOpened,
)

__all__ = ["Link", "Answer"]

logger = logging.getLogger("websync")

READ_SIZE = 64 * 1024
PAIR_BUFFER = 256 * 1024
"""Socket buffer size of each stream's socketpair."""
HIGH_WATER = 1 << 20
"""Stop taking stream data while this much is waiting for the network."""
CLOSE_FLUSH_TIMEOUT = 1.0
"""Seconds a closing link may spend writing its last frames (GOAWAY) to a server that does not read."""


@dataclass
class Answer:
    """The server's answer to an extended CONNECT; ``sock`` is the stream's end for a 200."""

    status: int
    headers: Headers
    body: bytes = b""
    sock: socket.socket | None = None


@dataclass(eq=False)
class _Stream:
    """A stream from its CONNECT until the application's end is closed."""

    headers: Sequence[tuple[str, str]]
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stream_id: int = 0
    answer: Answer | None = None
    error: Exception | None = None
    cancelled: bool = False
    refusal: Answered | None = None
    body: bytearray = field(default_factory=bytearray)
    local: socket.socket | None = None
    inbound: deque[memoryview] = field(default_factory=deque)
    peer_ended: bool = False
    reset: bool = False
    shut: bool = False

    @property
    def opening(self) -> bool:
        return not self.done.is_set()


class Link:
    """The thread that owns one HTTP/2 connection and its WebSocket streams.

    ``close_when_idle``: send GOAWAY and close once the last stream ended (a connection opened
    for a single WebSocket), or at once when the server's SETTINGS do not enable extended CONNECT.

    Closing never waits for the server: the link writes its GOAWAY (for at most
    :data:`CLOSE_FLUSH_TIMEOUT`) and closes the socket.
    """

    def __init__(self, sock: socket.socket, tracer: Tracer, *, close_when_idle: bool = False) -> None:
        self.sock = sock
        self.tracer = tracer
        self.close_when_idle = close_when_idle
        self.protocol = H2Protocol()
        self.error: Exception | None = None
        """Why the connection ended, once it has."""
        self._streams: dict[int, _Stream] = {}
        self._waiting: list[_Stream] = []
        self._commands: deque[tuple[str, _Stream | None]] = deque()
        self._out = bytearray()
        self._ready = threading.Event()
        self._closing = False
        self._close_deadline = 0.0
        self._finished = threading.Event()
        self._waker = Waker()
        self._selector = selectors.DefaultSelector()
        self._masks: dict[object, int] = {}
        self._thread = threading.Thread(target=self._run, name=f"websync-h2 {tracer.name}", daemon=True)

    def start(self) -> Link:
        self._thread.start()
        return self

    @property
    def usable(self) -> bool:
        """True while new streams may open here (no GOAWAY, not closing, not lost)."""
        return not (self._finished.is_set() or self._closing or self.protocol.going_away is not None)

    @property
    def stream_count(self) -> int:
        """Streams in use, including those still opening."""
        return len(self._streams) + len(self._waiting)

    # -- any thread -----------------------------------------------------------------------------

    def wait_ready(self, timeout: float | None) -> bool:
        """Wait for the server's SETTINGS; return whether it enabled extended CONNECT."""
        if not self._ready.wait(timeout):
            raise OpenTimeout("timed out waiting for the HTTP/2 server's SETTINGS")
        if self.protocol.extended_connect is None:
            raise self.error or TransportError("the HTTP/2 connection closed before the server's SETTINGS")
        return self.protocol.extended_connect

    def open(self, headers: Sequence[tuple[str, str]], timeout: float | None) -> Answer:
        """Send an extended CONNECT and wait for the answer (any status); raises on failures."""
        stream = _Stream(headers)
        self._post("open", stream)
        if not stream.done.wait(timeout):
            with stream.lock:
                stream.cancelled = not stream.done.is_set()
            if stream.cancelled:
                self._post("cancel", stream)
                raise OpenTimeout("timed out waiting for the answer to the extended CONNECT")
        if stream.error is not None:
            raise stream.error
        assert stream.answer is not None
        return stream.answer

    def close(self, timeout: float | None = 5.0) -> None:
        """Send GOAWAY, abort the streams still open and close the connection; waits for the thread."""
        self._post("close", None)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _post(self, kind: str, stream: _Stream | None) -> None:
        self._commands.append((kind, stream))
        self._waker.wake()
        if self._finished.is_set():  # the thread is gone or going: nobody else will answer
            self._refuse_commands()

    def _refuse_commands(self) -> None:
        error = self.error or TransportError("the HTTP/2 connection is closed")
        while self._commands:
            _, stream = self._commands.popleft()
            if stream is not None:
                self._finish(stream, error=error)

    # -- the link's thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._out += self.protocol.data_to_send()
            self._watch(self._waker.reader, selectors.EVENT_READ, None)
            while self.error is None and not self._closed():
                self._step()
        except Exception as exc:  # noqa: BLE001 - the streams and callers must learn why
            self._lost(exc)
        finally:
            self._shutdown()

    def _closed(self) -> bool:
        """Whether a close has written what it had to (or ran out of time to): the socket may go."""
        return self._closing and (not self._out or time.monotonic() >= self._close_deadline)

    def _step(self) -> None:
        self._run_commands()
        self._flush()
        if self._closed():
            return  # never wait for the server's answer to our GOAWAY
        self._watch(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self._out else 0), None)
        for stream in self._streams.values():
            self._watch(stream.local, self._stream_mask(stream), stream)
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        timeout = max(self._close_deadline - time.monotonic(), 0) if self._closing else None
        for key, mask in self._selector.select(0 if pending else timeout):
            if key.data is None:
                continue
            if mask & selectors.EVENT_WRITE:
                self._deliver(key.data)
            if mask & selectors.EVENT_READ and key.data.stream_id in self._streams:
                self._forward(key.data)
        self._read_network()

    def _stream_mask(self, stream: _Stream) -> int:
        mask = selectors.EVENT_WRITE if stream.inbound else 0
        if stream.reset or (len(self._out) < HIGH_WATER and self.protocol.send_window(stream.stream_id) > 0):
            mask |= selectors.EVENT_READ
        return mask

    def _watch(self, sock: Waitable | None, mask: int, data: _Stream | None) -> None:
        if sock is None or self._masks.get(sock) == mask:
            return
        if mask == 0:
            self._unwatch(sock)
        elif sock in self._masks:
            self._selector.modify(sock, mask, data)
        else:
            self._selector.register(sock, mask, data)
        if mask:
            self._masks[sock] = mask

    def _unwatch(self, sock: Waitable) -> None:
        if self._masks.pop(sock, None) is not None:
            self._selector.unregister(sock)

    def _run_commands(self) -> None:
        self._waker.drain()
        while self._commands:
            kind, stream = self._commands.popleft()
            if kind == "open":
                assert stream is not None
                self._waiting.append(stream)
            elif kind == "cancel":
                assert stream is not None
                self._drop(stream, abort=True)
            else:
                self._begin_close()
        if self._ready.is_set():
            self._send_waiting()

    def _send_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for stream in waiting:
            if stream.cancelled:
                continue
            try:
                stream.stream_id = self.protocol.open_stream(stream.headers)
            except InvalidHandshake as exc:
                self._finish(stream, error=exc)
                continue
            self._streams[stream.stream_id] = stream
            self.tracer.event("h2 stream %d: CONNECT %s", stream.stream_id, _path(stream.headers))
        self._out += self.protocol.data_to_send()

    def _read_network(self) -> None:
        while True:
            try:
                data = self.sock.recv(READ_SIZE)
            except WOULD_BLOCK:
                return
            except OSError as exc:
                raise TransportError(exc.errno, f"HTTP/2 connection lost: {exc}") from exc
            if not data:
                if self._closing:  # the answer to our GOAWAY
                    self._out.clear()
                    return
                raise TransportError("the HTTP/2 server closed the connection")
            try:
                events = self.protocol.receive_data(data)
            finally:
                self._out += self.protocol.data_to_send()
            for event in events:
                self._handle(event)
            self._out += self.protocol.data_to_send()

    def _handle(self, event: Event) -> None:
        if isinstance(event, Ready):
            self.tracer.event("h2 SETTINGS from the server: %s", event.settings)
            if not event.extended_connect:
                self.tracer.event("h2 extended CONNECT is not enabled by the server")
                if self.close_when_idle:  # no WebSocket can open here: close now, not when asked
                    self._begin_close()
            self._ready.set()
            self._send_waiting()
        elif isinstance(event, Received):
            self._received(event)
        elif isinstance(event, Answered):
            self._answered(event)
        elif isinstance(event, (Ended, Reset)):
            self._ended(event)
        elif isinstance(event, WindowOpened) and event.delta:
            self.tracer.event("h2 stream %d: WINDOW_UPDATE %+d", event.stream_id, event.delta)
        elif isinstance(event, GoingAway):
            self._going_away(event)
        elif isinstance(event, Pinged):
            self.tracer.event("h2 PING %r answered", event.data)

    def _answered(self, event: Answered) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None:
            return
        self.tracer.event("h2 stream %d: status %d", event.stream_id, event.status)
        if event.status != 200:
            stream.refusal = event
            return
        local, remote = socket.socketpair()
        for end in (local, remote):
            end.setblocking(False)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PAIR_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PAIR_BUFFER)
        stream.local = local
        if not self._finish(stream, answer=Answer(200, event.headers, sock=remote)):
            remote.close()
            self._drop(stream, abort=True)

    def _received(self, event: Received) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.local is None:
            if stream is not None and stream.refusal is not None and len(stream.body) < MAX_BODY_BYTES:
                stream.body += event.data[: MAX_BODY_BYTES - len(stream.body)]
            self.protocol.consumed(event.stream_id, event.flow_length)
            return
        if event.flow_length > len(event.data):  # padding: nothing for the application to take
            self.protocol.consumed(event.stream_id, event.flow_length - len(event.data))
        if event.data:
            stream.inbound.append(memoryview(event.data))
            self._deliver(stream)

    def _ended(self, event: Ended | Reset) -> None:
        stream = self._streams.get(event.stream_id)
        if isinstance(event, Reset):
            self.tracer.event(
                "h2 stream %d: RST_STREAM from the server (error code %d)", event.stream_id, event.error_code
            )
        else:
            self.tracer.event("h2 stream %d: END_STREAM from the server", event.stream_id)
        if stream is None:
            return
        stream.peer_ended = True
        stream.reset = stream.reset or isinstance(event, Reset)
        if stream.opening:
            if stream.refusal is not None:
                answer = Answer(stream.refusal.status, stream.refusal.headers, bytes(stream.body))
                self._finish(stream, answer=answer)
            else:
                self._finish(
                    stream, error=InvalidHandshake(f"the server ended stream {stream.stream_id} without an answer")
                )
            self._drop(stream, abort=not stream.reset)
            return
        self._deliver(stream)

    def _going_away(self, event: GoingAway) -> None:
        self.tracer.event(
            "h2 GOAWAY from the server: error code %d, last stream %d %r",
            event.error_code,
            event.last_stream_id,
            event.data,
        )
        for stream in list(self._streams.values()):
            if stream.stream_id > event.last_stream_id:
                self._ended(Reset(stream.stream_id, event.error_code))
        for stream in self._waiting:
            self._finish(stream, error=InvalidHandshake("the HTTP/2 connection is going away (GOAWAY received)"))
        self._waiting.clear()
        if event.error_code:
            raise TransportError(f"the HTTP/2 server ended the connection (GOAWAY, error code {event.error_code})")
        self._close_if_idle()

    def _deliver(self, stream: _Stream) -> None:
        """Copy received DATA into the stream's socketpair as it takes it; END_STREAM becomes EOF."""
        assert stream.local is not None
        while stream.inbound:
            chunk = stream.inbound[0]
            try:
                sent = stream.local.send(chunk)
            except BlockingIOError:
                return
            except OSError:  # the application closed its end
                sent = sum(len(piece) for piece in stream.inbound)
                stream.inbound.clear()
                self.protocol.consumed(stream.stream_id, sent)
                break
            self.protocol.consumed(stream.stream_id, sent)
            if sent == len(chunk):
                stream.inbound.popleft()
            else:
                stream.inbound[0] = chunk[sent:]
        self._out += self.protocol.data_to_send()
        if stream.peer_ended and not stream.shut:
            stream.shut = True
            try:
                stream.local.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _forward(self, stream: _Stream) -> None:
        """Send what the application wrote on its end, within the send window."""
        assert stream.local is not None
        size = READ_SIZE if stream.reset else min(READ_SIZE, self.protocol.send_window(stream.stream_id))
        try:
            data = stream.local.recv(size) if size > 0 else None
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data is None:
            return
        if not data:
            self._app_closed(stream)
        elif not stream.reset:
            self.protocol.send_data(stream.stream_id, data)
            self._out += self.protocol.data_to_send()

    def _app_closed(self, stream: _Stream) -> None:
        """The application closed its end: end the stream (abort it if the server had not ended it)."""
        if stream.peer_ended and not stream.reset:
            self.protocol.end_stream(stream.stream_id)
            self.tracer.event("h2 stream %d: END_STREAM sent", stream.stream_id)
        self._drop(stream, abort=not stream.peer_ended)

    def _drop(self, stream: _Stream, *, abort: bool) -> None:
        if abort and stream.stream_id and not stream.reset:
            self.protocol.reset_stream(stream.stream_id, CANCEL)
            self.tracer.event("h2 stream %d: RST_STREAM(CANCEL) sent", stream.stream_id)
        self._out += self.protocol.data_to_send()
        if stream.local is not None:
            self._unwatch(stream.local)
            stream.local.close()
        self._streams.pop(stream.stream_id, None)
        if stream in self._waiting:
            self._waiting.remove(stream)
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        if not self._streams and not self._waiting and (self.close_when_idle or self.protocol.going_away):
            self._begin_close()

    def _begin_close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._close_deadline = time.monotonic() + CLOSE_FLUSH_TIMEOUT
        for stream in list(self._streams.values()):
            self._finish(stream, error=TransportError("the HTTP/2 connection was closed"))
            self._drop(stream, abort=True)
        for stream in self._waiting:
            self._finish(stream, error=TransportError("the HTTP/2 connection was closed"))
        self._waiting.clear()
        self.protocol.close()
        self.tracer.event("h2 GOAWAY sent")
        self._out += self.protocol.data_to_send()

    def _flush(self) -> None:
        while self._out:
            try:
                sent = self.sock.send(self._out)
            except WOULD_BLOCK:
                return
            except OSError as exc:
                raise TransportError(exc.errno, f"HTTP/2 connection lost: {exc}") from exc
            del self._out[:sent]

    def _finish(self, stream: _Stream, *, answer: Answer | None = None, error: Exception | None = None) -> bool:
        """Hand the caller of :meth:`open` its result; False if it had given up waiting."""
        with stream.lock:
            if stream.cancelled or stream.done.is_set():
                return False
            stream.answer, stream.error = answer, error
            stream.done.set()
            return True

    def _lost(self, error: Exception) -> None:
        if not isinstance(error, (TransportError, InvalidHandshake)):
            logger.error("HTTP/2 connection of %s failed", self.tracer.name, exc_info=error)
            error = TransportError(f"the HTTP/2 connection failed: {error!r}")
        self.error = error
        self.tracer.event("h2 connection lost: %s", error)

    def _shutdown(self) -> None:
        self._finished.set()
        error = self.error or TransportError("the HTTP/2 connection is closed")
        for stream in [*self._streams.values(), *self._waiting]:
            self._finish(stream, error=error)
            if stream.local is not None:
                stream.local.close()
        self._streams.clear()
        self._waiting.clear()
        self._refuse_commands()
        self._ready.set()
        self._selector.close()
        self.sock.close()
        self._waker.close()


def _path(headers: Sequence[tuple[str, str]]) -> str:
    return next((value for name, value in headers if name == ":path"), "?")
