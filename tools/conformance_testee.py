"""Autobahn echo testee: make one request to a fuzzingserver with a blocking WebSocket client.

One process does one thing (count the cases, run one case, or have the
reports written) so that the harness can kill a hung case without losing the
rest of the run. The client is ``websync`` or, for comparison, the sync client
of the ``websockets`` library; both take the same ``connect()`` arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

CLIENTS = ("websync", "websockets")
# Cases 9.1.6 and 9.2.6 send 16 MiB messages; allow twice that.
MAX_SIZE = 2**25
OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 10.0


class Connection(Protocol):
    """The part of the client connection API that the echo loop uses."""

    def __iter__(self) -> Iterator[str | bytes]: ...

    def recv(self, timeout: float | None = None) -> str | bytes: ...

    def send(self, message: str | bytes) -> None: ...


Connect = Callable[..., AbstractContextManager[Connection]]


def load_client(name: str) -> tuple[Connect, type[Exception]]:
    """Return the client's ``connect`` function and its ``ConnectionClosed`` exception."""
    if name == "websockets":
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        return connect, ConnectionClosed
    import websync

    return websync.connect, websync.ConnectionClosed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=CLIENTS, default="websync")
    parser.add_argument("--url", required=True, help="fuzzingserver base URL, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", required=True, help="agent name the reports are filed under")
    parser.add_argument("--compression", choices=("deflate", "none"), default="deflate")
    parser.add_argument(
        "--http2",
        action="store_true",
        help="connect over HTTP/2 (RFC 8441, h2c by prior knowledge), e.g. to nghttpx in front of the server",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("case-count", help="print how many cases the server runs")
    run_case = actions.add_parser("run-case", help="echo every message of case N until the server closes")
    run_case.add_argument("case", type=int, metavar="N")
    actions.add_parser("update-reports", help="have the server write its reports")
    args = parser.parse_args(argv)
    if args.http2 and args.client != "websync":
        parser.error("--http2 needs --client websync")
    return args


def main(argv: list[str] | None = None) -> int:
    """Perform the requested fuzzingserver request."""
    args = parse_args(argv)
    connect, connection_closed = load_client(args.client)
    options = {
        "compression": None if args.compression == "none" else args.compression,
        "max_size": MAX_SIZE,
        "open_timeout": OPEN_TIMEOUT,
        "close_timeout": CLOSE_TIMEOUT,
        **({"http2": True} if args.http2 else {}),
    }
    try:
        if args.action == "case-count":
            with connect(f"{args.url}/getCaseCount", **options) as ws:
                print(json.loads(ws.recv()))
        elif args.action == "update-reports":
            with connect(f"{args.url}/updateReports?agent={args.agent}", **options) as ws:
                for _ in ws:  # the server closes once the reports are written
                    pass
        else:
            with connect(f"{args.url}/runCase?case={args.case}&agent={args.agent}", **options) as ws:
                for message in ws:
                    ws.send(message)
    except connection_closed:
        pass  # the server ends every request by closing; in a case, it judges how that went
    return 0


if __name__ == "__main__":
    sys.exit(main())
