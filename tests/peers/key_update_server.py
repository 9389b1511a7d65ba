"""A TLS 1.3 WebSocket server (``websockets`` on asyncio) that makes its clients update their keys.

Run as a script (``python -m peers.key_update_server --certfile PEM`` from ``tests/``) it listens
on 127.0.0.1, port 0, prints ``PORT <n>`` once it accepts connections, and after every message it
sends asks OpenSSL for a KeyUpdate that requests one back (``SSL_key_update(ssl,
SSL_KEY_UPDATE_REQUESTED)``): the client's next read changes its read keys and owes a KeyUpdate of
its own on the write side. On ``/feed/<n>`` it sends ``n`` numbered binary messages and waits for
the client to close; on any other path it echoes every message.

The asyncio server runs each SSL object in one thread, so its own side is sound. Python's ``ssl``
has no call for a KeyUpdate: the SSL pointer is read from the ``_ssl._SSLSocket`` object (the
field after ``PyObject_HEAD`` and the socket weak reference, as in CPython 3.11-3.13's _ssl.c).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ssl
from pathlib import Path
from typing import Any

from peers.spawn import Spawned

__all__ = ["feed_message", "start_key_update_server", "main"]

SSL_KEY_UPDATE_REQUESTED = 1


def feed_message(number: int) -> bytes:
    """The ``number``-th message of a feed: 1 KiB, the number over and over."""
    return number.to_bytes(4, "big") * 256


def _libssl() -> ctypes.CDLL:
    """The libssl that Python's ``_ssl`` module loaded (the SSL objects are its)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            if "libssl" in line:
                return ctypes.CDLL(line.split()[-1])
    raise RuntimeError("no libssl in this process")


def main(argv: list[str] | None = None) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certfile", required=True, help="PEM with the key and the certificate chain")
    args = parser.parse_args(argv)
    libssl = _libssl()
    libssl.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
    pointer_offset = 3 * ctypes.sizeof(ctypes.c_void_p)

    def request_key_update(ws: ServerConnection) -> None:
        ssl_object: Any = ws.transport.get_extra_info("ssl_object")
        pointer = ctypes.c_void_p.from_address(id(ssl_object._sslobj) + pointer_offset).value
        if libssl.SSL_key_update(pointer, SSL_KEY_UPDATE_REQUESTED) != 1:
            raise RuntimeError("SSL_key_update failed")

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        if path.startswith("/feed/"):
            for number in range(int(path.rsplit("/", 1)[1])):
                request_key_update(ws)
                await ws.send(feed_message(number))
            await ws.wait_closed()
            return
        async for message in ws:
            request_key_update(ws)
            await ws.send(message)

    async def serve_forever() -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certfile)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        options: dict[str, Any] = {"compression": None, "max_size": None, "ping_interval": None}
        async with serve(handler, "127.0.0.1", 0, ssl=context, **options) as server:
            print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
            await server.serve_forever()

    asyncio.run(serve_forever())


def start_key_update_server(certfile: Path, log_path: Path) -> Spawned:
    """Start the server (``.match.group(1)`` is its port); ``stop()`` ends it."""
    import sys

    tests = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-u", "-m", "peers.key_update_server", "--certfile", str(certfile)]
    return Spawned(argv, r"PORT (\d+)", log_path, cwd=tests)


if __name__ == "__main__":
    main()
