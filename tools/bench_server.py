"""The benchmark's echo server: picows on uvloop, echoing every frame as it came (fragments too).

Run it as ``python tools/bench_server.py [--port N]``; it prints ``PORT <n>`` once it listens.
:mod:`tools.bench` starts it pinned to its own core.
"""

from __future__ import annotations

import argparse

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

MAX_FRAME_SIZE = 64 * 1024 * 1024
BACKLOG = 4096
"""Connections the kernel queues for accept(): asyncio's default is 100, and a storm of 1,000
connects overflows it whenever the server's core is busy; each SYN dropped then waits for its
retransmission, 1 s later (then 3, 7, 15 s): the outliers of the connect storm. Linux caps it
at net.core.somaxconn (4096 here), as websync's own server asks (``socket.SOMAXCONN``)."""


class Echo(WSListener):
    """Send back each frame with its opcode, FIN and RSV1 bits; answer a close and hang up."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin, frame.rsv1)


def _listener(request: WSUpgradeRequest) -> WSListener:
    return Echo()


async def serve(host: str, port: int) -> None:
    """Listen on ``host:port`` (0: any free port), print the port, echo until killed."""
    server = await ws_create_server(_listener, host, port, max_frame_size=MAX_FRAME_SIZE, backlog=BACKLOG)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
