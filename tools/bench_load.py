"""Side by side at 1,000 connections in one process: websync workers, websockets (asyncio on uvloop), picows.

Issue 24. The echo server is tools/bench_server.py (picows on uvloop) pinned to one core; every
measurement is a fresh process pinned to the other core (``os.sched_setaffinity``); repetitions
are interleaved, clients rotated, and the table shows medians. Measurements:

* ``pingpong``: ``--connections`` connections (1,000), each a ping-pong loop of 64-byte binary
  messages; aggregate round trips per second over all of them, the time to connect them all,
  and the RSS growth per idle connection (threads included), before any traffic. websync: one
  ``websync.child_spec`` worker per connection under one ``DynamicSupervisor``, its
  ``handle_frame`` returning the next message. The first connection of each process (which
  loads modules) is not counted;
* ``memory``: websync only, where an idle connection's RSS goes: thread stacks (smaps), Python
  objects (tracemalloc, in a run of its own since it slows every allocation), the rest;
* ``storm``: 1,000 workers that start their ping-pong as soon as they connect: the time until
  the last one is connected (``--storm-runs`` runs, 10); then 100 of them crash (their
  ``handle_info`` raises) while the 900 others go on, and their supervisor restarts them: the
  time until all 100 are connected again; and how often the server's accept queue overflowed
  meanwhile (a dropped SYN costs its connection a 1 s retransmission: the server listens with a
  backlog of 4096, see tools/bench_server.py);
* ``idle``: ``--idle-connections`` (10,000) idle workers in one process: connect time, RSS, and
  how long ``stop()`` of their tree takes. No goal: it finds the wall (file descriptors, threads).

Kernel socket buffers are not in any process's RSS. The tool raises RLIMIT_NOFILE to the hard
limit (the server and the clients inherit it) and sets ``threading.stack_size(256 KiB)`` in
websync's processes, as docs/load.md tells applications with many workers to do.

    python tools/bench_load.py                       # everything; JSON in docs/load.json
    python tools/bench_load.py --reps 1 --only pingpong,memory

A measurement process is this script with ``--child KIND ARGUMENT URL``; it prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from bench import CLIENT_CORE, KIB, MIB, ROOT, _median, _pinned, _versions, echo_server
from loadkit import listen_overflows, memory_map, raise_fd_limit, rss_bytes

CLIENTS = ("websync", "websockets", "picows")
TITLES = {"websync": "websync workers", "websockets": "websockets (asyncio, uvloop)", "picows": "picows"}
CONNECTIONS = 1000
IDLE_CONNECTIONS = 10_000
RESTARTED = 100
PAYLOAD = b"x" * 64
STACK_SIZE = 256 * 1024
SWITCH_INTERVAL = 0.05
"""The GIL's switch interval in websync's processes, as docs/load.md tells applications with many
busy workers to set (CPython's default, 0.005 s, starves every thread that is not in a worker's loop)."""
CPYTHON_SWITCH_INTERVAL = 0.005
WARMUP_SECONDS = 0.5
PINGPONG_SECONDS = 3.0
SETTLE_SECONDS = 1.0
CHILD_TIMEOUT = 600
GOALS = {"rate_vs_websockets": 1.0, "rss_per_connection_kib": 30.0, "storm_s": 5.0, "restart_s": 2.0}


# -- websync (measurement processes) ------------------------------------------------------------


class Board:
    """Counts the workers' connections; ``reached`` is set when ``target`` of them are in."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.last = 0.0
        self.lost = 0
        self.error: str | None = None
        """Why the workers stopped starting, at a wall."""
        self.reasons: list[str] = []
        """Why the first connections were lost or never came (a few)."""
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def connected(self) -> None:
        with self._lock:
            self.count += 1
            self.last = time.monotonic()
            self._check()

    def failed(self, reason: object) -> None:
        """A worker lost its connection, or never got one (at a wall: no file descriptor left)."""
        with self._lock:
            self.lost += 1
            if len(self.reasons) < 3:
                self.reasons.append(repr(reason))
            self._check()

    def _check(self) -> None:
        if self.count + self.lost >= self.target:
            self.reached.set()


