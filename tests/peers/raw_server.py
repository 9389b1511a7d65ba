"""A scripted raw TCP peer for hostile or broken servers.

:class:`RawServer` listens on 127.0.0.1 (optionally with TLS) and runs ``script(peer)`` in a thread
for every accepted connection, where ``peer`` is a :class:`PeerConnection`: the socket plus helpers
to read the upgrade request, answer it, write arbitrary frames and read (and unmask) what the
client sends back. What each script returns (or raises) is kept for the test: :meth:`RawServer.result`.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Frame", "PeerConnection", "RawServer", "accept_key", "close_payload"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IO_TIMEOUT = 5.0
THREAD_PREFIX = "raw-peer"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def close_payload(code: int, reason: str | bytes = b"") -> bytes:
    reason = reason.encode() if isinstance(reason, str) else reason
    return struct.pack("!H", code) + reason


@dataclass(frozen=True)
class Frame:
    """A frame as the client put it on the wire; ``payload`` is already unmasked."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == OP_CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


@dataclass
class Request:
    request_line: str
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""

    @property
    def path(self) -> str:
        return self.request_line.split(" ")[1]


class PeerConnection:
    """One accepted connection, seen from the server side."""

    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server
        self.buffer = b""
        self.request: Request | None = None
        self.frames: list[Frame] = []
        """Every frame read from the client so far."""

    # -- bytes --------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the client closed the connection")
        return data

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._read()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_eof(self) -> bool:
        """Wait for the client to close TCP (True) while discarding data; False on timeout."""
        try:
            while self.sock.recv(65536):
                pass
        except (TimeoutError, OSError):
            return False
        return True

    def wait_stop(self) -> None:
        """Stay silent until the test ends."""
        self.server.stopping.wait()

    # -- HTTP ---------------------------------------------------------------------------------

    def read_request(self) -> Request:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._read()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        request_line, *lines = head.decode("iso-8859-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.request = Request(request_line, headers)
        self.server.requests.put(self.request)
        return self.request

    def respond(self, status: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> None:
        lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def handshake(
        self,
        extra_headers: Sequence[tuple[str, str]] = (),
        *,
        accept: str | None = None,
    ) -> Request:
        """Read the upgrade request and answer 101 (``accept`` overrides the right key)."""
        request = self.read_request()
        key = request.headers["sec-websocket-key"]
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept if accept is not None else accept_key(key)),
            *extra_headers,
        ]
        self.respond("101 Switching Protocols", headers)
        return request

    # -- frames -------------------------------------------------------------------------------

    @staticmethod
    def encode_frame(
        opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, length: int | None = None
    ) -> bytes:
        """An unmasked server frame; ``rsv`` is the 3 RSV bits (4: RSV1); ``length`` may lie."""
        size = len(payload) if length is None else length
        first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode
        if size < 126:
            header = struct.pack("!BB", first, size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", first, 126, size)
        else:
            header = struct.pack("!BBQ", first, 127, size)
        return header + payload

    def send_frame(self, opcode: int, payload: bytes = b"", **options: Any) -> None:
        self.send(self.encode_frame(opcode, payload, **options))

    def read_frame(self) -> Frame:
        first, second = self.read_exactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.read_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.read_exactly(8))
        masked = bool(second & 0x80)
        mask = self.read_exactly(4) if masked else b""
        payload = self.read_exactly(length)
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frame = Frame(bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, masked, payload)
        self.frames.append(frame)
        return frame

    def expect_close(self, *, echo: bool = False) -> Frame:
        """Read frames until the client's close frame and return it (optionally echo it)."""
        while True:
            frame = self.read_frame()
            if frame.opcode == OP_CLOSE:
                if echo:
                    self.send_frame(OP_CLOSE, frame.payload[:2])
                return frame


Script = Callable[[PeerConnection], Any]


class RawServer:
    """Listens on 127.0.0.1, port 0; runs ``script`` for each accepted connection in a thread."""

    def __init__(self, script: Script, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self.connections = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name=f"{THREAD_PREFIX}-accept-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self.stopping.is_set():
                    sock.close()
                    return
                self.connections += 1
                self._sockets.append(sock)
                thread = threading.Thread(
                    target=self._run, args=(sock,), name=f"{THREAD_PREFIX}-{self.port}-{self.connections}", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(IO_TIMEOUT)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                with self._lock:
                    self._sockets.append(sock)
            result = self.script(PeerConnection(sock, self))
        except BaseException as exc:  # noqa: BLE001 - handed to the test through result()
            self.results.put((False, exc))
        else:
            self.results.put((True, result))
        finally:
            sock.close()

    def result(self, timeout: float = IO_TIMEOUT) -> Any:
        """What the next finished script returned; re-raises what it raised."""
        ok, value = self.results.get(timeout=timeout)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self.stopping.set()
        # Closing a socket does not wake a thread blocked in accept(): connect to wake it.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._acceptor.join(IO_TIMEOUT)
        self.listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in threads:
            thread.join(IO_TIMEOUT)
