"""A real WebSocket server (the ``websockets`` library, sync API) for integration tests.

Run as a script it listens on ``--host`` with port 0 and prints ``PORT <n>`` on stdout once it
accepts connections. Every connection runs the same handler:

1. on a path starting with ``/request`` it first sends a JSON text message describing the upgrade request
   (``path``, ``headers`` as a list of pairs, ``subprotocol``);
2. it sends the messages of ``--send`` (a JSON list: a string is a text message,
   ``{"hex": "..."}`` binary, ``{"zeros": n}`` n zero bytes as binary, ``{"fragments": [...]}``
   one text message sent as one frame per string, ``{"hex_fragments": [...]}`` the same in binary);
3. with ``--close-code`` it echoes ``--close-after`` messages, then closes with that code and
   ``--close-reason``; otherwise it echoes every message until the client closes.

Imported, :func:`start_server` runs the script in a subprocess and returns a
:class:`ServerProcess` with ``url``/``port``; ``stop()`` kills it.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ServerOptions", "ServerProcess", "start_server", "main"]

STARTUP_TIMEOUT = 10.0


# -- the server side (runs in the subprocess) ------------------------------------------------


def _message(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if "hex" in item:
        return bytes.fromhex(item["hex"])
    if "fragments" in item:
        return list(item["fragments"])
    if "hex_fragments" in item:
        return [bytes.fromhex(fragment) for fragment in item["hex_fragments"]]
    return bytes(item["zeros"])


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--certfile", help="PEM with the key and the certificate chain: serve wss")
    parser.add_argument("--no-compression", action="store_true", help="do not accept permessage-deflate")
    parser.add_argument("--deflate", help="JSON keyword arguments of websockets' ServerPerMessageDeflateFactory")
    parser.add_argument("--subprotocols", nargs="*", default=None, help="subprotocols the server supports")
    parser.add_argument("--force-subprotocol", help="choose this subprotocol whatever the client offers")
    parser.add_argument("--max-size", type=int, default=None, help="incoming message limit (default: none)")
    parser.add_argument("--send", default="[]", help="JSON list of messages to send on connect")
    parser.add_argument("--close-code", type=int, help="close with this code instead of echoing forever")
    parser.add_argument("--close-reason", default="")
    parser.add_argument("--close-after", type=int, default=0, help="messages to echo before closing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import socket
    import ssl

    from websockets.sync.server import ServerConnection, serve

    args = _parse_args(argv)
    to_send = [_message(item) for item in json.loads(args.send)]

    def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path.startswith("/request"):
            ws.send(
                json.dumps(
                    {
                        "path": ws.request.path,
                        "headers": list(ws.request.headers.raw_items()),
                        "subprotocol": ws.subprotocol,
                    }
                )
            )
        for message in to_send:
            ws.send(message)
        if args.close_code is not None:
            for _ in range(args.close_after):
                ws.send(ws.recv())
            ws.close(args.close_code, args.close_reason)
            return
        for message in ws:
            ws.send(message)

    options: dict[str, Any] = {
        "compression": None if args.no_compression or args.deflate else "deflate",
        "max_size": args.max_size,
        "ping_interval": None,
        "close_timeout": 2,
    }
    if args.deflate:
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

        options["extensions"] = [ServerPerMessageDeflateFactory(**json.loads(args.deflate))]
    if args.subprotocols is not None:
        options["subprotocols"] = args.subprotocols
    if args.force_subprotocol is not None:
        forced = args.force_subprotocol
        options["select_subprotocol"] = lambda connection, offered: forced
    if ":" in args.host:
        options["family"] = socket.AF_INET6  # handed to socket.create_server
    if args.certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certfile)
        options["ssl"] = context
    with serve(handler, args.host, 0, **options) as server:
        print(f"PORT {server.socket.getsockname()[1]}", flush=True)
        server.serve_forever()


# -- the test side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    """What the server does; equal options can share one server process."""

    host: str = "127.0.0.1"
    certfile: str | None = None
    compression: bool = True
    deflate: str | None = None
    """JSON keyword arguments of websockets' ``ServerPerMessageDeflateFactory`` (``--deflate``)."""
    subprotocols: tuple[str, ...] | None = None
    force_subprotocol: str | None = None
    max_size: int | None = None
    send: str = "[]"
    """A JSON list of messages, as ``--send`` takes it."""
    close_code: int | None = None
    close_reason: str = ""
    close_after: int = 0

    def argv(self) -> list[str]:
        argv = ["--host", self.host, "--send", self.send]
        if self.certfile:
            argv += ["--certfile", self.certfile]
        if not self.compression:
            argv.append("--no-compression")
        if self.deflate is not None:
            argv += ["--deflate", self.deflate]
        if self.subprotocols is not None:
            argv += ["--subprotocols", *self.subprotocols]
        if self.force_subprotocol is not None:
            argv += ["--force-subprotocol", self.force_subprotocol]
        if self.max_size is not None:
            argv += ["--max-size", str(self.max_size)]
        if self.close_code is not None:
            argv += ["--close-code", str(self.close_code), "--close-reason", self.close_reason]
            argv += ["--close-after", str(self.close_after)]
        return argv


@dataclass
class ServerProcess:
    """A running server subprocess."""

    process: subprocess.Popen[bytes]
    options: ServerOptions
    port: int
    log_path: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        return self.options.host

    @property
    def url(self) -> str:
        """``ws://host:port`` (``wss://`` with TLS; brackets around IPv6), without a path."""
        scheme = "wss" if self.options.certfile else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path is not None else ""

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.process.kill()
        self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_server(options: ServerOptions, log_path: Path | None = None) -> ServerProcess:
    """Start the server script in a subprocess and wait for the port it prints."""
    log = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [sys.executable, "-u", __file__, *options.argv()],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            # websockets fails a message of more than 4096 fragments by default: lift that.
            env={**os.environ, "WEBSOCKETS_MAX_FRAGMENTS": str(2**31)},
        )
    finally:
        if log_path is not None:
            log.close()  # type: ignore[union-attr]
    assert process.stdout is not None
    line = b""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                process.kill()
                process.wait()
                raise RuntimeError(f"websockets server did not start within {STARTUP_TIMEOUT}s")
            chunk = os.read(process.stdout.fileno(), 1)
            if not chunk:
                process.wait()
                detail = log_path.read_text(errors="replace") if log_path is not None else ""
                raise RuntimeError(f"websockets server exited with {process.returncode}: {detail}")
            line += chunk
    word, _, port = line.decode().strip().partition(" ")
    assert word == "PORT", line
    return ServerProcess(process, options, int(port), log_path)


if __name__ == "__main__":
    main()