def websync_fleet(url: str, count: int, *, eager: bool, restarts: Board | None = None) -> Any:
    """A DynamicSupervisor with ``count`` ping-pong workers (``eager``: each starts its loop from
    ``handle_connect``; otherwise at ``send_info("go")``). Workers are restarted (``permanent``)
    only when ``restarts`` counts their comebacks; a lost connection otherwise ends its worker.
    Returns (supervisor, handlers, workers, board, seconds until all connected)."""
    import websync
    from supervisors import DynamicSupervisor

    threading.stack_size(STACK_SIZE)
    message = websync.Binary(PAYLOAD)

    class PingPong(websync.Handler):
        def __init__(self, board: Board) -> None:
            self.url = url
            self.board = board
            self.count = 0
            self.crashed = False
            self.reported = False
            """Whether the board heard of this worker (connected, or a connection lost or refused)."""

        def handle_connect(self, response: websync.Response) -> websync.Binary | None:
            self.reported = True
            if self.crashed and restarts is not None:
                restarts.connected()
            else:
                self.board.connected()
            return message if eager else None

        def handle_info(self, info: Any) -> websync.Binary:
            if info == "crash":
                self.crashed = True
                raise RuntimeError("crash (bench_load: a restart under load)")
            return message

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Binary:
            self.count += 1
            return message

        def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Stop:
            self.reported = True
            self.board.failed(reason)
            return websync.Stop("lost")

        def terminate(self, reason: object) -> None:
            if not self.reported:  # it ended before any connection attempt: at the wall, no descriptor for its waker
                self.board.failed(reason)

    board = Board(count)
    supervisor = DynamicSupervisor(max_restarts=10 * RESTARTED, max_seconds=60).start()
    handlers = [PingPong(board) for _ in range(count)]
    options: dict[str, Any] = {
        "compression": None,
        "open_timeout": 120,
        "close_timeout": 5,
        "max_size": 2**16,
        "proxy": None,
    }
    restart: Literal["permanent", "temporary"] = "permanent" if restarts is not None else "temporary"
    started = time.monotonic()
    workers = []
    for i, handler in enumerate(handlers):
        try:
            workers.append(
                supervisor.start_child(websync.child_spec(handler, id=i, restart=restart, shutdown=30, **options))
            )
        except Exception as exc:  # noqa: BLE001 - the wall: report how far it got
            with board._lock:
                board.target = len(workers)
                board._check()
            board.error = f"worker {i + 1} failed to start: {exc!r} (cause: {exc.__cause__!r})"
            break
    board.reached.wait(300)
    return supervisor, handlers, workers, board, (board.last if board.reached.is_set() else time.monotonic()) - started


def websync_warmup(url: str) -> None:
    """One worker connects and ends: modules loaded, the first thread's costs paid before the baseline."""
    supervisor, _, _, _, _ = websync_fleet(url, 1, eager=False)
    supervisor.stop()


def websync_pingpong(url: str, count: int, seconds: float) -> dict[str, Any]:
    websync_warmup(url)
    time.sleep(0.2)
    before, map_before = rss_bytes(), memory_map(STACK_SIZE)
    supervisor, handlers, workers, board, connect_s = websync_fleet(url, count, eager=False)
    time.sleep(SETTLE_SECONDS)
    idle, map_idle = rss_bytes(), memory_map(STACK_SIZE)
    for worker in workers:
        worker.send_info("go")
    rates = _rate(lambda: sum(handler.count for handler in handlers), seconds)
    supervisor.stop()
    parts = {kind: (map_idle.get(kind, 0) - map_before.get(kind, 0)) / count for kind in map_idle}
    return {
        "connected": board.count,
        "connect_s": connect_s,
        "rss_per_connection": (idle - before) / count,
        "parts": parts,
        **rates,
        "lost": board.lost,
    }


