"""An echo server on websync: every message comes back as it was sent.

Run it with ``python -m examples.echo_server [--host 127.0.0.1] [--port 8765]`` and stop it with
Ctrl-C, which closes every connection with 1001 (going away). ``make demo`` embeds it through
:func:`start`.
"""

from __future__ import annotations

import argparse
import logging

import websync
from websync import Binary, ServerHandler, Text

__all__ = ["EchoHandler", "main", "start"]


class EchoHandler(ServerHandler):
    """Sends every message back to its sender."""

    def handle_in(self, frame: Text | Binary) -> Text | Binary:
        return frame


def start(host: str = "127.0.0.1", port: int = 0, **options: object) -> websync.Server:
    """Start the echo server (port 0: any free port, see ``server.port``)."""
    return websync.serve(EchoHandler, host=host, port=port, **options)


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--trace", action="store_true", help="log every frame on the websync.trace logger")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.trace else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    with start(args.host, args.port, trace=args.trace) as server:
        print(f"echo server on ws://{args.host}:{server.port}/ (Ctrl-C to stop)", flush=True)
        try:
            server.join()
        except KeyboardInterrupt:
            print("stopping: closing every connection with 1001", flush=True)


if __name__ == "__main__":
    main()
