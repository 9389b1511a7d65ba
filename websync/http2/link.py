"""One HTTP/2 connection on a socket, owned by one thread that multiplexes WebSocket streams.

A caller's :meth:`Link.open` hands the thread an extended CONNECT and waits for the answer. On a 200
the caller gets one end of a socketpair, which websync's :class:`~websync.net.connection.Connection`
and worker use like a TCP socket, while a :class:`~websync.http2.tunnel.Tunnel` copies bytes between
the other end and the stream. The thread alone touches the socket, the protocol and the tunnels;
other threads reach it through commands.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..core.errors import InvalidHandshake, OpenTimeout, TransportError
from ..net.deadline import Deadline
from ..net.tracing import Tracer
from ..net.transport import WOULD_BLOCK, Waker
from .connect import Answer, ConnectRequest, Opening
from .protocol import (
    Answered,
    Ended,
    GoingAway,
    H2Protocol,
    Pinged,
    Ready,
    Received,
    Reset,
    WindowOpened,
)
from .tunnel import READ_SIZE, Tunnel, socket_pair

__all__ = ["Link"]

logger = logging.getLogger("websync")

HIGH_WATER = 1 << 20
"""Stop taking stream data while this much is waiting for the network."""
CLOSE_FLUSH_TIMEOUT = 1.0
"""Seconds a closing link may spend writing its last frames (GOAWAY) to a server that does not read."""


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
        self._waiting: list[ConnectRequest] = []
        """CONNECTs not sent yet: the server's SETTINGS have not arrived."""
        self._openings: dict[int, Opening] = {}
        self._tunnels: dict[int, Tunnel] = {}
        self._stale: set[Tunnel] = set()
        """Tunnels whose selector events may have changed since the last wait."""
        self._sending = True
        """Whether tunnels may take data to send: the network keeps up and the connection has window."""
        self._commands: deque[tuple[Literal["open", "cancel", "close"], ConnectRequest | None]] = deque()
        self._out = bytearray()
        self._network_events = selectors.EVENT_READ
        self._ready = threading.Event()
        self._closing: Deadline | None = None
        """Set by a close: until when the link may write its last frames."""
        self._finished = threading.Event()
        self._waker = Waker()
        self._selector = selectors.DefaultSelector()
        self._handlers: dict[type, Callable[[Any], None]] = {
            Ready: self._on_ready,
            Answered: self._on_answer,
            Received: self._on_data,
            Ended: self._on_end,
            Reset: self._on_end,
            WindowOpened: self._on_window,
            GoingAway: self._on_goaway,
            Pinged: self._on_ping,
        }
        self._thread = threading.Thread(target=self._run, name=f"websync-h2 {tracer.name}", daemon=True)

    def start(self) -> Link:
        """Start the link's thread; TransportError (EAGAIN) when none can start, the socket closed."""
        try:
            self._thread.start()
        except RuntimeError as exc:  # at the thread limit
            self._selector.close()
            self.sock.close()
            raise TransportError(errno.EAGAIN, f"no thread for the HTTP/2 connection: {exc}") from exc
        return self

    @property
    def usable(self) -> bool:
        """True while new streams may open here (no GOAWAY, not closing, not lost)."""
        return not (self._finished.is_set() or self._closing is not None or self.protocol.going_away is not None)

    @property
    def stream_count(self) -> int:
        """Streams in use, including those still opening."""
        return len(self._tunnels) + len(self._openings) + len(self._waiting)

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
        request = ConnectRequest(headers)
        self._post("open", request)
        answer = request.wait(timeout)
        if answer is None:
            self._post("cancel", request)
            raise OpenTimeout("timed out waiting for the answer to the extended CONNECT")
        return answer

    def close(self, timeout: float | None = 5.0) -> None:
        """Send GOAWAY, abort the streams still open and close the connection; waits for the thread."""
        self._post("close", None)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _post(self, kind: Literal["open", "cancel", "close"], request: ConnectRequest | None) -> None:
        self._commands.append((kind, request))
        self._waker.wake()
        if self._finished.is_set():  # the thread is gone or going: nobody else will answer
            self._refuse_commands()

    def _refuse_commands(self) -> None:
        error = self.error or TransportError("the HTTP/2 connection is closed")
        while self._commands:
            _, request = self._commands.popleft()
            if request is not None:
                request.settle(error=error)

    # -- the link's thread: the loop ------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._waker.open()
            self._selector.register(self._waker.reader, selectors.EVENT_READ)
            self._selector.register(self.sock, self._network_events)
            while self._step():
                pass
        except Exception as exc:  # noqa: BLE001 - the streams and callers must learn why
            self._lost(exc)
        finally:
            self._shutdown()

    def _step(self) -> bool:
        """One turn: commands, writes, a wait for the sockets, reads; False once the socket may close."""
        self._run_commands()
        self._flush()
        if self._closed():
            return False  # never wait for the server's answer to our GOAWAY
        self._update_interest()
        for key, events in self._selector.select(self._select_timeout()):
            if key.data is not None:
                self._pump(key.data, events)
        self._read_network()
        return True

    def _closed(self) -> bool:
        """Whether a close has written what it had to (or ran out of time to): the socket may go."""
        return self._closing is not None and (not self._out or self._closing.expired())

    def _select_timeout(self) -> float | None:
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return 0  # TLS already holds decrypted bytes: read them without waiting
        return None if self._closing is None else self._closing.remaining()

    def _update_interest(self) -> None:
        """Tell the selector what to wait for: the network socket, and the tunnels that changed."""
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._out else 0)
        if events != self._network_events:
            self._selector.modify(self.sock, events)
            self._network_events = events
        sending = len(self._out) < HIGH_WATER and self.protocol.connection_window() > 0
        if sending != self._sending:
            self._sending = sending
            self._stale.update(self._tunnels.values())
        for tunnel in self._stale:
            tunnel.watch(self._selector, tunnel.interest(self.protocol, sending))
        self._stale.clear()

    def _pump(self, tunnel: Tunnel, events: int) -> None:
        """Move a tunnel's bytes the ways its socket is ready for."""
        if self._tunnels.get(tunnel.stream_id) is not tunnel:
            return  # dropped earlier in this turn
        self._stale.add(tunnel)
        if events & selectors.EVENT_WRITE:
            tunnel.deliver(self.protocol)
        if events & selectors.EVENT_READ and not tunnel.forward(self.protocol):
            self._app_closed(tunnel)

    def _flush(self) -> None:
        """Write what the protocol queued, as far as the socket takes it."""
        self._out += self.protocol.data_to_send()
        while self._out:
            try:
                sent = self.sock.send(self._out)
            except WOULD_BLOCK:
                return
            except OSError as exc:
                raise TransportError(exc.errno, f"HTTP/2 connection lost: {exc}") from exc
            del self._out[:sent]

    def _read_network(self) -> None:
        """Read and handle what the server sent, until the socket has no more."""
        while True:
            try:
                data = self.sock.recv(READ_SIZE)
            except WOULD_BLOCK:
                return
            except OSError as exc:
                raise TransportError(exc.errno, f"HTTP/2 connection lost: {exc}") from exc
            if not data:
                self._network_closed()
                return
            for event in self.protocol.receive_data(data):
                self._handlers[type(event)](event)

    def _network_closed(self) -> None:
        if self._closing is None:
            raise TransportError("the HTTP/2 server closed the connection")
        self._closing = Deadline(0)  # the server's answer to our GOAWAY: nothing more can be written

    # -- the link's thread: commands ------------------------------------------------------------

    def _run_commands(self) -> None:
        self._waker.drain()
        while self._commands:
            kind, request = self._commands.popleft()
            if request is None:
                self._begin_close()
            elif kind == "open":
                self._waiting.append(request)
            else:
                self._cancel(request)
        if self._ready.is_set():
            self._send_waiting()

    def _send_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for request in waiting:
            if not request.abandoned:
                self._send(request)

    def _send(self, request: ConnectRequest) -> None:
        if self._closing is not None:
            request.settle(error=_closed_by_us())
            return
        try:
            stream_id = self.protocol.open_stream(request.headers)
        except InvalidHandshake as exc:
            request.settle(error=exc)
            return
        self._openings[stream_id] = Opening(request, stream_id)
        self.tracer.event("h2 stream %d: CONNECT %s", stream_id, _path(request.headers))

    def _cancel(self, request: ConnectRequest) -> None:
        """Its caller gave up waiting: forget the CONNECT, and reset its stream if it was sent."""
        if request in self._waiting:
            self._waiting.remove(request)
        for opening in [o for o in self._openings.values() if o.request is request]:
            self._drop_opening(opening, abort=True)
        self._close_if_idle()

    # -- the link's thread: the server's events -------------------------------------------------

    def _on_ready(self, event: Ready) -> None:
        self.tracer.event("h2 SETTINGS from the server: %s", event.settings)
        if not event.extended_connect:
            self.tracer.event("h2 extended CONNECT is not enabled by the server")
            if self.close_when_idle:  # no WebSocket can open here: close now, not when asked
                self._begin_close()
        self._ready.set()
        self._send_waiting()

    def _on_answer(self, event: Answered) -> None:
        opening = self._openings.get(event.stream_id)
        if opening is None:
            return
        self.tracer.event("h2 stream %d: status %d", event.stream_id, event.status)
        if event.status != 200:
            opening.refuse(event)
            return
        local, remote = socket_pair()
        if not opening.request.settle(Answer(200, event.headers, sock=remote)):
            local.close()
            remote.close()
            self._drop_opening(opening, abort=True)
            return
        del self._openings[event.stream_id]
        tunnel = self._tunnels[event.stream_id] = Tunnel(event.stream_id, local)
        self._stale.add(tunnel)

    def _on_data(self, event: Received) -> None:
        tunnel = self._tunnels.get(event.stream_id)
        if tunnel is None:
            if (opening := self._openings.get(event.stream_id)) is not None:
                opening.add_body(event.data)
            self.protocol.consumed(event.stream_id, event.flow_length)
            return
        if event.flow_length > len(event.data):  # padding: nothing for the application to take
            self.protocol.consumed(event.stream_id, event.flow_length - len(event.data))
        if event.data:
            tunnel.receive(event.data, self.protocol)
            self._stale.add(tunnel)

    def _on_end(self, event: Ended | Reset) -> None:
        reset = isinstance(event, Reset)
        if isinstance(event, Reset):
            self.tracer.event(
                "h2 stream %d: RST_STREAM from the server (error code %d)", event.stream_id, event.error_code
            )
        else:
            self.tracer.event("h2 stream %d: END_STREAM from the server", event.stream_id)
        if (tunnel := self._tunnels.get(event.stream_id)) is not None:
            tunnel.end(self.protocol, reset=reset)
            self._stale.add(tunnel)
        elif (opening := self._openings.get(event.stream_id)) is not None:
            opening.settle_ended()
            self._drop_opening(opening, abort=not reset)

    def _on_window(self, event: WindowOpened) -> None:
        if event.delta:
            self.tracer.event("h2 stream %d: WINDOW_UPDATE %+d", event.stream_id, event.delta)
        if event.stream_id == 0:  # the connection's window, or every stream's (SETTINGS)
            self._stale.update(self._tunnels.values())
        elif (tunnel := self._tunnels.get(event.stream_id)) is not None:
            self._stale.add(tunnel)

    def _on_goaway(self, event: GoingAway) -> None:
        self.tracer.event(
            "h2 GOAWAY from the server: error code %d, last stream %d %r",
            event.error_code,
            event.last_stream_id,
            event.data,
        )
        for stream_id in [*self._tunnels, *self._openings]:
            if stream_id > event.last_stream_id:
                self._on_end(Reset(stream_id, event.error_code))
        self._settle_waiting(lambda: InvalidHandshake("the HTTP/2 connection is going away (GOAWAY received)"))
        if event.error_code:
            raise TransportError(f"the HTTP/2 server ended the connection (GOAWAY, error code {event.error_code})")
        self._close_if_idle()

    def _on_ping(self, event: Pinged) -> None:
        self.tracer.event("h2 PING %r answered", event.data)

    # -- the link's thread: ending streams and the connection -----------------------------------

    def _app_closed(self, tunnel: Tunnel) -> None:
        """The application closed its end: end the stream (abort it if the server had not ended it)."""
        if tunnel.peer_ended and not tunnel.reset:
            self.protocol.end_stream(tunnel.stream_id)
            self.tracer.event("h2 stream %d: END_STREAM sent", tunnel.stream_id)
        self._drop_tunnel(tunnel, abort=not tunnel.peer_ended)

    def _drop_tunnel(self, tunnel: Tunnel, *, abort: bool) -> None:
        if abort and not tunnel.reset:
            self._reset(tunnel.stream_id)
        tunnel.close(self._selector)
        del self._tunnels[tunnel.stream_id]
        self._stale.discard(tunnel)
        self._close_if_idle()

    def _drop_opening(self, opening: Opening, *, abort: bool) -> None:
        if abort:
            self._reset(opening.stream_id)
        del self._openings[opening.stream_id]
        self._close_if_idle()

    def _reset(self, stream_id: int) -> None:
        self.protocol.reset_stream(stream_id)
        self.tracer.event("h2 stream %d: RST_STREAM(CANCEL) sent", stream_id)

    def _settle_waiting(self, error: Callable[[], Exception]) -> None:
        for request in self._waiting:
            request.settle(error=error())
        self._waiting.clear()

    def _close_if_idle(self) -> None:
        if not self.stream_count and (self.close_when_idle or self.protocol.going_away):
            self._begin_close()

    def _begin_close(self) -> None:
        if self._closing is not None:
            return
        self._closing = Deadline(CLOSE_FLUSH_TIMEOUT)
        for opening in list(self._openings.values()):
            opening.request.settle(error=_closed_by_us())
            self._drop_opening(opening, abort=True)
        for tunnel in list(self._tunnels.values()):
            self._drop_tunnel(tunnel, abort=True)
        self._settle_waiting(_closed_by_us)
        self.protocol.close()
        self.tracer.event("h2 GOAWAY sent")

    def _lost(self, error: Exception) -> None:
        if not isinstance(error, (TransportError, InvalidHandshake)):
            logger.error("HTTP/2 connection of %s failed", self.tracer.name, exc_info=error)
            error = TransportError(f"the HTTP/2 connection failed: {error!r}")
        self.error = error
        self.tracer.event("h2 connection lost: %s", error)

    def _shutdown(self) -> None:
        self._finished.set()
        error = self.error or TransportError("the HTTP/2 connection is closed")
        for opening in self._openings.values():
            opening.request.settle(error=error)
        self._settle_waiting(lambda: error)
        for tunnel in self._tunnels.values():
            tunnel.sock.close()
        self._openings.clear()
        self._tunnels.clear()
        self._refuse_commands()
        self._ready.set()
        self._selector.close()
        self.sock.close()
        self._waker.close()


def _closed_by_us() -> TransportError:
    return TransportError("the HTTP/2 connection was closed")


def _path(headers: Sequence[tuple[str, str]]) -> str:
    return next((value for name, value in headers if name == ":path"), "?")
