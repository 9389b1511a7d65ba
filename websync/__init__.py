"""websync: a thread-based, synchronous WebSocket client with OTP-style supervision."""

from supervisors._version import __version__ as __version__

from .client import ClientConnection, connect
from .embedding import ProcessTree
from .errors import (
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
from .frames import Binary, Close, CloseCode, Frame, Ping, Pong, Text
from .handler import Handler, Reconnect, Stop, backoff
from .handshake import Response
from .headers import Headers
from .introspection import get_state, statistics, trace
from .rpc import Correlated, WorkerNotFound, request
from .server import Draining, HTTPResponse, Reject, Server, ServerHandler, serve
from .supervision import child_spec
from .tracing import install_trace_signal, trace_all
from .worker import QueueFull, Worker, start

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
