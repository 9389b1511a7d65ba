"""websync: a thread-based, synchronous WebSocket client with OTP-style supervision."""

from supervisors import __version__ as __version__

from .core.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ExtendedConnectDisabled,
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    OpenTimeout,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    TransportError,
    WebSocketError,
)
from .core.frames import Binary, Close, CloseCode, Frame, Ping, Pong, Text
from .core.handshake import Response
from .core.headers import Headers
from .embedding import ProcessTree
from .introspection import get_state, statistics, trace
from .net.tracing import install_trace_signal, trace_all
from .rpc import Correlated, WorkerNotFound, request
from .server.drain import Draining
from .server.handler import Reject, ServerHandler
from .server.http_response import HTTPResponse
from .server.serving import Server, serve
from .worker.client import ClientConnection, connect
from .worker.handler import Handler, Reconnect, Stop, backoff
from .worker.outbox import QueueFull
from .worker.supervision import child_spec
from .worker.worker import Worker, start

__all__ = [
    "connect",
    "ClientConnection",
    "start",
    "child_spec",
    "request",
    "Correlated",
    "WorkerNotFound",
    "ProcessTree",
    "serve",
    "Server",
    "ServerHandler",
    "Reject",
    "Draining",
    "HTTPResponse",
    "Worker",
    "QueueFull",
    "Handler",
    "Reconnect",
    "Stop",
    "backoff",
    "Text",
    "Binary",
    "Ping",
    "Pong",
    "Close",
    "CloseCode",
    "Frame",
    "Response",
    "Headers",
    "trace",
    "trace_all",
    "install_trace_signal",
    "get_state",
    "statistics",
    "WebSocketError",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidHeader",
    "InvalidURI",
    "NegotiationError",
    "ExtendedConnectDisabled",
    "OpenTimeout",
    "TransportError",
    "ProxyError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
]
