"""A raw ASGI WebSocket echo app for hypercorn (HTTP/1.1, h2c and h2 over TLS).

Paths: ``/echo`` echoes every message; ``/close/CODE`` closes at once with CODE and reason "bye";
``/reject`` refuses the handshake with 403 and a body; ``/redirect`` refuses with 302 to /echo.
The first offered subprotocol is accepted. Run: ``python -m hypercorn tests.peers.asgi_echo:app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"websocket only"})
        return
    await receive()  # websocket.connect
    path = scope["path"]
    if path in ("/reject", "/redirect"):
        status, headers = (403, []) if path == "/reject" else (302, [(b"location", b"/echo")])
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"go away"})
        return
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    if path.startswith("/close/"):
        await send({"type": "websocket.close", "code": int(path.rsplit("/", 1)[1]), "reason": "bye"})
        return
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            await send({"type": "websocket.send", "bytes": event.get("bytes") or b""})
