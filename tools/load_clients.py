"""The client swarm of tools/load_server.py: many asyncio WebSocket clients (websockets) echoing.

Protocol with the parent on stdin/stdout, one JSON line each way:
opens ``--connections`` connections, prints ``{"connected": N, "failed": F}``, waits for a
line on stdin, then every connection sends a message and waits for its echo in a loop for
``--duration`` seconds, prints ``{"messages": M, "seconds": S, "lost": L}``, waits for another
line, closes everything and exits. A connection that fails or closes early counts as lost.

``--echoes N`` makes each connection do exactly N round trips instead (``--duration`` bounds
them); several ``--url`` spread the connections round-robin; ``--ca`` trusts a CA file for
wss://; ``--report-each`` adds ``"received": {path: echoes}`` with each connection on its own
path ``/cN`` (a connection closed by the server then counts as lost, and the server's own count
of answered messages per path can be compared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time

from websockets.asyncio.client import ClientConnection, connect

CONNECT_CONCURRENCY = 50


async def open_all(
    urls: list[str], count: int, compression: str | None, context: ssl.SSLContext | None, each: bool
) -> tuple[list[ClientConnection], int]:
    """Open ``count`` connections, at most CONNECT_CONCURRENCY handshakes at a time."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(index: int) -> ClientConnection | None:
        url = urls[index % len(urls)].rstrip("/") + (f"/c{index}" if each else "/")
        async with gate:
            try:
                return await connect(
                    url,
                    compression=compression,
                    open_timeout=30,
                    ping_interval=None,
                    ssl=context if url.startswith("wss:") else None,
                )
            except (TimeoutError, OSError, Exception):  # noqa: BLE001 - counted as failed
                return None

    results = await asyncio.gather(*(open_one(index) for index in range(count)))
    connections = [ws for ws in results if ws is not None]
    return connections, count - len(connections)


async def echo_loop(ws: ClientConnection, payload: str, until: float, echoes: int | None) -> tuple[int, bool]:
    """Echo until the deadline (or ``echoes`` round trips); the count of round trips and whether
    the connection was lost."""
    count = 0
    try:
        while time.monotonic() < until and (echoes is None or count < echoes):
            await ws.send(payload)
            if await asyncio.wait_for(ws.recv(), 30) != payload:
                return count, True
            count += 1
    except Exception:  # noqa: BLE001 - any failure loses the connection
        return count, True
    return count, False


async def read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def report(message: dict[str, object]) -> None:
    print(json.dumps(message), flush=True)


async def main_async(args: argparse.Namespace) -> None:
    context = None
    if args.ca:
        context = ssl.create_default_context(cafile=args.ca)
    connections, failed = await open_all(args.url, args.connections, args.compression, context, args.report_each)
    report({"connected": len(connections), "failed": failed})
    await read_line()
    payload = "x" * args.size
    started = time.monotonic()
    results = await asyncio.gather(
        *(echo_loop(ws, payload, started + args.duration, args.echoes) for ws in connections)
    )
    seconds = time.monotonic() - started
    still_open = sum(1 for ws in connections if ws.state.name == "OPEN")
    lost = failed + sum(lost for _, lost in results) + (len(connections) - still_open)
    outcome: dict[str, object] = {"messages": sum(count for count, _ in results), "seconds": seconds, "lost": lost}
    if args.report_each:
        outcome["received"] = {ws.request.path: count for ws, (count, _) in zip(connections, results) if ws.request}
    report(outcome)
    await read_line()
    await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, action="append", help="repeatable: connections are spread over them")
    parser.add_argument("--echoes", type=int, default=None, help="round trips per connection (bounded by --duration)")
    parser.add_argument("--ca", help="CA file (PEM) to trust for wss://")
    parser.add_argument("--report-each", action="store_true", help="path /cN per connection; report echoes per path")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=32, help="message size in characters")
    parser.add_argument("--compression", choices=("deflate",), default=None)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
