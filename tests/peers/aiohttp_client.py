"""aiohttp's WebSocket client (PyPI ``aiohttp`` 3), run on an asyncio loop of its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = ["AiohttpOutcome", "send_and_await_close"]


@dataclass(frozen=True)
class AiohttpOutcome:
    """What aiohttp saw: the close code it reports (``ws.close_code``), and the error if any."""

    code: int | None
    error: str | None


async def _send(url: str, size: int, timeout: float) -> AiohttpOutcome:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0, autoclose=True) as ws:
        error = None
        try:
            await ws.send_bytes(bytes(size))
        except (ConnectionError, aiohttp.ClientError) as exc:
            error = f"send: {exc!r}"
        async with asyncio.timeout(timeout):
            async for message in ws:
                if message.type == aiohttp.WSMsgType.ERROR:
                    error = f"receive: {ws.exception()!r}"
        return AiohttpOutcome(ws.close_code, error)


def send_and_await_close(url: str, size: int, timeout: float = 20) -> AiohttpOutcome:
    """Connect to ``url``, send ``size`` zero bytes in one binary message and read until the close."""
    return asyncio.run(_send(url, size, timeout))