def websync_memory(url: str, count: int) -> dict[str, Any]:
    """Python objects per idle connection (tracemalloc), by file and line."""
    websync_warmup(url)
    time.sleep(0.2)
    tracemalloc.start(1)
    first = tracemalloc.take_snapshot()
    supervisor, _, _, board, _ = websync_fleet(url, count, eager=False)
    time.sleep(SETTLE_SECONDS)
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = snapshot.compare_to(first, "lineno")
    total = sum(stat.size_diff for stat in stats)
    top = [
        {
            "where": f"{Path(stat.traceback[0].filename).name}:{stat.traceback[0].lineno}",
            "bytes": stat.size_diff / count,
        }
        for stat in stats[:15]
    ]
    supervisor.stop()
    return {"connected": board.count, "python_per_connection": total / count, "top": top}


def websync_storm(url: str, count: int) -> dict[str, Any]:
    """All workers ping-pong from connect; then RESTARTED of them crash and come back under load."""
    logging.getLogger("supervisors").setLevel(logging.CRITICAL)  # 100 crash tracebacks: not the point
    overflows = listen_overflows()
    restarts = Board(RESTARTED)
    supervisor, handlers, workers, board, connect_s = websync_fleet(url, count, eager=True, restarts=restarts)
    result: dict[str, Any] = {"connected": board.count, "connect_s": connect_s, "lost_reasons": board.reasons}
    if board.count == count:
        time.sleep(0.5)
        started = time.monotonic()
        for worker in workers[:RESTARTED]:
            worker.send_info("crash")
        restarts.reached.wait(120)
        result["restart_s"] = (restarts.last if restarts.reached.is_set() else time.monotonic()) - started
        result["restarted"] = restarts.count
        result["rate_during"] = sum(handler.count for handler in handlers) / (time.monotonic() - started + connect_s)
    if overflows is not None:
        result["listen_overflows"] = (listen_overflows() or 0) - overflows  # the namespace's: others' too
    supervisor.stop()
    return result


def websync_idle(url: str, count: int) -> dict[str, Any]:
    """``count`` idle workers: connect, RSS, stop of the tree; how far it got if it hit a wall."""
    websync_warmup(url)
    time.sleep(0.2)
    before = rss_bytes()
    supervisor, _, workers, board, connect_s = websync_fleet(url, count, eager=False)
    time.sleep(SETTLE_SECONDS)
    rss = rss_bytes()
    started = time.monotonic()
    supervisor.stop(timeout=120)
    stop_s = time.monotonic() - started
    return {
        "asked": count,
        "started": len(workers),
        "connected": board.count,
        "connect_s": connect_s,
        "rss": rss,
        "rss_per_connection": (rss - before) / max(board.count, 1),
        "stop_s": stop_s,
        "wall": board.error,
        "lost": board.lost,
        "lost_reasons": board.reasons,
        "threads_after_stop": threading.active_count(),
    }


class Window:
    """What the process did between :meth:`start` and :meth:`end`: round trips per second, and per
    round trip its CPU time in user space and in the kernel and its context switches
    (``getrusage``: every thread of the process)."""

    def __init__(self, total: Callable[[], int]) -> None:
        self.total = total
        self.count, self.started, self.usage = 0, 0.0, resource.getrusage(resource.RUSAGE_SELF)

    def start(self) -> None:
        self.count, self.started, self.usage = self.total(), time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)

    def end(self) -> dict[str, float]:
        trips = self.total() - self.count
        elapsed = time.monotonic() - self.started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        switches = usage.ru_nvcsw + usage.ru_nivcsw - self.usage.ru_nvcsw - self.usage.ru_nivcsw
        return {
            "rate": trips / elapsed,
            "user_us": (usage.ru_utime - self.usage.ru_utime) / trips * 1e6,
            "system_us": (usage.ru_stime - self.usage.ru_stime) / trips * 1e6,
            "switches": switches / trips,
        }


