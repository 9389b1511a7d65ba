"""Where a small-message round trip goes: the same ping-pong, one layer added at a time.

Layers, each a fresh process pinned to its own core against tools/bench_server.py (picows):

* ``raw``: pre-built frames on a blocking socket, echoes counted, not parsed (the floor);
* ``raw-poll``: the same, with a ``poll()`` before each ``recv`` (a non-blocking socket's wait);
* ``core``: websync's sans-IO ``Protocol`` on a blocking socket: encodes and parses for real,
  no threads, no locks;
* ``websync``: ``websync.connect()``;
* ``worker``: a ``websync.start()`` worker whose ``handle_frame`` returns the next message;
* ``websocket-client``: websocket-client, pure Python, for comparison.

It prints, per layer, the median round trip and the user and system CPU time per round trip;
with ``--instructions``, the user-space instructions per round trip instead, counted by
valgrind's cachegrind (two runs of different lengths, the difference divided by the extra round
trips): a figure the machine's noise does not move, for comparing one change with the next::

    python tools/bench_layers.py [--reps 7] [--size 256]
    python tools/bench_layers.py --instructions     # needs valgrind; a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import CLIENT_CLASSES, CLIENT_CORE, RawSocket, _payload, _pinned, echo_server, run_worker_pingpong

ROUND_TRIPS = 30_000
WARMUP = 2_000
COUNTED_ROUND_TRIPS = (2_000, 12_000)
"""The two run lengths of ``--instructions``: the difference is what 10,000 round trips cost."""
LAYERS = ("raw", "raw-poll", "core", "websync", "worker", "websocket-client")


def _exchange(layer: str, url: str, size: int) -> tuple[Callable[[], Any], Callable[[], None]]:
    """(one round trip, close) for ``layer``."""
    message = _payload(size)
    if layer in ("websync", "websocket-client"):
        client = CLIENT_CLASSES[layer](url)
        send, recv = client.send_binary, client.recv

        def client_round() -> Any:
            send(message)
            return recv()

        return client_round, client.close
    raw = RawSocket(url)
    sock, buffer = raw.sock, raw.buffer
    if layer == "core":
        from websync.core.protocol import Protocol, Role

        protocol = Protocol(Role.CLIENT, max_size=None)
        view = memoryview(buffer)

        def core_round() -> Any:
            sock.sendall(protocol.send_message(message))
            frames = protocol.receive_data(view[: sock.recv_into(view)])
            while not frames:
                frames = protocol.receive_data(view[: sock.recv_into(view)])
            return frames[0]

        return core_round, raw.close
    frame, echo = raw.frame(2, message, True), len(raw.frame(2, message, False))
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    wait = poller.poll if layer == "raw-poll" else None

    def raw_round() -> None:
        sock.sendall(frame)
        left = echo
        while left:
            if wait is not None:
                wait()
            left -= sock.recv_into(buffer, left)

    return raw_round, raw.close


def _worker_round_trips(url: str, size: int, rounds: int) -> tuple[float, Any, Any]:
    """A worker's ping-pong (``handle_frame`` returns the next message): (seconds, os.times()
    before and after) for ``rounds`` round trips after WARMUP."""
    marks: list[tuple[float, Any]] = []
    echoes = -1  # the connection's call comes first

    def on_echo(now: float) -> bool:
        nonlocal echoes
        echoes += 1
        if echoes in (WARMUP, WARMUP + rounds):
            marks.append((now, os.times()))
        return echoes == WARMUP + rounds

    run_worker_pingpong(url, size, on_echo)
    if len(marks) != 2:
        raise RuntimeError("the worker's ping-pong ended early")
    (start, before), (end, after) = marks
    return end - start, before, after


def measure(layer: str, url: str, size: int, rounds: int = ROUND_TRIPS) -> dict[str, float]:
    """``rounds`` round trips in this process: µs of wall clock, user and system CPU per round trip."""
    if layer == "worker":
        elapsed, before, after = _worker_round_trips(url, size, rounds)
    else:
        round_trip, close = _exchange(layer, url, size)
        try:
            for _ in range(WARMUP):
                round_trip()
            before, start = os.times(), time.perf_counter()
            for _ in range(rounds):
                round_trip()
            elapsed, after = time.perf_counter() - start, os.times()
        finally:
            close()
    per_round = 1e6 / rounds
    return {
        "wall_us": elapsed * per_round,
        "user_us": (after.user - before.user) * per_round,
        "system_us": (after.system - before.system) * per_round,
    }


def count_instructions(layer: str, url: str, size: int) -> float:
    """User-space instructions per round trip of ``layer``, counted by cachegrind."""
    counts = []
    for rounds in COUNTED_ROUND_TRIPS:
        argv = [sys.executable, __file__, "--child", layer, url, str(size), str(rounds)]
        valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        output = subprocess.run(valgrind + argv, capture_output=True, text=True, check=True)
        match = re.search(r"I\s+refs:\s+([\d,]+)", output.stderr)
        if match is None:
            raise RuntimeError(f"no instruction count from cachegrind:\n{output.stderr}")
        counts.append(int(match.group(1).replace(",", "")))
    return (counts[1] - counts[0]) / (COUNTED_ROUND_TRIPS[1] - COUNTED_ROUND_TRIPS[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions per layer (default 7)")
    parser.add_argument("--size", type=int, default=256, help="message size in bytes (default 256)")
    parser.add_argument("--instructions", action="store_true", help="count instructions per round trip (valgrind)")
    parser.add_argument(
        "--layers", default=",".join(LAYERS), help=f"comma-separated layers (default {','.join(LAYERS)})"
    )
    parser.add_argument("--child", nargs="+", metavar="LAYER URL SIZE [ROUNDS]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        layer, url, size, *rounds = args.child
        print(json.dumps(measure(layer, url, int(size), *map(int, rounds))))
        return
    layers = [layer for layer in args.layers.split(",") if layer]
    unknown = set(layers) - set(LAYERS)
    if unknown:
        parser.error(f"unknown layers: {', '.join(sorted(unknown))}")
    if args.instructions:
        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind (apt-get install valgrind)")
        with echo_server() as url:
            print(f"| layer ({args.size} B ping-pong) | instructions per round trip (user space) |")
            print("|---|---|")
            for layer in layers:
                print(f"| {layer} | {count_instructions(layer, url, args.size):,.0f} |", flush=True)
        return
    results: dict[str, list[dict[str, float]]] = {layer: [] for layer in layers}
    with echo_server() as url:
        for _ in range(args.reps):
            for layer in layers:
                argv = [sys.executable, __file__, "--child", layer, url, str(args.size)]
                output = subprocess.run(_pinned(CLIENT_CORE, argv), capture_output=True, text=True, check=True)
                results[layer].append(json.loads(output.stdout))
    print(f"| layer ({args.size} B ping-pong, medians of {args.reps}) | round trip | user CPU | system CPU |")
    print("|---|---|---|---|")
    for layer, runs in results.items():
        wall, user, system = (
            statistics.median(run[key] for run in runs) for key in ("wall_us", "user_us", "system_us")
        )
        print(f"| {layer} | {wall:.1f} µs | {user:.1f} µs | {system:.1f} µs |")


if __name__ == "__main__":
    main()
