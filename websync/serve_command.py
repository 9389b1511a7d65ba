"""``python -m websync serve package.module:Handler``: run a server handler in one or more processes.

In the manner of uvicorn: ``--workers N`` starts N processes (each a ``python -m websync serve``
with ``--workers 1``) that listen on the same host and port with SO_REUSEPORT, so the kernel
spreads connections over them. Each process drains on SIGTERM and SIGINT (the open connections
get ``--drain-timeout`` seconds, then 1001); the parent passes SIGTERM and SIGINT on to its
workers, restarts one that dies otherwise, and exits once all have exited.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from .server.serving import HandlerFactory, serve

__all__ = ["load_handler", "main", "parse_args"]

logger = logging.getLogger("websync.server")

RESTART_DELAY = 1.0
"""Seconds before a worker process that died is started again."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed ``serve`` command line (argparse exits with status 2 on an error)."""
    parser = argparse.ArgumentParser(prog="websync serve", description="Run a WebSocket server handler.")
    parser.add_argument("handler", help="package.module:Handler, a ServerHandler subclass or factory")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port (default 1)")
    parser.add_argument("--certfile", help="serve wss://: the certificate chain (PEM)")
    parser.add_argument("--keyfile", help="the private key (PEM), if not in --certfile")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="seconds a SIGTERM drain gives connections")
    parser.add_argument("--max-connections", type=int, default=None, help="per process; past it, 503")
    parser.add_argument("--app-dir", default=".", help="folder added to sys.path first (default: .)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    if args.keyfile and not args.certfile:
        parser.error("--keyfile needs --certfile")
    return args


def load_handler(spec: str, app_dir: str = ".") -> HandlerFactory:
    """The object ``package.module:Name`` names; ``ValueError`` for a malformed spec,
    ``ImportError`` or ``AttributeError`` when it is not there."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected package.module:Handler, got {spec!r}")
    if app_dir not in sys.path:
        sys.path.insert(0, os.path.abspath(app_dir))
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec} is not a handler class or factory")
    factory: HandlerFactory = target
    return factory


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # TLS 1.2+ by default; no ALPN: HTTP/1.1
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.certfile, args.keyfile)
    return context


def run_one(args: argparse.Namespace, *, reuse_port: bool) -> int:
    """Serve in this process until a SIGTERM or SIGINT drain is over."""
    handler = load_handler(args.handler, args.app_dir)
    context = _ssl_context(args)
    server = serve(
        handler,
        args.host,
        args.port,
        ssl=context,
        reuse_port=reuse_port,
        handle_signals=True,
        drain_timeout=args.drain_timeout,
        max_connections=args.max_connections,
    )
    scheme = "wss" if context is not None else "ws"
    host = f"[{server.host}]" if ":" in server.host else server.host
    print(f"websync: pid {os.getpid()} serving {scheme}://{host}:{server.port}/", file=sys.stderr, flush=True)
    server.join()
    print(f"websync: pid {os.getpid()} drained", file=sys.stderr, flush=True)
    return 0


def run_many(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Start ``args.workers`` processes on one port and watch them."""
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as reserved:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind((args.host, args.port))  # not listening: holds the port (0: picks one) for the workers
        port = reserved.getsockname()[1]
        child = [sys.executable, "-m", "websync", "serve", *_without(argv, "--port", "--workers")]
        child += ["--port", str(port), "--workers", "1", "--reuse-port"]
        stopping = False

        def on_signal(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signum)

        processes: list[subprocess.Popen[bytes]] = []
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        processes.extend(subprocess.Popen(child) for _ in range(args.workers))
        print(f"websync: {args.workers} workers on port {port} (pid {os.getpid()})", file=sys.stderr, flush=True)
        while True:
            for index, process in enumerate(processes):
                if process.poll() is not None and not stopping:
                    logger.warning("worker pid %d exited with %s: starting another", process.pid, process.returncode)
                    time.sleep(RESTART_DELAY)
                    if not stopping:
                        processes[index] = subprocess.Popen(child)
            if all(process.poll() is not None for process in processes):
                return 0 if all(process.returncode == 0 for process in processes) else 1
            time.sleep(0.1)


def _without(argv: Sequence[str], *options: str) -> list[str]:
    """``argv`` minus ``--option value`` and ``--option=value`` for each of ``options``."""
    kept: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item in options:
            skip = True
            continue
        if any(item.startswith(option + "=") for option in options):
            continue
        kept.append(item)
    return kept


def main(argv: Sequence[str]) -> int:
    """Run ``websync serve``; returns the exit status."""
    argv = list(argv)
    reuse_port = "--reuse-port" in argv  # internal: a worker process of ``--workers N``
    if reuse_port:
        argv.remove("--reuse-port")
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    try:
        if args.workers == 1:
            return run_one(args, reuse_port=reuse_port)
        return run_many(args, argv)
    except (ValueError, ImportError, AttributeError, TypeError, OSError) as exc:
        print(f"websync serve: {exc}", file=sys.stderr)
        return 2