def _rate(total: Callable[[], int], seconds: float) -> dict[str, float]:
    """Round trips per second over ``seconds`` after a warm-up (``total()`` counts them all), with
    the CPU and context switches they cost (see :class:`Window`)."""
    time.sleep(WARMUP_SECONDS)
    window = Window(total)
    window.start()
    time.sleep(seconds)
    return window.end()


# -- the peers (measurement processes; asyncio on uvloop) ----------------------------------------


async def _arate(total: Callable[[], int], seconds: float) -> dict[str, float]:
    await asyncio.sleep(WARMUP_SECONDS)
    window = Window(total)
    window.start()
    await asyncio.sleep(seconds)
    return window.end()


async def _open_all(open_one: Callable[[], Any], count: int) -> tuple[Any, list[Any], dict[str, Any]]:
    """Open one connection (modules loaded, not counted), then ``count`` at once; returns the
    first, the others, and the connect time and RSS per idle connection."""
    first = await open_one()
    await asyncio.sleep(0.2)
    before = rss_bytes()
    started = time.monotonic()
    connections = list(await asyncio.gather(*(open_one() for _ in range(count))))
    connect_s = time.monotonic() - started
    await asyncio.sleep(SETTLE_SECONDS)
    figures = {
        "connected": len(connections),
        "connect_s": connect_s,
        "rss_per_connection": (rss_bytes() - before) / count,
    }
    return first, connections, figures


async def websockets_pingpong(url: str, count: int, seconds: float) -> dict[str, Any]:
    from websockets.asyncio.client import ClientConnection, connect

    def open_one() -> Any:
        return connect(url, compression=None, ping_interval=None, max_size=2**16, open_timeout=120)

    first, connections, figures = await _open_all(open_one, count)
    counts = [0] * count
    running = True

    async def loop(i: int, ws: ClientConnection) -> None:
        send, recv = ws.send, ws.recv
        while running:
            await send(PAYLOAD)
            await recv()
            counts[i] += 1

    tasks = [asyncio.create_task(loop(i, ws)) for i, ws in enumerate(connections)]
    rates = await _arate(lambda: sum(counts), seconds)
    running = False
    await asyncio.gather(*tasks)
    await asyncio.gather(first.close(), *(ws.close() for ws in connections))
    return {**figures, **rates}


async def picows_pingpong(url: str, count: int, seconds: float) -> dict[str, Any]:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    running = True

    class PingPong(WSListener):
        count = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            self.count += 1
            if running:
                transport.send(WSMsgType.BINARY, PAYLOAD)

    def open_one() -> Any:
        return ws_connect(PingPong, url, websocket_handshake_timeout=120)

    (first, _), connections, figures = await _open_all(open_one, count)
    for transport, _ in connections:
        transport.send(WSMsgType.BINARY, PAYLOAD)
    rates = await _arate(lambda: sum(listener.count for _, listener in connections), seconds)
    running = False
    for transport, _ in [(first, None), *connections]:
        transport.disconnect()
    await asyncio.sleep(0.2)
    return {**figures, **rates}


def run_child(kind: str, argument: str, url: str, count: int, seconds: float) -> dict[str, Any]:
    raise_fd_limit()
    if kind == "pingpong" and argument == "websync":
        return websync_pingpong(url, count, seconds)
    if kind == "pingpong":
        import uvloop

        peer = websockets_pingpong if argument == "websockets" else picows_pingpong
        result: dict[str, Any] = uvloop.run(peer(url, count, seconds))
        return result
    if kind == "memory":
        return websync_memory(url, count)
    if kind == "storm":
        return websync_storm(url, count)
    if kind == "idle":
        return websync_idle(url, count)
    raise ValueError(f"unknown measurement {kind!r}")


# -- the driver ----------------------------------------------------------------------------------


