"""A ``websockets`` server that applies backpressure, for tests/net/test_backpressure.py.

Run as a script it listens on 127.0.0.1 with port 0 and prints ``PORT <n>``. The server keeps at
most one received message queued (``max_queue=1``): while its handler does not read, it stops
reading the socket and TCP pushes back on the client. The path chooses the handler, with
``size`` (bytes per message), ``count`` and ``pause`` (seconds) in the query:

- ``/slow-reader``: pause without reading while the client streams ``count`` messages (and ping
  the client in the middle of the pause), then read them all, check the pong arrived, and send
  ``done <count>``;
- ``/fast-writer``: stream ``count`` binary messages to the client (which does not read for a
  while), with pings between them, while reading the client's ``count`` messages; then wait
  for the pongs and send ``done <count>``.

Anything unexpected is reported as a text message starting with ``error``.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlsplit

from websockets.sync.server import ServerConnection, serve

PONG_TIMEOUT = 20.0


def _read(ws: ServerConnection, count: int, size: int) -> str | None:
    for index in range(count):
        message = ws.recv()
        if len(message) != size:
            return f"error: message {index} has {len(message)} bytes, not {size}"
    return None


def slow_reader(ws: ServerConnection, size: int, count: int, pause: float) -> str:
    time.sleep(pause / 2)
    pong = ws.ping(b"paused")
    time.sleep(pause / 2)
    error = _read(ws, count, size)
    if error:
        return error
    if not pong.wait(PONG_TIMEOUT):
        return "error: no pong"
    return f"done {count}"


def fast_writer(ws: ServerConnection, size: int, count: int, pause: float) -> str:
    payload = b"\x5a" * size
    errors: list[str] = []

    def reader() -> None:
        errors.append(_read(ws, count, size) or "")

    thread = threading.Thread(target=reader)
    thread.start()
    pongs = []
    for index in range(count):
        if index % max(count // 4, 1) == 0:  # pings between the messages, not only after them
            pongs.append(ws.ping(index.to_bytes(4, "big")))
        ws.send(payload)
    if not all(pong.wait(PONG_TIMEOUT) for pong in pongs):
        return "error: no pong"
    thread.join()
    return errors[0] or f"done {count}"


HANDLERS = {"/slow-reader": slow_reader, "/fast-writer": fast_writer}


def main() -> None:
    def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        outcome = HANDLERS[url.path](ws, int(query["size"]), int(query["count"]), float(query["pause"]))
        ws.send(outcome)
        for _ in ws:  # until the client closes
            pass

    with serve(handler, "127.0.0.1", 0, compression=None, max_size=None, max_queue=1, ping_interval=None) as server:
        print(f"PORT {server.socket.getsockname()[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
