"""The WebSocket server: :class:`ServerHandler` (the WebSock behaviour), :func:`serve` and :class:`Server`.

Each connection has its own worker thread, the same :class:`~websync.worker.worker.Worker` as a
client's, which does the opening handshake (bounded by ``handshake_timeout``) and then calls the
handler. The server is a supervision tree::

    Supervisor (rest_for_one)
    ├── DynamicSupervisor "connections": one temporary child per connection (max_connections)
    └── Acceptor: accepts sockets and starts their workers under "connections"

so ``websync.trace(worker, True)`` and ``websync.statistics(worker)`` work on connections,
``server.stop()`` closes every connection with 1001 (going away), ``server.drain(timeout)`` stops
accepting and lets them finish first (see :mod:`websync.server_drain`), and
``server.broadcast(message)`` queues a message to all of them without waiting for any.

TLS (``ssl=context``) runs in each connection's worker thread, bounded by ``handshake_timeout``
like the upgrade; plain HTTP requests (a load balancer's health check) reach ``process_request``
(see :mod:`websync.server_http`).

Thread stacks: a connection costs one thread. Python's default stack reservation (8 MiB on
Linux) is virtual memory, but a server holding thousands of connections may lower it with
``threading.stack_size(256 * 1024)`` before :func:`serve`, as ``tools/load_server.py`` does; the
worker's call depth needs far less than that.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from ssl import SSLContext
from types import TracebackType
from typing import Any, Literal, Self

from supervisors import (
    ChildSpec,
    DynamicSupervisor,
    MaxChildrenError,
    NotRunningError,
    Supervisor,
    current_process,
)

from ..core.frames import Frame
from ..core.protocol import DEFAULT_MAX_SIZE, Role
from ..core.server_handshake import Request, ServerHandshake
from ..extensions.base import ServerExtensionFactory
from ..extensions.factories import extension_factories
from ..extensions.permessage_deflate import ServerPerMessageDeflate
from ..net.options import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, ConnectOptions, KeepaliveOptions
from ..worker.options import Overflow, WorkerOptions
from ..worker.worker import Worker
from .broadcast import broadcast
from .connection_worker import Acceptor, ConnectionSettings, ConnectionWorker, HandlerAdapter
from .drain import Draining, close_all, drain_on_signals, drain_workers
from .handler import ServerHandler
from .http_response import HTTPResponse, ProcessRequest

__all__ = ["Draining", "HTTPResponse", "Request", "Server", "ServerOptions", "serve"]


@dataclass(frozen=True)
class ServerOptions:
    """The options of :func:`serve`.

    - ``subprotocols``: subprotocols the server speaks, most preferred first.
    - ``compression``: ``"deflate"`` accepts permessage-deflate offers; None declines them; a
      configured ``websync.extensions.ServerPerMessageDeflate(...)`` accepts them with its settings.
    - ``extensions``: more :class:`~websync.extensions.ServerExtensionFactory` objects, tried in order.
    - ``max_size``: bound on a received message in bytes (None: unlimited); past it, 1009.
    - ``max_connections``: past it, new clients get HTTP 503 (None: unlimited).
    - ``handshake_timeout``: seconds a client has to send its upgrade request.
    - ``origins``: allowed ``Origin`` values (None: any; include None to allow no Origin header).
    - ``close_timeout``: seconds to wait for the client's close frame after ours.
    - ``trace``: trace every connection (see ``websync.trace``).
    - ``ping_interval``, ``ping_timeout``: keepalive pings, as for clients (None: off).
    - ``ssl``: an :class:`ssl.SSLContext` (``PROTOCOL_TLS_SERVER``) to serve wss://, used as given;
      offer no ALPN protocol but http/1.1 in it (a client that picks h2 is refused).
    - ``process_request``: called with each request before any upgrade; returns None to go on,
      or a response to send instead (see :mod:`websync.server_http`). Without it, a request
      that asks for no upgrade gets 426.
    - ``max_queue``, ``overflow``: the bound on each connection's queue of messages sent with
      ``worker.send`` or :meth:`Server.broadcast`, and what happens past it: ``"close"`` (with
      1008), ``"drop_oldest"`` or ``"drop_newest"``.
    - ``reuse_port``: set SO_REUSEPORT, so that several processes listen on the same port.
    - ``handle_signals``: drain on SIGTERM and SIGINT (see :meth:`Server.drain`); only in the
      main thread, and it replaces the process's handlers of both signals.
    - ``drain_timeout``: the seconds a drain started by a signal gives connections.
    """

    subprotocols: Sequence[str] = ()
    compression: Literal["deflate"] | ServerPerMessageDeflate | None = "deflate"
    extensions: Sequence[ServerExtensionFactory] = ()
    max_size: int | None = DEFAULT_MAX_SIZE
    max_connections: int | None = None
    handshake_timeout: float | None = 10.0
    origins: Collection[str | None] | None = None
    close_timeout: float | None = 10.0
    trace: bool = False
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    ssl: SSLContext | None = None
    process_request: ProcessRequest | None = None
    max_queue: int | None = 10_000
    overflow: Overflow = "close"
    reuse_port: bool = False
    handle_signals: bool = False
    drain_timeout: float | None = 30.0

    def handshake(self) -> ServerHandshake:
        """The sans-IO handshake that checks and answers upgrade requests with these options."""
        return ServerHandshake(
            subprotocols=self.subprotocols,
            extensions=extension_factories(self.compression, self.extensions, Role.SERVER),
            origins=self.origins,
        )

    def worker_options(self) -> WorkerOptions:
        """The options every connection's worker gets."""
        return WorkerOptions(
            ConnectOptions(max_size=self.max_size, close_timeout=self.close_timeout, trace=self.trace),
            KeepaliveOptions(ping_interval=self.ping_interval, ping_timeout=self.ping_timeout),
            max_queue=self.max_queue,
            overflow=self.overflow,
        )