def measure(
    kind: str, argument: str, url: str, count: int, seconds: float, switch_interval: float
) -> dict[str, Any] | None:
    """One measurement in a fresh process on CLIENT_CORE; None (and a warning) if it failed."""
    argv = [sys.executable, __file__, "--child", kind, argument, url, "--connections", str(count)]
    argv += ["--seconds", str(seconds), "--switch-interval", str(switch_interval)]
    try:
        output = subprocess.run(
            _pinned(CLIENT_CORE, argv), capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=ROOT, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"warning: {kind} {argument} took over {CHILD_TIMEOUT}s", file=sys.stderr)
        return None
    lines = output.stdout.strip().splitlines()
    if output.returncode or not lines:
        print(f"warning: {kind} {argument} failed ({output.returncode}):\n{output.stderr[-3000:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    print(f"{kind} {argument}: {result}", file=sys.stderr, flush=True)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else {"pingpong", "memory", "storm", "idle"}
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "switch_interval": args.switch_interval,
        "versions": _versions(),
        "reps": args.reps,
        "connections": args.connections,
        "fd_limit": raise_fd_limit(),
    }
    with echo_server() as url:
        if "pingpong" in only:
            samples: dict[str, list[dict[str, Any]]] = {}
            for rep in range(args.reps):
                for client in CLIENTS[rep % len(CLIENTS) :] + CLIENTS[: rep % len(CLIENTS)]:
                    result = measure("pingpong", client, url, args.connections, args.seconds, args.switch_interval)
                    if result is not None:
                        samples.setdefault(client, []).append({**result, "repetition": rep})
            report["pingpong"] = {"samples": samples, "medians": {c: _median(r) for c, r in samples.items()}}
            websync_parts = [r["parts"] for r in samples.get("websync", [])]
            if websync_parts:
                report["pingpong"]["websync_parts"] = {
                    kind: statistics.median(p.get(kind, 0) for p in websync_parts) for kind in websync_parts[0]
                }
        if "memory" in only:
            report["memory"] = measure("memory", "websync", url, args.connections, 0, args.switch_interval)
        if "storm" in only:
            runs = [
                measure("storm", "websync", url, args.connections, 0, args.switch_interval)
                for _ in range(args.storm_runs)
            ]
            report["storm"] = [r for r in runs if r is not None]
            runs = [
                measure("storm", "websync", url, args.connections, 0, CPYTHON_SWITCH_INTERVAL)
                for _ in range(args.storm_default_runs)
            ]
            report["storm_cpython_interval"] = [r for r in runs if r is not None]
        if "idle" in only:
            report["idle"] = measure("idle", "websync", url, args.idle_connections, 0, args.switch_interval)
    report["machine"]["load_after"] = os.getloadavg()
    return report


def table(report: dict[str, Any]) -> str:
    """The Markdown tables docs/load.md shows."""
    lines = []
    n = report["connections"]
    if "pingpong" in report:
        medians = report["pingpong"]["medians"]
        lines += [f"| {n:,} connections, 64-byte ping-pong | " + " | ".join(TITLES[c] for c in CLIENTS) + " |"]
        lines += ["|---|" + "---|" * len(CLIENTS)]
        rows: list[tuple[str, Callable[[dict[str, float]], str]]] = [
            ("aggregate round trips/s", lambda m: f"{m['rate']:,.0f}"),
            ("CPU per round trip, user + kernel", lambda m: f"{m['user_us']:.1f} + {m['system_us']:.1f} µs"),
            ("context switches per round trip", lambda m: f"{m['switches']:.2f}"),
            (f"connect all {n:,}", lambda m: f"{m['connect_s']:.2f} s"),
            ("RSS per idle connection", lambda m: f"{m['rss_per_connection'] / KIB:.1f} KiB"),
        ]
        for title, cell in rows:
            lines.append(f"| {title} | " + " | ".join(cell(medians[c]) if c in medians else "" for c in CLIENTS) + " |")
        if {"websync", "websockets"} <= set(medians):
            ratio = medians["websync"]["rate"] / medians["websockets"]["rate"]
            lines += ["", f"websync / websockets round trips: {ratio:.2f}x (goal ≥ {GOALS['rate_vs_websockets']:.1f}x)"]
            lines.append(_repetition_ratios(report["pingpong"]["samples"]))
        parts = report["pingpong"].get("websync_parts")
        if parts:
            lines.append(
                "websync RSS per idle connection by mapping: "
                + ", ".join(f"{kind} {size / KIB:.1f} KiB" for kind, size in sorted(parts.items()))
            )
    memory = report.get("memory")
    if memory:
        lines += [
            "",
            f"websync Python objects per idle connection (tracemalloc): {memory['python_per_connection'] / KIB:.1f} KiB",
        ]
        lines += [f"  {row['bytes']:8,.0f} B  {row['where']}" for row in memory["top"]]
    for key, interval in (("storm", SWITCH_INTERVAL), ("storm_cpython_interval", CPYTHON_SWITCH_INTERVAL)):
        storm = report.get(key)
        if storm:
            lines += ["", f"GIL switch interval {interval * 1000:g} ms:", *_storm_lines(storm, n)]
    idle = report.get("idle")
    if idle:
        lines += [
            "",
            f"{idle['asked']:,} idle workers: {idle['started']:,} started, {idle['connected']:,} connected"
            f" ({idle['lost']:,} failed) in"
            f" {idle['connect_s']:.2f} s; RSS {idle['rss'] / MIB:.0f} MiB ({idle['rss_per_connection'] / KIB:.1f} KiB"
            f" per connection); stop() of the tree {idle['stop_s']:.2f} s"
            + (f"; wall: {idle['wall']}" if idle["wall"] else ""),
        ]
    return "\n".join(lines)


