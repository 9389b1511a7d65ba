"""Client-side load test: 1,000 concurrent websync workers in one process, under one supervisor.

The workers (``websync.child_spec`` children of a ``supervisors.DynamicSupervisor``) connect to a
local echo server in another process (``--server websync``: websync's own server, the default;
``--server websockets``: the asyncio ``websockets`` server, a fast peer that costs fewer CPU
cycles on this 2-core machine). The tool reports:

* connect time: from the first ``start_child`` until every worker's ``handle_connect``;
* memory: this process's RSS before the workers start and with all connections open and idle,
  and the growth per connection (plus tracemalloc's figure for Python objects, with ``--tracemalloc``);
* the thread stack size used (``threading.stack_size``; see ``--stack-size``);
* echo throughput: every worker sends a message and sends the next when its echo comes back,
  for ``--duration`` seconds; messages per second over all workers;
* connections lost (any ``handle_disconnect``), and how long ``stop()`` of the supervisor, which
  closes every connection with 1001, takes.

Exit status 1 if a connection was lost or failed, the stop took longer than ``--stop-limit``, or
(with ``--check``) the goals were missed: all connected within 10 s and the process under 150 MiB
RSS with 1,000 idle connections.

Thread stacks: each worker is a thread. On Linux the default stack is 8 MiB of *virtual* memory
per thread, of which only the pages touched are resident (a worker touches a few tens of KiB),
so RSS is not what the default costs; 1,000 threads reserve 8 GiB of address space, though,
which matters under ``ulimit -v`` or on 32-bit systems. The tool sets 256 KiB, as
tools/load_server.py does; compare with ``--stack-size 0`` (the platform default).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the websync of this work tree, whatever the venv has installed

from loadkit import raise_fd_limit, rss_bytes, vm_size_bytes

import websync
from supervisors import DynamicSupervisor
from websync import Binary, Text

STACK_SIZE = 256 * 1024
MiB = 2**20

SERVER_SCRIPTS = {
    "websync": """
import sys, threading
sys.path.insert(0, sys.argv[1])
threading.stack_size(256 * 1024)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
import websync

class Echo(websync.ServerHandler):
    def handle_in(self, frame):
        return frame

with websync.serve(Echo, compression=None, max_size=2**16, close_timeout=5, max_connections=None) as server:
    print(server.port, flush=True)
    sys.stdin.read()
""",
    "websockets": """
