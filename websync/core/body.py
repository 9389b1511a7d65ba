"""The body of a refused HTTP/1.1 upgrade: by Content-Length, by chunks or to EOF, kept bounded."""

from __future__ import annotations

from .errors import InvalidHandshake, InvalidHeader
from .headers import Headers

__all__ = ["BodyReader", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 64 * 1024
"""Bound on the body kept from a refused upgrade."""
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class BodyReader:
    """Collects a response body as its headers frame it, keeping at most MAX_BODY_BYTES."""

    def __init__(self, length: int | None, chunked: bool) -> None:
        self.length = length
        self.chunked = chunked
        self.body = bytearray()
        self._pending = bytearray()

    @classmethod
    def for_response(cls, status: int, headers: Headers) -> BodyReader:
        """1xx, 204 and 304 have no body; otherwise chunked, Content-Length, or read to EOF."""
        if 100 <= status < 200 or status in (204, 304):
            return cls(0, chunked=False)
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            return cls(None, chunked=True)
        value = headers.get("Content-Length")
        if value is None:
            return cls(None, chunked=False)
        if not value.strip().isdigit():
            raise InvalidHeader(f"invalid Content-Length {value!r}")
        return cls(int(value), chunked=False)

    @property
    def complete(self) -> bool:
        """True once the whole body arrived or the bound is reached (EOF also ends a body)."""
        if len(self.body) >= MAX_BODY_BYTES:
            return True
        return not self.chunked and self.length is not None and len(self.body) >= self.length

    def feed(self, data: bytes | bytearray) -> bool:
        """Take body bytes; returns :attr:`complete` (a chunked body: once its last chunk arrived)."""
        if not self.chunked:
            limit = MAX_BODY_BYTES if self.length is None else min(self.length, MAX_BODY_BYTES)
            self.body += data[: limit - len(self.body)]  # bytes past Content-Length are not the body
            return self.complete
        self._pending += data
        return self._read_chunks() or self.complete

    def _read_chunks(self) -> bool:
        pending = self._pending
        while True:
            line_end = pending.find(b"\r\n")
            if line_end < 0:
                return False
            size_text = bytes(pending[:line_end]).split(b";")[0].strip()
            if not size_text or not set(size_text) <= _HEX_DIGITS:  # int() would take "-ff", "0x5", "1_0"
                raise InvalidHandshake(f"invalid chunk size {size_text[:20]!r} in the response body")
            size = int(size_text, 16)
            if size == 0:
                return True
            chunk_end = line_end + 2 + size
            if len(pending) < chunk_end + 2:
                return False
            self.body += pending[line_end + 2 : chunk_end][: MAX_BODY_BYTES - len(self.body)]
            del pending[: chunk_end + 2]
