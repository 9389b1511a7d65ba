"""An upstream WebSocket server (the ``websockets`` library) that records its connections.

Run as a script (``python -m peers.recording_server`` from ``tests/``) it listens on 127.0.0.1, port 0, and prints
``PORT <n>`` once it accepts connections. On ``/feed`` it pushes ``tick <n>`` every
``--interval`` seconds; on any other path it first sends ``{"hello": <client port>}`` (so a client
can learn which connection it holds) and then echoes every message. For every connection it prints
``OPEN <path> <client port>`` and, at its end, ``CLOSE <path> <client port> <code>`` with the
code of the close frame the client sent (``none`` if it sent none), so tests can read what clients
did on the wire from its output.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from peers.spawn import Spawned

__all__ = ["Closed", "RecordingServer", "main"]


def main(argv: list[str] | None = None) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.server import ServerConnection, serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two ticks on /feed")
    args = parser.parse_args(argv)
    lock = threading.Lock()

    def record(line: str) -> None:
        with lock:
            print(line, flush=True)

    def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        path, port = ws.request.path, ws.remote_address[1]
        record(f"OPEN {path} {port}")
        try:
            if path == "/feed":
                tick = 0
                while ws.protocol.close_rcvd is None:
                    tick += 1
                    ws.send(f"tick {tick}")
                    try:
                        ws.recv(timeout=args.interval)
                    except TimeoutError:
                        pass
            else:
                ws.send(json.dumps({"hello": port}))
                for message in ws:
                    ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            received = ws.protocol.close_rcvd
            record(f"CLOSE {path} {port} {received.code if received is not None else 'none'}")

    with serve(handler, "127.0.0.1", 0, ping_interval=None, close_timeout=2) as server:
        print(f"PORT {server.socket.getsockname()[1]}", flush=True)
        server.serve_forever()


@dataclass(frozen=True)
class Closed:
    """One ``CLOSE`` line: the path, the client's port and the close code it sent (None: no close frame)."""

    path: str
    port: int
    code: int | None


class RecordingServer(Spawned):
    """The script in a subprocess; ``url`` is ``ws://127.0.0.1:<port>``."""

    def __init__(self, log_path: Path) -> None:
        tests = Path(__file__).resolve().parent.parent
        super().__init__([sys.executable, "-u", "-m", "peers.recording_server"], r"PORT (\d+)", log_path, cwd=tests)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def opened(self) -> list[tuple[str, int]]:
        """``(path, client port)`` of every connection opened so far."""
        return [(path, int(port)) for path, port in re.findall(r"^OPEN (\S+) (\d+)$", self.output, re.MULTILINE)]

    def opened_paths(self, count: int, timeout: float) -> list[str]:
        """The sorted paths of the connections opened so far, waiting up to ``timeout`` seconds
        for at least ``count`` of them (workers connect in the background)."""
        deadline = time.monotonic() + timeout
        while len(self.opened()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return sorted(path for path, _ in self.opened())

    def closed(self) -> list[Closed]:
        """Every connection that has ended so far."""
        return [
            Closed(path, int(port), None if code == "none" else int(code))
            for path, port, code in re.findall(r"^CLOSE (\S+) (\d+) (\S+)$", self.output, re.MULTILINE)
        ]

    def close_codes(self, ports: set[int], timeout: float) -> dict[int, int | None]:
        """The close code of each connection from ``ports`` that has ended, waiting up to
        ``timeout`` seconds for all of them to end."""
        deadline = time.monotonic() + timeout
        while True:
            codes = {entry.port: entry.code for entry in self.closed() if entry.port in ports}
            if len(codes) == len(ports) or time.monotonic() > deadline:
                return codes
            time.sleep(0.05)


if __name__ == "__main__":
    main()
