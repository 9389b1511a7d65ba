"""The threads of a server: one worker per connection (which also does its upgrade) and the acceptor.

A connection is a :class:`~websync.worker.worker.Worker` whose "connect" step is the server side of the
opening handshake on the accepted socket, bounded by ``handshake_timeout``; after it, the same
loop as a client's drives the connection, with :class:`HandlerAdapter` translating the worker's
callbacks into :class:`~websync.server.serving.ServerHandler` ones. The acceptor is a
:class:`supervisors.Process` that accepts sockets and starts their workers under the server's
connection supervisor; over ``max_connections`` it answers 503 itself.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisors import Process, StartError

from ..core.errors import InvalidHandshake, OpenTimeout
from ..core.frames import Binary, Close, Ping, Pong, Text
from ..core.handshake import MAX_HEADER_BYTES, Response
from ..core.protocol import Protocol, Role
from ..core.server_handshake import (
    InvalidRequest,
    Request,
    RequestAnswered,
    RequestParser,
    ServerHandshake,
    error_response,
    format_response,
)
from ..core.uri import WebSocketURI
from ..net.connection import Connection
from ..net.transport import WOULD_BLOCK, Waitable, Waker, readable, send_all
from ..worker.handler import Handler, Reply, Stop
from ..worker.options import WorkerOptions
from ..worker.worker import Worker
from .handler import Reject, ServerHandler
from .http_response import ProcessRequest, as_response
from .tls import accept_tls

__all__ = ["LINGER_SECONDS", "Acceptor", "ConnectionSettings", "ConnectionWorker", "HandlerAdapter", "ServerConnection"]

logger = logging.getLogger("websync.server")

READ_SIZE = 65536
LINGER_SECONDS = 2.0
"""How long the acceptor keeps a refused client (to read its request, answer and see it close)."""
MAX_REFUSED = 256


class ServerConnection(Connection):
    """A connection on the server side: the server closes TCP first (RFC 6455 section 7.1.1)."""

    def peer_done(self) -> bool:
        """After a clean close handshake at once; after a failure once the client answered the
        close (or closed TCP): until then its writes would meet a reset and lose the close code."""
        protocol = self.protocol
        return protocol.error is None or protocol.failure_acknowledged or self.eof


class HandlerAdapter(Handler):
    """Presents a :class:`~websync.server.serving.ServerHandler` to the worker as a client-style Handler."""

    def __init__(self, handler: ServerHandler) -> None:
        self.handler = handler
        self.opened = False
        self._first_reply: Reply = None
        self._ended: Exception | None = None

    def open(self, request: Request) -> Reject | None:
        """Call ``init``; a :class:`~websync.server.serving.Reject` it raises or returns refuses the upgrade."""
        try:
            reply = self.handler.init(request)
        except Reject as reject:
            return reject
        if isinstance(reply, Reject):
            return reply
        self.opened = True
        self._first_reply = reply
        return None

    def handle_connect(self, response: Response) -> Reply:
        reply, self._first_reply = self._first_reply, None
        return reply

    def handle_frame(self, frame: Text | Binary) -> Reply:
        """``handle_in``, unless the message came after this side's close frame: no answer could
        go out then (RFC 6455 section 5.5.1), so the handler does not see it, and every message
        it answered is answered on the wire (a drain loses no answer)."""
        worker = self.handler.worker
        connection = None if worker is None else worker.connection
        if connection is not None and connection.protocol.close_sent is not None:
            return None
        return self.handler.handle_in(frame)

    def handle_ping(self, frame: Ping) -> Reply:
        return self.handler.handle_control(frame)

    def handle_pong(self, frame: Pong) -> Reply:
        return self.handler.handle_control(frame)

    def handle_close(self, frame: Close) -> Reply:
        return self.handler.handle_control(frame)

    def handle_info(self, message: Any) -> Reply:
        return self.handler.handle_info(message)

    def handle_disconnect(self, reason: Exception, attempt: int) -> Stop:
        """A server never reconnects: the worker ends, and ``terminate`` learns how the connection did."""
        self._ended = reason
        return Stop("normal")

    def handle_error(self, error: Exception) -> Reply:
        return self.handler.handle_error(error)

    def terminate(self, reason: object) -> None:
        if self.opened:
            self.handler.terminate(self._ended if reason == "normal" and self._ended is not None else reason)


@dataclass(frozen=True)
class ConnectionSettings:
    """What every connection of one server shares."""

    handshake: ServerHandshake
    handshake_timeout: float | None
    max_size: int | None
    local_address: tuple[str, int]
    ssl_context: ssl.SSLContext | None = None
    process_request: ProcessRequest | None = None


class ConnectionWorker(Worker):
    """The worker of one accepted connection; its connect step is the server's opening handshake."""

    handler: HandlerAdapter

    def __init__(
        self,
        sock: socket.socket,
        address: Any,
        handler: ServerHandler,
        settings: ConnectionSettings,
        options: WorkerOptions,
    ) -> None:
        super().__init__(HandlerAdapter(handler), options=options)
        self.sock = sock
        self.remote_address = address
        self.settings = settings
        self.tracer.name = f"server :{settings.local_address[1]} <- {_format_address(address)}"
        handler.worker = self
        handler.remote_address = address

    def run(self) -> object:
        try:
            return super().run()
        finally:
            self.sock.close()  # a worker that ended before its handshake (no descriptor for its waker) owns it still

    def system_get_state(self) -> object:
        """The connection's :class:`~websync.server.serving.ServerHandler` (``supervisors.sys.get_state``)."""
        return self.handler.handler

    def system_replace_state(self, replace: Callable[[Any], Any]) -> object:
        """Replace the connection's ServerHandler with ``replace(handler)``."""
        self.handler.handler = replace(self.handler.handler)
        return self.handler.handler

    def _connect(self) -> Connection:
        """Do TLS (with ``ssl_context``), read the request, answer it and return the open connection.

        Raises :class:`~websync.core.errors.InvalidHandshake` (the answer was a refusal or
        ``process_request``'s response, the client was silent past ``handshake_timeout``, or the
        server is stopping) and ``OSError`` (``ssl.SSLError`` included); the socket is closed
        then, and the worker ends. TLS and the request share the one ``handshake_timeout``.
        """
        timeout = self.settings.handshake_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if self.settings.ssl_context is not None:
                self.sock = accept_tls(
                    self.sock, self.settings.ssl_context, deadline, self._waker.reader, self._woken_in_handshake
                )
            return self._upgrade(deadline)
        except InvalidRequest as refusal:
            self.tracer.event("upgrade refused: %s", refusal)
            self._respond_quietly(refusal.response, deadline)
            self.sock.close()
            raise
        except BaseException:
            self.sock.close()
            raise

    def _woken_in_handshake(self) -> None:
        """The mailbox while no connection is up: pushed frames wait in the outbox; a stop ends the handshake."""
        self._drain_mailbox(None)
        if self._stopping is not None:
            raise InvalidHandshake("the server is stopping")

    def _upgrade(self, deadline: float | None) -> Connection:
        request, leftover = self._read_request(deadline)
        self.tracer.headers(f"{request.method} {request.path}", request.headers.items())
        self._process_request(request, deadline)
        upgrade = self.settings.handshake.negotiate(request)
        self.handler.handler.subprotocol = upgrade.subprotocol
        try:  # not through handle_error: an init that failed never accepts the connection
            reject = self.handler.open(request)
        except BaseException:
            self._respond_quietly(error_response(500, b"internal server error"), deadline)
            raise
        if reject is not None:
            raise InvalidRequest(reject.status, f"rejected by init() with {reject.status}", reject.headers, reject.body)
        self._respond(upgrade.response, deadline)
        protocol = Protocol(Role.SERVER, max_size=self.settings.max_size, extensions=upgrade.extensions)
        host, port = self.settings.local_address[:2]
        uri = WebSocketURI(secure=self.settings.ssl_context is not None, host=host, port=port, resource=request.path)
        connection = ServerConnection(
            self.sock,
            protocol,
            uri,
            upgrade.response,
            upgrade.subprotocol,
            self.tracer,
            self.stats,
            early_data=leftover,
        )
        self.stats.connected_since = time.time()
        self.tracer.event("connected (subprotocol %s, extensions %s)", upgrade.subprotocol, connection.extensions)
        return connection

    def _process_request(self, request: Request, deadline: float | None) -> None:
        """Give ``process_request`` the request; its response ends the connection (RequestAnswered)."""
        process_request = self.settings.process_request
        if process_request is None:
            return
        try:
            answer = process_request(request)
            if answer is None:
                return
            response = as_response(answer)
        except Exception:
            logger.exception("process_request raised on %s %s", request.method, request.path[:200])
            self._respond_quietly(error_response(500, b"internal server error"), deadline)
            raise
        raise RequestAnswered(response)

    def _read_request(self, deadline: float | None) -> tuple[Request, bytes]:
        """The upgrade request, and the bytes the client sent after it (its first frames)."""
        parser = RequestParser()
        request = None
        while request is None:
            request = parser.receive_data(self._read_request_bytes(deadline))
        return request, parser.leftover

    def _read_request_bytes(self, deadline: float | None) -> bytes:
        """The next bytes of the request; pushes and stop requests are handled while waiting."""
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise OpenTimeout(f"no complete upgrade request within {self.settings.handshake_timeout}s")
            tls_buffered = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            ready = [self.sock] if tls_buffered else readable([self.sock, self._waker.reader], remaining)
            if self._waker.reader in ready:
                self._woken_in_handshake()  # frames pushed meanwhile wait in the outbox
            if self.sock not in ready:
                continue
            try:
                data = self.sock.recv(READ_SIZE)
            except WOULD_BLOCK:
                continue
            if not data:
                raise InvalidHandshake("the client closed the connection during the handshake")
            return data

    def _respond(self, response: Response, deadline: float | None) -> None:
        self.tracer.headers(f"HTTP {response.status}", response.headers.items())
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        send_all(self.sock, format_response(response), remaining)

    def _respond_quietly(self, response: Response, deadline: float | None) -> None:
        """Best effort: the client may be gone already."""
        try:
            self._respond(response, deadline)
        except OSError:
            pass


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return str(address)


