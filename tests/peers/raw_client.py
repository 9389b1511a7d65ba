"""A raw-socket WebSocket client for byte-level tests of servers: it writes exactly the bytes a test
asks for (several frames in one ``send``, a close glued to messages, a peer that stops reading) and
reads back what the server put on the wire."""

from __future__ import annotations

import base64
import os
import socket
import struct
from typing import Self

from .raw_server import OP_CLOSE, Frame, accept_key

__all__ = ["RawClient", "masked_frame"]

IO_TIMEOUT = 5.0


def masked_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A client frame, masked with a random key as RFC 6455 requires."""
    key = os.urandom(4)
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = struct.pack("!BB", first, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes((key * (size // 4 + 1))[:size], "big")).to_bytes(
        size, "big"
    )
    return header + key + masked


class RawClient:
    """A TCP connection to ``host:port`` that has done the opening handshake for ``path``."""

    def __init__(self, host: str, port: int, path: str = "/", *, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if receive_buffer is not None:  # before connect(): the window is advertised at the handshake
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.connect((host, port))
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._read()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101") or accept_key(key).encode() not in head:
            raise ConnectionError(f"the upgrade failed: {head!r}")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        return data

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._read()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_frame(self) -> Frame:
        """The server's next frame (servers do not mask)."""
        first, second = self._read_exactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exactly(8))
        return Frame(
            bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, bool(second & 0x80), self._read_exactly(length)
        )

    def frames_until_close(self) -> list[Frame]:
        """Every frame up to and including the server's close frame."""
        frames = [self.read_frame()]
        while frames[-1].opcode != OP_CLOSE:
            frames.append(self.read_frame())
        return frames

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