import asyncio, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, ping_interval=None, backlog=2048) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
""",
}


class Load(websync.Handler):
    """One worker: counts its connections, and echoes ``payload`` back and forth while ``running``."""

    def __init__(self, url: str, run: Run) -> None:
        self.url = url
        self.run = run
        self.echoes = 0

    def handle_connect(self, response: websync.Response) -> None:
        self.run.connected()

    def handle_info(self, message: Any) -> Text | None:
        return Text(self.run.payload) if message == "go" else None

    def handle_frame(self, frame: Text | Binary) -> Text | None:
        self.echoes += 1
        return Text(self.run.payload) if self.run.running else None

    def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Stop:
        self.run.lost(reason)
        return websync.Stop("lost")


class Run:
    """What the workers report back, under a lock."""

    def __init__(self, count: int, payload: str) -> None:
        self.count = count
        self.payload = payload
        self.running = True
        self.failures: list[Exception] = []
        self._connected = 0
        self._lock = threading.Lock()
        self.all_connected = threading.Event()

    def connected(self) -> None:
        with self._lock:
            self._connected += 1
            if self._connected == self.count:
                self.all_connected.set()

    def lost(self, reason: Exception) -> None:
        with self._lock:
            self.failures.append(reason)

    @property
    def connections(self) -> int:
        return self._connected


def start_server(kind: str) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPTS[kind], str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line:
        raise RuntimeError(f"the server exited with {server.wait()}")
    return server, int(line)


def run(args: argparse.Namespace) -> int:
    if args.stack_size:
        threading.stack_size(args.stack_size)
    stack = threading.stack_size() or 0
    raise_fd_limit(args.connections)
    server, port = start_server(args.server)
    url = f"ws://127.0.0.1:{port}/"
    status = 0
    try:
        state = Run(args.connections, "x" * args.size)
        supervisor = DynamicSupervisor(max_restarts=0).start()
        time.sleep(0.2)
        rss_before, vm_before = rss_bytes(), vm_size_bytes()
        if args.tracemalloc:
            tracemalloc.start()
        handlers = [Load(url, state) for _ in range(args.connections)]

        started = time.monotonic()
        workers = [
            supervisor.start_child(
                websync.child_spec(
                    handler,
                    id=i,
                    restart="temporary",
                    shutdown=args.stop_limit,
                    compression=None,
                    open_timeout=30,
                    close_timeout=5,
                    max_size=2**16,
                    proxy=None,
                )
            )
            for i, handler in enumerate(handlers)
        ]
        all_started = time.monotonic() - started
        connected = state.all_connected.wait(args.connect_limit * 3)
        connect_time = time.monotonic() - started
        time.sleep(1.0)  # idle: let buffers settle
        rss_idle, vm_idle = rss_bytes(), vm_size_bytes()
        python_bytes = tracemalloc.get_traced_memory()[0] if args.tracemalloc else None
        if args.tracemalloc:
            tracemalloc.stop()

        for worker in workers:
            assert isinstance(worker, websync.Worker)  # start_child returns the Process, here a Worker
            worker.send_info("go")
        time.sleep(args.duration)
        state.running = False
        time.sleep(0.5)  # the last echoes come back
        echoes = sum(handler.echoes for handler in handlers)
        rate = echoes / args.duration
        rss_busy = rss_bytes()
        alive = sum(1 for worker in workers if worker.is_alive())

        stop_started = time.monotonic()
        supervisor.stop(timeout=args.stop_limit * 2)
        stop_time = time.monotonic() - stop_started
        still_alive = sum(1 for worker in workers if worker.is_alive())
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()

    per_connection = (rss_idle - rss_before) / max(state.connections, 1)
    print(f"server: {args.server} (another process); {args.connections} workers under one DynamicSupervisor")
    print(
        f"thread stack size: {stack // 1024 if stack else 'platform default'} KiB"
        f" (virtual size {vm_before / MiB:.0f} -> {vm_idle / MiB:.0f} MiB)"
    )
    print(
        f"connect: {state.connections}/{args.connections} connected in {connect_time:.2f} s"
        f" (start_child calls took {all_started:.2f} s)"
    )
    print(
        f"RSS: {rss_before / MiB:.1f} MiB before, {rss_idle / MiB:.1f} MiB with {state.connections} idle"
        f" connections, {rss_busy / MiB:.1f} MiB after echoing"
    )
    print(
        f"memory per connection: {per_connection / 1024:.1f} KiB RSS"
        + (
            f", {python_bytes / args.connections / 1024:.1f} KiB of Python objects (tracemalloc)"
            if python_bytes
            else ""
        )
    )
    print(f"echo: {echoes} messages of {args.size} bytes in {args.duration:.1f} s = {rate:,.0f} messages/s")
    print(f"connections lost: {len(state.failures)}; workers alive before stop: {alive}")
    print(f"stop of the supervision tree: {stop_time:.2f} s; workers still alive after it: {still_alive}")
    if state.failures:
        print(f"first failures: {state.failures[:3]!r}")
    if not connected or state.failures or alive != args.connections or still_alive or stop_time > args.stop_limit:
        status = 1
    if args.check and (connect_time > args.connect_limit or rss_idle > args.rss_limit * MiB):
        print(f"goal missed: connect within {args.connect_limit} s, RSS under {args.rss_limit} MiB")
        status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of echoing")
    parser.add_argument("--size", type=int, default=32, help="message size in characters")
    parser.add_argument("--server", choices=sorted(SERVER_SCRIPTS), default="websync")
    parser.add_argument(
        "--stack-size", type=int, default=STACK_SIZE, help="thread stack size in bytes; 0: the platform's"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also report Python object memory (slower)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the goals (--connect-limit, --rss-limit) are missed"
    )
    parser.add_argument("--connect-limit", type=float, default=10.0, help="seconds")
    parser.add_argument("--rss-limit", type=float, default=150.0, help="MiB")
    parser.add_argument("--stop-limit", type=float, default=10.0, help="seconds the stop of the tree may take")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
