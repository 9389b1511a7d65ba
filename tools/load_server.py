"""Load test of the websync server: 1,000 concurrent connections held open and echoing on loopback.

The server runs in this process; the clients (tools/load_clients.py, asyncio + websockets) in
another, each pinned to its own core when there are two. Reports the server's memory per
connection (the growth of this process's RSS from before the clients connect to when all are
open, divided by their number), echoed messages per second, and connections lost, and exits 1
if any connection was lost.

Thread stacks: every connection is a worker thread. The default stack reservation (8 MiB on
Linux) is only virtual memory, but 1,000 of them reserve 8 GiB of address space, so this tool
sets ``threading.stack_size(STACK_SIZE)`` (256 KiB, ample for the worker's call depth) before
starting the server; applications serving many connections can do the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the websync of this work tree, whatever the venv has installed

from loadkit import raise_fd_limit, rss_bytes

import websync
from websync import Binary, ServerHandler, Text

STACK_SIZE = 256 * 1024
CLIENTS = Path(__file__).with_name("load_clients.py")


class Echo(ServerHandler):
    def handle_in(self, frame: Text | Binary) -> Text | Binary:
        return frame


def pin(cpu: int) -> list[int] | None:
    """Pin this process to ``cpu`` when there are at least two; the CPU list for the clients."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, {cpus[cpu]})
    return [cpus[1 - cpu]]


def read_report(clients: subprocess.Popen[str]) -> dict[str, Any]:
    assert clients.stdout is not None
    line = clients.stdout.readline()
    if not line:
        raise RuntimeError(f"the clients exited with {clients.wait()}")
    report: dict[str, Any] = json.loads(line)
    return report


def tell(clients: subprocess.Popen[str]) -> None:
    assert clients.stdin is not None
    clients.stdin.write("go\n")
    clients.stdin.flush()


def run(args: argparse.Namespace) -> int:
    threading.stack_size(STACK_SIZE)
    raise_fd_limit(args.connections)
    client_cpus = pin(0)
    compression = "deflate" if args.compression else None
    with websync.serve(Echo, compression=compression, max_size=2**16, close_timeout=5) as server:
        time.sleep(0.5)
        before = rss_bytes()
        command = [
            sys.executable,
            str(CLIENTS),
            "--url",
            f"ws://127.0.0.1:{server.port}/",
            "--connections",
            str(args.connections),
            "--duration",
            str(args.duration),
            "--size",
            str(args.size),
        ]
        if compression:
            command += ["--compression", compression]
        clients = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if client_cpus:
            os.sched_setaffinity(clients.pid, client_cpus)
        try:
            opened = read_report(clients)
            time.sleep(0.5)
            held = len(server.connections)
            after = rss_bytes()
            tell(clients)
            echoed = read_report(clients)
            still_held = len(server.connections)
            tell(clients)
            clients.wait(60)
        finally:
            if clients.poll() is None:
                clients.kill()
    lost = echoed["lost"] + (held - still_held)
    per_connection = (after - before) / max(held, 1)
    rate = echoed["messages"] / echoed["seconds"]
    print(f"connections: {opened['connected']} opened ({opened['failed']} failed), {held} held by the server")
    print(f"server RSS: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB with {held} connections")
    print(f"memory per connection: {per_connection / 1024:.1f} KiB (thread stack size {STACK_SIZE // 1024} KiB)")
    print(
        f"echo: {echoed['messages']} messages of {args.size} bytes in {echoed['seconds']:.1f}s = {rate:,.0f} messages/s"
    )
    print(f"connections lost: {lost}")
    return 0 if lost == 0 and held == args.connections else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of echoing")
    parser.add_argument("--size", type=int, default=32, help="message size in bytes")
    parser.add_argument("--compression", action="store_true", help="negotiate permessage-deflate")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
