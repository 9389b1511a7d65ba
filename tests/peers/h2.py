"""What the HTTP/2 tests know about a running RFC 8441 server."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

__all__ = ["Peer"]


@dataclass(frozen=True)
class Peer:
    """A running server: ``url`` is its origin (``ws://127.0.0.1:P`` or ``wss://localhost:P``)."""

    name: str
    url: str
    ssl: ssl.SSLContext | None

    def options(self, **extra: object) -> dict[str, object]:
        """connect() options for this peer: its TLS context and short timeouts."""
        return {"ssl": self.ssl, "open_timeout": 5, "close_timeout": 2, **extra}
