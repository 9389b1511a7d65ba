"""aiohttp's WebSocket client (PyPI ``aiohttp`` 3), run on an asyncio loop of its own."""

from __future__ import annotations

import asyncio
import gc
import warnings
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
    """Connect to ``url``, send ``size`` zero bytes in one binary message and read until the close.

    What aiohttp and asyncio leave for the garbage collector is collected here, with their
    ResourceWarnings ignored: once in CI an unclosed transport of aiohttp's (a connect still in
    progress, finalised later) surfaced in the next test as an unraisable exception. The suite
    turns ResourceWarnings into errors to catch websync's leaks, not this peer's.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return asyncio.run(_send(url, size, timeout))
        finally:
            gc.collect()
