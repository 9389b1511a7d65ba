"""The WSGI bridge: a view of a WSGI app (Flask, Django, plain WSGI) accepts a WebSocket.

:func:`accept` takes the request a WSGI server has parsed, checks it with the server's sans-IO
handshake, runs the connection with a :class:`~websync.ServerHandler` on the socket the server
lends (``environ["gunicorn.socket"]`` or ``environ["werkzeug.socket"]``) and returns, once the
connection is over, an :class:`UpgradeResponse` to give back to the server::

    @app.route("/ws")
    def ws():
        return websync.wsgi.accept(request.environ, EchoHandler)

How the server is kept from writing a response of its own: the 101 goes out on the raw socket,
the connection runs in a worker thread on a duplicate of the socket while the server's request
thread waits for it, and when it is over the socket is shut down. The response handed back (status
101, no body) then meets a dead socket; gunicorn (gthread) and werkzeug's development server both
take that as a client that went away and log the request with status 101. A refused upgrade
(400, 403, 426, or the handler's :class:`~websync.Reject`) is an ordinary response the server
writes itself.

Supported: gunicorn's gthread worker and werkzeug's development server (``threaded=True``, the
default of ``flask run``), over plain HTTP/1.1. Each open WebSocket holds one of the server's
request threads (gunicorn: one of ``--threads``) for its whole life, plus its own worker thread.
Not supported, and refused with :class:`UnsupportedServer`: servers that do not lend the socket
(Django's ``runserver``, wsgiref, uWSGI, mod_wsgi), servers that serve one request at a time
(gunicorn's sync worker, whose arbiter kills a worker that stays in one request past
``--timeout``), and TLS sockets (terminate TLS in a proxy in front). See docs/server.md.

Graceful exit: :func:`drain` drains every WebSocket the bridge serves in this process (each
handler gets :class:`~websync.Draining`, the rest close with 1001 after the timeout). Under
gunicorn, set the hook ``post_worker_init = websync.wsgi.drain_on_graceful_exit`` in the config
file: a worker's SIGTERM (a graceful stop, reload or upgrade) then drains its WebSockets within
half of ``--graceful-timeout`` and the worker exits in time, instead of being killed with them;
``post_worker_init = websync.wsgi.drain_hook(seconds)`` gives them ``seconds`` instead.
"""

from __future__ import annotations

import http
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from urllib.parse import quote

from supervisors import ChildSpec, DynamicSupervisor, MaxChildrenError, StartError

from .core.handshake import Response
from .core.headers import Headers
from .core.server_handshake import InvalidRequest, Request, error_response
from .net.transport import shut_down
from .server.connection_worker import ConnectionSettings, ConnectionWorker, HandlerAdapter
from .server.drain import drain_workers
from .server.handler import ServerHandler
from .server.serving import HandlerFactory, ServerOptions
from .worker.options import WorkerOptions
from .worker.worker import Worker

__all__ = [
    "UnsupportedServer",
    "UpgradeResponse",
    "accept",
    "drain",
    "drain_hook",
    "drain_on_graceful_exit",
    "request_from_environ",
]

logger = logging.getLogger("websync.server")

SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")
"""The environ keys under which the supported servers lend the connection's socket."""
NOT_APPLICABLE = frozenset(
    {
        "max_connections",
        "handshake_timeout",
        "ssl",
        "process_request",
        "reuse_port",
        "handle_signals",
        "drain_timeout",
    }
)
"""Options of :func:`websync.serve` that belong to the WSGI server here (pass ``supervisor`` to bound connections)."""

WSGIStartResponse = Callable[..., Any]


class UnsupportedServer(RuntimeError):
    """The WSGI server running the app cannot hand a connection over to a WebSocket."""


@dataclass(frozen=True)
class UpgradeResponse:
    """What :func:`accept` hands back: a WSGI application answering the request.

    Return it from a Flask view, or call it in a plain WSGI app
    (``return accept(environ, Handler)(environ, start_response)``). Frameworks that need their own
    response objects (Django) build one from ``status``, ``headers`` and ``body``. When
    ``upgraded`` is true the WebSocket has come and gone and nothing the server writes reaches
    the client.
    """

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def from_response(cls, response: Response) -> UpgradeResponse:
        """A refusal built by the handshake; ``Connection`` is left to the WSGI server (hop-by-hop)."""
        headers = [(name, value) for name, value in response.headers.items() if name.lower() != "connection"]
        return cls(response.status, response.reason, headers, response.body)

    @property
    def upgraded(self) -> bool:
        """True if the request became a WebSocket (which is over now)."""
        return self.status == 101

    def __call__(self, environ: dict[str, Any], start_response: WSGIStartResponse) -> Iterable[bytes]:
        start_response(f"{self.status} {self.reason or http.HTTPStatus(self.status).phrase}", self.headers)
        return [self.body] if self.body else []