HandlerFactory = Callable[[], ServerHandler]


class Server:
    """A running WebSocket server; create it with :func:`serve`. A context manager that stops it."""

    def __init__(self, handler_factory: HandlerFactory, host: str, port: int, options: ServerOptions) -> None:
        self.handler_factory = handler_factory
        self.options = options
        handshake = options.handshake()
        self.listener = socket.create_server((host, port), backlog=socket.SOMAXCONN, reuse_port=options.reuse_port)
        self.listener.setblocking(False)
        self.host, self.port = self.listener.getsockname()[:2]
        self._settings = ConnectionSettings(
            handshake,
            options.handshake_timeout,
            options.max_size,
            (self.host, self.port),
            options.ssl,
            options.process_request,
        )
        self._ids = itertools.count(1)
        self._stop_lock = threading.Lock()
        self._hurry = threading.Event()
        self._connections: DynamicSupervisor | None = None
        self.supervisor = Supervisor(
            [
                ChildSpec("connections", self._start_connections, shutdown=None, type="supervisor"),
                ChildSpec("acceptor", self._start_acceptor, shutdown=5.0),
            ],
            strategy="rest_for_one",
        )
        """The root of the server's supervision tree."""

    def start(self) -> Self:
        """Start accepting connections; returns once the server listens."""
        try:
            if self.options.handle_signals:
                drain_on_signals(lambda: self.drain(self.options.drain_timeout), self._hurry.set)
            self.supervisor.start()
        except BaseException:
            self.listener.close()
            raise
        return self

    @property
    def secure(self) -> bool:
        """Whether the server serves wss:// (``ssl`` was given)."""
        return self.options.ssl is not None

    @property
    def connections(self) -> list[Worker]:
        """The workers of the current connections (including those still in their handshake)."""
        if self._connections is None:
            return []
        try:
            children = self._connections.which_children()
        except NotRunningError:
            return []
        return [process for _, process, _ in children if isinstance(process, Worker)]

    @property
    def open_connections(self) -> list[Worker]:
        """The workers of the connections past their opening handshake (still open or closing)."""
        return [worker for worker in self.connections if _opened(worker)]

    def broadcast(
        self,
        message: str | bytes | bytearray | memoryview | Frame,
        *,
        exclude: Worker | Collection[Worker] | None = None,
    ) -> int:
        """Queue ``message`` to every open connection but ``exclude`` (e.g. ``self.worker`` in a
        handler); returns the number of connections it was queued to. Never blocks: a slow
        connection's queue is bounded by ``max_queue``, past which its ``overflow`` policy applies.
        """
        return broadcast(self.open_connections, message, exclude)

    def drain(self, timeout: float | None = 30.0) -> None:
        """Stop accepting at once and close the listening socket; let the open connections run up
        to ``timeout`` seconds, then close the rest with 1001 (going away); return when all are gone.

        Each open connection's handler gets a :class:`Draining` in ``handle_info`` first;
        connections still in their opening handshake are dropped at once. The server is stopped
        afterwards (:meth:`join` returns). Idempotent; another thread's :meth:`stop` during a
        drain closes the rest at once. Called from a connection's callback, it runs in a thread of
        its own and returns at once (the connection cannot wait for its own end).
        """
        if self._in_own_connection():
            self._in_background(self.drain, timeout)
            return
        with self._stop_lock:
            if not self._stop_accepting():
                return
            self.listener.close()  # at once: new clients are refused, and a load balancer moves on
            drain_workers(lambda: self.connections, timeout, opened=_opened, hurry=self._hurry)
            self.supervisor.stop("shutdown", 5.0)

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, close every connection with 1001 (going away) and wait for them.

        Connections still open after ``timeout`` seconds (None: close_timeout and one second for
        them to end, even if a callback never returns) are killed. Idempotent. Called from a
        connection's callback, it runs in a thread of its own and returns at once.
        """
        if self._in_own_connection():
            self._in_background(self.stop, timeout)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        self._hurry.set()  # a drain in progress closes what is left now
        with self._stop_lock:
            if not self._stop_accepting():
                return
            self.listener.close()  # at once: new clients are refused, not reset after the closes
            close_all(self.connections, timeout)
            self.supervisor.stop("shutdown", None if deadline is None else max(deadline - time.monotonic(), 0))

    def _in_own_connection(self) -> bool:
        """Whether the calling thread is one of this server's connections."""
        return current_process() in self.connections

    def _in_background(self, stop: Callable[[float | None], None], timeout: float | None) -> None:
        threading.Thread(target=stop, args=(timeout,), name=f"websync-server-{self.port}-stop", daemon=True).start()

    def _stop_accepting(self) -> bool:
        """Under the stop lock: end the acceptor; False (and the listener closed) if the server is stopped."""
        if not self.supervisor.is_alive():
            self.listener.close()
            return False
        try:
            self.supervisor.terminate_child("acceptor")
        except NotRunningError:
            pass
        return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the server has stopped; True if it has."""
        return self.supervisor.join(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- the tree's start functions --------------------------------------------------------------

    def _start_connections(self) -> DynamicSupervisor:
        self._connections = DynamicSupervisor(max_children=self.options.max_connections, max_restarts=0).start()
        return self._connections

    def _start_acceptor(self) -> Acceptor:
        return Acceptor(self.listener, self._start_connection).start()

    def _start_connection(self, sock: socket.socket, address: Any) -> bool:
        """Start the worker of an accepted socket; False at max_connections."""
        assert self._connections is not None
        close_timeout = self.options.close_timeout
        spec = ChildSpec(
            ("connection", next(self._ids)),
            lambda: ConnectionWorker(
                sock, address, self.handler_factory(), self._settings, self.options.worker_options()
            ).start(),
            restart="temporary",
            shutdown=None if close_timeout is None else close_timeout + 1,
        )
        try:
            self._connections.start_child(spec)
        except MaxChildrenError:
            return False
        return True


def _opened(worker: Worker) -> bool:
    """Whether a connection's handler accepted it (``init`` ran and did not refuse)."""
    return isinstance(worker.handler, HandlerAdapter) and worker.handler.opened


def serve(handler_factory: HandlerFactory, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Server:
    """Start a WebSocket server on ``host``:``port`` (0: any free port, see ``server.port``).

    ``handler_factory`` (a :class:`ServerHandler` subclass, or any callable returning one) makes
    the handler of each connection. Options are those of :class:`ServerOptions`; an unknown
    option raises ``TypeError``.
    """
    return Server(handler_factory, host, port, ServerOptions(**options)).start()
