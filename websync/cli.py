"""The command-line client: ``python -m websync URL`` or ``websync URL``; ``python -m websync serve
module:Handler`` runs a server instead (see :mod:`websync.serve_command`).

Interactive by default: prints every message it receives (binary ones as ``<N bytes> hex``) and
sends every line typed, until end of input (close 1000) or the server closes. With ``--send`` or
``--count`` it runs for scripts: sends the given messages, prints ``--count`` answers and exits.
Errors are one line on stderr; the exit status says what happened (:class:`ExitStatus`).
"""

from __future__ import annotations

import argparse
import enum
import logging
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from . import __version__
from .core.errors import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidURI,
    OpenTimeout,
    TransportError,
    WebSocketError,
    is_normal_close,
)
from .worker.client import ClientConnection, connect

__all__ = ["ExitStatus", "main", "parse_args"]


class ExitStatus(enum.IntEnum):
    """The exit statuses of the command-line client."""

    OK = 0
    USAGE = 2
    """Bad arguments or URL (argparse also exits with 2)."""
    CONNECTION = 3
    """The TCP or TLS connection failed (refused, reset, unreachable, certificate)."""
    HANDSHAKE = 4
    """The server refused the upgrade or answered it wrongly."""
    TIMEOUT = 5
    """The opening handshake or an expected answer took longer than its timeout."""
    CLOSED = 6
    """The connection closed before the expected answers, or with an error code."""
    INTERRUPTED = 130
    """Ctrl-C."""


class _Failure(Exception):
    def __init__(self, status: ExitStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _header(value: str) -> tuple[str, str]:
    name, colon, rest = value.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), rest.strip()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line (argparse exits with status 2 on an error)."""
    parser = argparse.ArgumentParser(prog="websync", description="A WebSocket client for the terminal and for scripts.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("url", help="ws:// or wss:// URL")
    parser.add_argument(
        "-H",
        "--header",
        dest="headers",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable)",
    )
    parser.add_argument(
        "-s",
        "--subprotocol",
        dest="subprotocols",
        action="append",
        default=[],
        metavar="PROTOCOL",
        help="a subprotocol to offer (repeatable)",
    )
    parser.add_argument(
        "--no-compression",
        dest="compression",
        action="store_const",
        const=None,
        default="deflate",
        help="do not offer permessage-deflate",
    )
    parser.add_argument("--trace", action="store_true", help="log every frame and event on stderr")
    parser.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="MESSAGE",
        help="send this text message (repeatable), then print --count answers and exit",
    )
    parser.add_argument(
        "-n",
        "--count",
        type=int,
        default=None,
        help="answers to print before exiting (default with --send: one per message)",
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the handshake and for each answer (default 10)",
    )
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 0:
        parser.error("--count must be 0 or more")
    return args


def _open(args: argparse.Namespace) -> ClientConnection:
    try:
        return connect(
            args.url,
            headers=args.headers,
            subprotocols=args.subprotocols,
            compression=args.compression,
            open_timeout=args.timeout,
            trace=args.trace,
        )
    except OpenTimeout as exc:
        raise _Failure(ExitStatus.TIMEOUT, f"no handshake within {args.timeout:g} s: {exc}") from None
    except InvalidURI as exc:
        raise _Failure(ExitStatus.USAGE, str(exc)) from None
    except TransportError as exc:
        raise _Failure(ExitStatus.CONNECTION, str(exc)) from None
    except OSError as exc:
        raise _Failure(ExitStatus.CONNECTION, f"cannot connect to {args.url}: {exc}") from None
    except InvalidHandshake as exc:
        raise _Failure(ExitStatus.HANDSHAKE, f"handshake with {args.url} failed: {exc}") from None


def _show(message: str | bytes, out: TextIO) -> None:
    line = message if isinstance(message, str) else f"<{len(message)} bytes> {message.hex()}"
    print(line, file=out, flush=True)


def _closed_status(ws: ClientConnection) -> ExitStatus:
    return ExitStatus.OK if is_normal_close(ws.close_code) else ExitStatus.CLOSED


def _run_script(ws: ClientConnection, args: argparse.Namespace, out: TextIO) -> None:
    for message in args.send:
        ws.send(message)
    count = len(args.send) if args.count is None else args.count
    for received in range(count):
        try:
            _show(ws.recv(timeout=args.timeout), out)
        except TimeoutError:
            raise _Failure(
                ExitStatus.TIMEOUT, f"answer {received + 1} of {count} did not come within {args.timeout:g} s"
            ) from None
        except ConnectionClosed as exc:
            raise _Failure(ExitStatus.CLOSED, f"{exc} after {received} of {count} answers") from None
    ws.close()


def _run_interactive(ws: ClientConnection, lines: TextIO, out: TextIO) -> ExitStatus:
    def receive() -> None:
        try:
            for message in ws:
                _show(message, out)
        except ConnectionClosed:
            pass  # an abnormal close: the status says so
        print(f"connection closed: {ws.close_code} {ws.close_reason or ''}".rstrip(), file=sys.stderr, flush=True)

    receiver = threading.Thread(target=receive, name="websync-cli-receiver", daemon=True)
    receiver.start()
    for line in lines:
        try:
            ws.send(line.rstrip("\n"))
        except ConnectionClosed:
            break
    ws.close()
    receiver.join()
    return _closed_status(ws)


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the client (or, for ``serve ...``, the server); returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["serve"]:
        from .serve_command import main as serve_main

        return serve_main(arguments[1:])
    args = parse_args(argv)
    out = stdout or sys.stdout
    if args.trace:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
    try:
        ws = _open(args)
        try:
            if args.send or args.count is not None:
                _run_script(ws, args, out)
                return ExitStatus.OK
            print(
                f"connected to {args.url} (subprotocol: {ws.subprotocol}); Ctrl-D to close", file=sys.stderr, flush=True
            )
            return _run_interactive(ws, stdin or sys.stdin, out)
        finally:
            ws.close()
    except _Failure as failure:
        print(f"websync: {failure}", file=sys.stderr)
        return failure.status
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except WebSocketError as exc:
        print(f"websync: {exc}", file=sys.stderr)
        return ExitStatus.CLOSED
