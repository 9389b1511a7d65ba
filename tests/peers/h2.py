"""What the HTTP/2 tests know about a running RFC 8441 server."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Peer", "echo_concurrently"]


@dataclass(frozen=True)
class Peer:
    """A running server: ``url`` is its origin (``ws://127.0.0.1:P`` or ``wss://localhost:P``)."""

    name: str
    url: str
    ssl: ssl.SSLContext | None

    def options(self, **extra: Any) -> dict[str, Any]:
        """connect() options for this peer: its TLS context and short timeouts."""
        return {"ssl": self.ssl, "open_timeout": 5, "close_timeout": 2, **extra}


def echo_concurrently(sockets: Sequence[Any], rounds: int, step: int) -> list[BaseException]:
    """One thread per WebSocket sends ``rounds`` binary messages of its own bytes and sizes (socket
    ``i`` sends ``i``-bytes, ``1 + i * step + round * 10 * step`` long) each followed by a text
    naming it, and checks each echo; returns the failures."""
    errors: list[BaseException] = []

    def talk(index: int, ws: Any) -> None:
        try:
            for round_ in range(rounds):
                payload = bytes([index]) * (1 + index * step + round_ * 10 * step)
                ws.send(payload)
                ws.send(f"{index}:{round_}")
                assert ws.recv(timeout=10) == payload
                assert ws.recv(timeout=10) == f"{index}:{round_}"
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(i, ws)) for i, ws in enumerate(sockets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return errors