def _repetition_ratios(samples: dict[str, list[dict[str, Any]]]) -> str:
    """websync ÷ websockets in each repetition, with websync's switches per round trip: a run in
    the GIL convoy (docs/load.md, third round) shows as 2-4 switches."""
    theirs = {r["repetition"]: r for r in samples["websockets"]}
    cells = [
        f"{r['rate'] / theirs[r['repetition']]['rate']:.2f}x ({r['switches']:.1f})"
        for r in samples["websync"]
        if r["repetition"] in theirs
    ]
    return "per repetition, websync / websockets (websync's switches per round trip): " + ", ".join(cells)


def _storm_lines(storm: list[dict[str, Any]], n: int) -> list[str]:
    connects = [r["connect_s"] for r in storm]
    restarts = [r["restart_s"] for r in storm if "restart_s" in r]
    lines = [
        f"connect storm, {n:,} eager workers, {len(storm)} runs: last connected after "
        + ", ".join(f"{s:.2f}" for s in connects)
        + f" s (max {max(connects):.2f} s; goal ≤ {GOALS['storm_s']:.0f} s)"
    ]
    overflows = [r["listen_overflows"] for r in storm if "listen_overflows" in r]
    if overflows:
        lines.append(f"accept queue overflows during the runs (SYNs dropped): {', '.join(map(str, overflows))}")
    if restarts:
        lines.append(
            f"{RESTARTED} restarted while {n - RESTARTED:,} run: back after "
            + ", ".join(f"{s:.2f}" for s in restarts)
            + f" s (max {max(restarts):.2f} s; goal ≤ {GOALS['restart_s']:.0f} s)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions of the ping-pong runs")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS)
    parser.add_argument("--storm-runs", type=int, default=10)
    parser.add_argument(
        "--storm-default-runs", type=int, default=3, help="storm runs at CPython's default switch interval, to compare"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=SWITCH_INTERVAL,
        help="sys.setswitchinterval() in websync's processes (docs/load.md; CPython's default is 0.005)",
    )
    parser.add_argument("--seconds", type=float, default=PINGPONG_SECONDS, help="of ping-pong, after a warm-up")
    parser.add_argument("--only", help="comma-separated subset of: pingpong, memory, storm, idle")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "load.json", help="where to write the results")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ARGUMENT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, argument, url = args.child
        sys.setswitchinterval(args.switch_interval)
        print(json.dumps(run_child(kind, argument, url, args.connections, args.seconds)), flush=True)
        os._exit(0)  # leftover daemon threads of a wall run must not hold the exit
    report = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    print(f"\nresults: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