@dataclass
class _Refusal:
    """A client refused at max_connections: its request is read before the 503 goes out."""

    deadline: float
    head: bytearray = field(default_factory=bytearray)
    answered: bool = False


class Acceptor(Process):
    """Accepts connections on ``listener`` and hands each one to ``start_connection``.

    ``start_connection(sock, address)`` returns False when the server is at ``max_connections``:
    the acceptor then reads the request, answers 503 itself and lingers until the client closes
    (at most :data:`LINGER_SECONDS` in all), so that neither side's bytes are lost to a reset.
    """

    def __init__(
        self,
        listener: socket.socket,
        start_connection: Callable[[socket.socket, Any], bool],
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.listener = listener
        self.start_connection = start_connection
        self._waker = Waker()
        self._refused: dict[socket.socket, _Refusal] = {}
        self._stop_reason: object = "normal"
        self._answer = format_response(error_response(503, b"too many connections", {"Retry-After": "1"}))

    def request_stop(self, reason: object) -> None:
        self._stop_reason = reason
        super().request_stop(reason)
        self._waker.wake()

    def run(self) -> object:
        try:
            self._waker.open()
            while not self.stop_requested.is_set():
                timeout = None
                if self._refused:
                    timeout = max(min(r.deadline for r in self._refused.values()) - time.monotonic(), 0)
                ready = readable([self.listener, self._waker.reader, *self._refused], timeout)
                if self.listener in ready:
                    self._accept()
                self._serve_refused(ready)
        finally:
            for sock in self._refused:
                sock.close()
            self._waker.close()
        return self._stop_reason

    def _accept(self) -> None:
        while not self.stop_requested.is_set():
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: wait for descriptors to free up
                logger.warning("accept() failed: %s", exc)
                self.stop_requested.wait(0.1)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                started = self.start_connection(sock, address)
            except StartError as exc:
                logger.error("cannot serve %s: %s", _format_address(address), exc)
                sock.close()
                continue
            if started:
                continue
            if len(self._refused) >= MAX_REFUSED:
                sock.close()
            else:
                self._refused[sock] = _Refusal(time.monotonic() + LINGER_SECONDS)

    def _serve_refused(self, ready: list[Waitable]) -> None:
        now = time.monotonic()
        for sock, refusal in list(self._refused.items()):
            if sock in ready and self._read_refused(sock, refusal):
                continue
            if sock in ready or refusal.deadline <= now:
                del self._refused[sock]
                sock.close()
        if self._waker.reader in ready:
            self._waker.drain()

    def _read_refused(self, sock: socket.socket, refusal: _Refusal) -> bool:
        """Read what a refused client sent and answer once its head is in; False when it is done."""
        try:
            data = sock.recv(READ_SIZE)
            if not data:
                return False
            if not refusal.answered:
                refusal.head += data
                if b"\r\n\r\n" in refusal.head or len(refusal.head) > MAX_HEADER_BYTES:
                    sock.send(self._answer)
                    sock.shutdown(socket.SHUT_WR)
                    refusal.answered = True
                    refusal.head.clear()
        except OSError:
            return False
        return True