SWITCHED = UpgradeResponse(101, "Switching Protocols")
UNAVAILABLE = error_response(503, b"this server is shutting down", {"Retry-After": "1"})


class _Bridged:
    """The WebSockets the bridge serves in this process, for :func:`drain`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: set[Worker] = set()
        self.draining = False

    def add(self, worker: Worker) -> None:
        with self._lock:
            self._workers.add(worker)

    def remove(self, worker: Worker) -> None:
        with self._lock:
            self._workers.discard(worker)

    def list(self) -> list[Worker]:
        with self._lock:
            return list(self._workers)


_bridged = _Bridged()


class BridgeWorker(ConnectionWorker):
    """A connection worker whose upgrade request the WSGI server has read already.

    It answers only the 101 on the socket; a refusal is kept in ``answer`` for the WSGI server
    to write, since the server still owns the connection then.
    """

    def __init__(
        self,
        sock: socket.socket,
        request: Request,
        address: Any,
        handler: ServerHandler,
        settings: ConnectionSettings,
        options: WorkerOptions,
    ) -> None:
        super().__init__(sock, address, handler, settings, options)
        self.request = request
        self.answer: Response | None = None
        """The response the WSGI server should send instead of the 101, if the upgrade was refused."""

    def _read_request(self, deadline: float | None) -> tuple[Request, bytes]:
        return self.request, b""

    def _respond(self, response: Response, deadline: float | None) -> None:
        if response.status == 101:
            super()._respond(response, deadline)
        else:
            self.answer = response


def accept(
    environ: dict[str, Any],
    handler_factory: HandlerFactory,
    *,
    supervisor: DynamicSupervisor | None = None,
    **options: Any,
) -> UpgradeResponse:
    """Serve the WebSocket asked for by the request of ``environ``; return once it is over.

    ``handler_factory`` makes the connection's :class:`~websync.ServerHandler`, as for
    :func:`websync.serve`. Options are those of :func:`websync.serve` but ``max_connections`` and
    ``handshake_timeout`` (the WSGI server has read the request, and its threads bound the
    connections). With ``supervisor``, the connection's worker is its temporary child: its
    ``max_children`` bounds the connections (past it, 503, as when no thread can start) and
    stopping it closes them with 1001.

    Returns an :class:`UpgradeResponse`: the refusal (status 400, 403, 405, 426, the handler's
    :class:`~websync.Reject`, 500 if ``init`` raised) or, after the WebSocket, a 101 the server
    cannot write any more. Raises :class:`UnsupportedServer` when the WSGI server cannot lend
    its connection, ``TypeError`` for an unknown or inapplicable option.
    """
    if NOT_APPLICABLE & options.keys():
        raise TypeError(f"{', '.join(sorted(NOT_APPLICABLE & options.keys()))}: not an option of a WSGI upgrade")
    server_options = ServerOptions(**options)
    sock = lent_socket(environ)
    try:
        request = request_from_environ(environ)
    except InvalidRequest as refusal:
        return UpgradeResponse.from_response(refusal.response)
    local_address = (environ["SERVER_NAME"], int(environ["SERVER_PORT"]))
    settings = ConnectionSettings(server_options.handshake(), None, server_options.max_size, local_address)
    address = (environ.get("REMOTE_ADDR", ""), int(environ.get("REMOTE_PORT") or 0))
    timeout = sock.gettimeout()
    own = sock.dup()  # the worker closes its own descriptor; the server's stays valid for the server
    try:
        own.setblocking(False)  # the file status flags are shared: restored below
        own.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        if _bridged.draining:
            own.close()
            return UpgradeResponse.from_response(UNAVAILABLE)

        def start() -> BridgeWorker:
            worker = BridgeWorker(own, request, address, handler_factory(), settings, server_options.worker_options())
            _bridged.add(worker)
            try:
                return worker.start()
            except BaseException:
                _bridged.remove(worker)
                raise

        close_timeout = server_options.close_timeout
        spec = ChildSpec(
            "websocket", start, restart="temporary", shutdown=None if close_timeout is None else close_timeout + 1
        )
        try:
            child = start() if supervisor is None else supervisor.start_child(spec)
        except (MaxChildrenError, StartError):  # full, or no thread could start
            own.close()
            return UpgradeResponse.from_response(error_response(503, b"too many connections", {"Retry-After": "1"}))
        except BaseException:
            own.close()  # no worker took it: the supervisor stopped
            raise
        assert isinstance(child, BridgeWorker)
        worker = child
        try:
            worker.join()
        finally:
            _bridged.remove(worker)
        if worker.answer is not None:
            return UpgradeResponse.from_response(worker.answer)
        shut_down(sock)
        return SWITCHED
    finally:
        sock.settimeout(timeout)


def drain(timeout: float | None = 10.0) -> None:
    """Drain the WebSockets the bridge serves in this process; return when all are gone.

    New upgrades get 503 from now on; each open connection's handler gets
    :class:`~websync.Draining` in ``handle_info``; those still open after ``timeout`` seconds
    close with 1001 (going away).
    """
    _bridged.draining = True
    drain_workers(_bridged.list, timeout, opened=lambda w: isinstance(w.handler, HandlerAdapter) and w.handler.opened)


def drain_hook(timeout: float | None = None) -> Callable[[Any], None]:
    """A gunicorn ``post_worker_init`` hook: on the worker's SIGTERM, :func:`drain` in a thread,
    giving the WebSockets ``timeout`` seconds (None: half of the worker's ``graceful_timeout``).

    What is left of ``graceful_timeout`` after ``timeout`` is what the 1001 closes get before
    gunicorn kills the worker: a ``timeout`` of ``graceful_timeout`` or more raises
    ``ValueError`` when the worker boots (gunicorn reports that it failed to boot), a negative one
    at once. gunicorn's own SIGTERM handler (stop accepting, wait for requests) still runs first.
    """
    if timeout is not None and timeout < 0:
        raise ValueError(f"the drain timeout must not be negative, not {timeout}")

    def hook(worker: Any) -> None:
        _drain_on_sigterm(_drain_seconds(timeout, float(worker.cfg.graceful_timeout)))

    return hook


def drain_on_graceful_exit(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook that drains for half of ``graceful_timeout`` (see
    :func:`drain_hook`): put ``post_worker_init = websync.wsgi.drain_on_graceful_exit`` in the
    gunicorn config file."""
    drain_hook()(worker)


def _drain_seconds(timeout: float | None, graceful_timeout: float) -> float:
    """The drain's timeout in a worker whose ``graceful_timeout`` is given; ValueError if it leaves
    no time for the 1001 closes."""
    if timeout is None:
        return graceful_timeout / 2
    if timeout >= graceful_timeout:
        raise ValueError(
            f"a drain of {timeout}s leaves no time for the 1001 closes within gunicorn's graceful_timeout"
            f" ({graceful_timeout}s), after which the worker is killed: lower it or raise graceful_timeout"
        )
    return timeout


def _drain_on_sigterm(seconds: float) -> None:
    """Chain a handler to the process's SIGTERM handler that drains for ``seconds`` (once)."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        if not _bridged.draining:
            logger.info("SIGTERM: draining %d WebSocket(s) for up to %ss", len(_bridged.list()), seconds)
            threading.Thread(target=drain, args=(seconds,), name="websync-wsgi-drain").start()

    signal.signal(signal.SIGTERM, on_sigterm)


def lent_socket(environ: dict[str, Any]) -> socket.socket:
    """The connection's socket the WSGI server lends in ``environ``; :class:`UnsupportedServer` if none can serve."""
    server = environ.get("SERVER_SOFTWARE") or "this WSGI server"
    sock: socket.socket | None = next(
        (environ[key] for key in SOCKET_KEYS if isinstance(environ.get(key), socket.socket)), None
    )
    if sock is None:
        raise UnsupportedServer(
            f"{server} does not lend the connection's socket (environ['gunicorn.socket'] or"
            " environ['werkzeug.socket']): run the app under gunicorn -k gthread or werkzeug's server"
        )
    if isinstance(sock, ssl.SSLSocket):
        raise UnsupportedServer(f"{server} serves this request over TLS: terminate TLS in a proxy in front of it")
    if not environ.get("wsgi.multithread"):
        raise UnsupportedServer(
            f"{server} serves one request at a time here (gunicorn's sync worker, a server without threads):"
            " a WebSocket would hold it for its whole life; use gunicorn -k gthread or werkzeug with threaded=True"
        )
    return sock


def request_from_environ(environ: dict[str, Any]) -> Request:
    """The request a WSGI server parsed, as the handshake's :class:`~websync.core.server_handshake.Request`.

    Header names come back title-cased (lookups are case-insensitive); repeated headers are one
    comma-joined value, as the server gives them. Raises :class:`InvalidRequest` (400) for a
    request that is not HTTP/1.1 (an HTTP/2 stream has no socket of its own to take over).
    """
    protocol = environ.get("SERVER_PROTOCOL", "")
    if protocol != "HTTP/1.1":
        raise InvalidRequest(400, f"WebSocket needs HTTP/1.1, not {protocol[:16]!r}")
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.add(key[5:].replace("_", "-").title(), value)
    path = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not path:
        target = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
        query = environ.get("QUERY_STRING")
        path = quote(target) + (f"?{query}" if query else "")
    return Request(environ["REQUEST_METHOD"], path, headers)
