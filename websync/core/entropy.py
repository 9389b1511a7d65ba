"""Random bytes for client mask keys, handshake keys and ping payloads, drawn from ``os.urandom``
in pools that the whole process shares: one system call per thousand keys rather than a few per
connection (each lets go of the GIL, which a thread starting workers among a thousand busy ones
gets back last)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

__all__ = ["POOL_SIZE", "RandomPool", "mask_key", "random_bytes"]

POOL_SIZE = 4096
"""Bytes of ``os.urandom`` drawn at a time: 1,024 mask keys."""
_KEY = struct.Struct("4s")


class RandomPool:
    """Fresh random 4-byte keys from a pool of ``os.urandom`` bytes, refilled when used up.

    Safe to use from several threads: taking a key is one step of a C iterator, and two threads
    refilling at once at worst draw one pool too many (no key is handed out twice). A forked
    child draws a pool of its own before its first key: it never repeats its parent's.
    """

    def __init__(self, size: int = POOL_SIZE) -> None:
        self._size = size
        self._keys: Iterator[tuple[bytes]] = iter(())

    def mask_key(self) -> bytes:
        """Four random bytes, never handed out before."""
        try:
            return next(self._keys)[0]
        except StopIteration:
            self._keys = _KEY.iter_unpack(os.urandom(self._size))
            return next(self._keys)[0]

    def random_bytes(self, count: int) -> bytes:
        """``count`` random bytes, never handed out before."""
        keys = -(-count // _KEY.size)
        return b"".join([self.mask_key() for _ in range(keys)])[:count]

    def forget(self) -> None:
        """Drop the pool's remaining bytes (in a forked child: they are its parent's too)."""
        self._keys = iter(())


_POOL = RandomPool()
os.register_at_fork(after_in_child=_POOL.forget)

mask_key = _POOL.mask_key
"""A client frame's mask key from the process's pool (RFC 6455 section 5.3)."""
random_bytes = _POOL.random_bytes
"""Random bytes from the process's pool: a handshake's ``Sec-WebSocket-Key``, a ping's payload."""
