"""The WebSocket server: :class:`ServerHandler` (the WebSock behaviour), :func:`serve` and :class:`Server`.

Each connection has its own worker thread, the same :class:`~websync.worker.worker.Worker` as a
client's, which does the opening handshake (bounded by ``handshake_timeout``) and then calls the
handler. The server is a supervision tree::

    Supervisor (rest_for_one)
    ├── DynamicSupervisor "connections": one temporary child per connection (max_connections)
    └── Acceptor: accepts sockets and starts their workers under "connections"

so ``websync.trace(worker, True)`` and ``websync.statistics(worker)`` work on connections, and
``server.stop()`` closes every connection with 1001 (going away).

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
from types import TracebackType
from typing import Any, Literal, Self

from supervisors import (
    ChildSpec,
    DynamicSupervisor,
    MaxChildrenError,
    NotRunningError,
    Supervisor,
)

from ..core.protocol import DEFAULT_MAX_SIZE, Role
from ..core.server_handshake import Request, ServerHandshake
from ..extensions.base import ServerExtensionFactory
from ..extensions.factories import extension_factories
from ..extensions.permessage_deflate import ServerPerMessageDeflate
from ..worker.worker import Worker
from .connection_worker import Acceptor, ConnectionSettings, ConnectionWorker
from .handler import ServerHandler

__all__ = ["Request", "Server", "ServerOptions", "serve"]


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
    - ``ping_interval``, ``ping_timeout``: keepalive pings, as for clients.
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
    ping_interval: float | None = None
    ping_timeout: float | None = 20.0

    def handshake(self) -> ServerHandshake:
        """The sans-IO handshake that checks and answers upgrade requests with these options."""
        return ServerHandshake(
            subprotocols=self.subprotocols,
            extensions=extension_factories(self.compression, self.extensions, Role.SERVER),
            origins=self.origins,
        )

    def worker_options(self) -> dict[str, Any]:
        """The options every connection's worker gets."""
        return {
            "max_size": self.max_size,
            "close_timeout": self.close_timeout,
            "trace": self.trace,
            "ping_interval": self.ping_interval,
            "ping_timeout": self.ping_timeout,
        }


HandlerFactory = Callable[[], ServerHandler]


class Server:
    """A running WebSocket server; create it with :func:`serve`. A context manager that stops it."""

    def __init__(self, handler_factory: HandlerFactory, host: str, port: int, options: ServerOptions) -> None:
        self.handler_factory = handler_factory
        self.options = options
        handshake = options.handshake()
        self.listener = socket.create_server((host, port), backlog=socket.SOMAXCONN)
        self.listener.setblocking(False)
        self.host, self.port = self.listener.getsockname()[:2]
        self._settings = ConnectionSettings(
            handshake, options.handshake_timeout, options.max_size, (self.host, self.port)
        )
        self._ids = itertools.count(1)
        self._stop_lock = threading.Lock()
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
            self.supervisor.start()
        except BaseException:
            self.listener.close()
            raise
        return self

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

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, close every connection with 1001 (going away) and wait for them.

        Connections still open after ``timeout`` seconds (None: each waits up to close_timeout
        for its client) are killed. Idempotent.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._stop_lock:
            if not self.supervisor.is_alive():
                self.listener.close()
                return
            try:
                self.supervisor.terminate_child("acceptor")
            except NotRunningError:
                pass
            workers = self.connections
            for worker in workers:
                worker.request_stop("shutdown")  # all of them close at once
            for worker in workers:
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
                if not worker.join(remaining):
                    worker.kill()
            self.supervisor.stop("shutdown", None if deadline is None else max(deadline - time.monotonic(), 0))
            self.listener.close()

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
                sock, address, self.handler_factory(), self._settings, **self.options.worker_options()
            ).start(),
            restart="temporary",
            shutdown=None if close_timeout is None else close_timeout + 1,
        )
        try:
            self._connections.start_child(spec)
        except MaxChildrenError:
            return False
        return True


def serve(handler_factory: HandlerFactory, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Server:
    """Start a WebSocket server on ``host``:``port`` (0: any free port, see ``server.port``).

    ``handler_factory`` (a :class:`ServerHandler` subclass, or any callable returning one) makes
    the handler of each connection. Options are those of :class:`ServerOptions`; an unknown
    option raises ``TypeError``.
    """
    return Server(handler_factory, host, port, ServerOptions(**options)).start()
