"""Side-by-side benchmark of blocking WebSocket clients against one picows echo server (issue 6).

Clients: websync (blocking ``connect`` and the callback worker), websocket-client (pure Python: its
``wsaccel`` accelerator is blocked), ``websockets.sync`` and a raw socket that sends pre-built frames
and counts echoed bytes without parsing them. The server (``tools/bench_server.py``, picows on
uvloop) runs pinned to one core and every measurement runs in a fresh process pinned to the other,
clients interleaved, repeated; the table shows medians.

    python tools/bench.py                 # full run: table on stdout, JSON in docs/bench.json
    python tools/bench.py --reps 1 --workloads pingpong,stream --no-sweep   # a quick look

Each measurement process is this script with ``--child CLIENT WORKLOAD SIZE URL``: it prints one
JSON object (messages per second, round-trip median, CPU seconds, RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE, CLIENT_CORE = 0, 1
KIB, MIB = 1024, 1024 * 1024
PINGPONG_SECONDS = 1.0
CHILD_TIMEOUT = 120
WARMUP_MESSAGES = 200
IDLE_CONNECTIONS = 100
SWEEP_SIZES = (64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB)
DEFLATE_SIZES = (64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB)
CLIENTS = ("websync", "websocket-client", "websockets", "raw")
BASELINES = {
    "websocket-client": "websocket-client 1.9 (pure Python)",
    "websockets": "websockets.sync",
    "raw": "raw socket",
}

# (key, workload, size, clients, title)
WORKLOADS: list[tuple[str, str, int, tuple[str, ...], str]] = [
    ("pingpong", "pingpong", 256, CLIENTS, "ping-pong 256 B"),
    ("stream", "stream", 256, CLIENTS, "stream 256 B binary"),
    ("text", "text", 256, CLIENTS, "stream text 256 B"),
    ("pingpong_1m", "pingpong", MIB, CLIENTS, "ping-pong 1 MiB"),
    ("stream_1m", "stream", MIB, CLIENTS, "stream 1 MiB"),
    ("worker_pingpong", "worker-pingpong", 256, ("websync",), "worker ping-pong 256 B (handle_frame replies)"),
    ("worker_stream", "worker-stream", 256, ("websync",), "worker stream 256 B (worker.send, handle_frame)"),
    ("idle", "idle", 0, ("websync", "websocket-client", "websockets"), "memory per idle connection"),
]

# The goals: (what, numerator, denominator, minimum ratio).
GOALS: list[tuple[str, tuple[str, str], tuple[str, str], float]] = [
    ("ping-pong 256 B vs websocket-client", ("pingpong", "websync"), ("pingpong", "websocket-client"), 1.25),
    ("ping-pong 256 B vs websockets.sync", ("pingpong", "websync"), ("pingpong", "websockets"), 1.5),
    ("ping-pong 256 B vs raw socket", ("pingpong", "websync"), ("pingpong", "raw"), 0.8),
    ("stream 256 B vs websocket-client", ("stream", "websync"), ("stream", "websocket-client"), 2.0),
    ("stream 256 B vs websockets.sync", ("stream", "websync"), ("stream", "websockets"), 1.25),
    ("stream text 256 B vs websocket-client", ("text", "websync"), ("text", "websocket-client"), 3.0),
    ("stream text 256 B vs websockets.sync", ("text", "websync"), ("text", "websockets"), 1.0),
    ("ping-pong 1 MiB vs websockets.sync", ("pingpong_1m", "websync"), ("pingpong_1m", "websockets"), 1.0),
    ("stream 1 MiB vs websockets.sync", ("stream_1m", "websync"), ("stream_1m", "websockets"), 1.0),
    ("worker ping-pong vs blocking ping-pong", ("worker_pingpong", "websync"), ("pingpong", "websync"), 0.8),
    ("worker stream vs blocking stream", ("worker_stream", "websync"), ("stream", "websync"), 0.8),
]


def stream_count(size: int) -> int:
    """Messages per stream run: about 64 MiB of payload, between 100 and 40,000 messages."""
    return max(100, min(40_000, 64 * MIB // max(size, 1)))


# -- the clients (run in the measurement process) ------------------------------------------------


class Client:
    """The three calls a workload makes; subclasses bind the library's own methods directly."""

    send_binary: Callable[[bytes], Any]
    send_text: Callable[[str], Any]
    recv: Callable[[], Any]

    def close(self) -> None:
        raise NotImplementedError


class WebsyncClient(Client):
    def __init__(self, url: str) -> None:
        import websync

        self.ws = websync.connect(url, max_size=None)
        self.send_binary = self.send_text = self.ws.send
        self.recv = self.ws.recv

    def close(self) -> None:
        self.ws.close()


class WebsocketClientClient(Client):
    def __init__(self, url: str) -> None:
        sys.modules["wsaccel"] = None  # type: ignore[assignment]  # block the C accelerator
        import websocket

        self.ws = websocket.create_connection(url)
        self.send_binary = self.ws.send_binary
        self.send_text = self.ws.send
        self.recv = self.ws.recv

    def close(self) -> None:
        self.ws.close()


class WebsocketsClient(Client):
    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None).__enter__()  # websockets 17 warns unless entered
        self.send_binary = self.send_text = self.ws.send
        self.recv = self.ws.recv

    def close(self) -> None:
        self.ws.close()


CLIENT_CLASSES: dict[str, Callable[[str], Client]] = {
    "websync": WebsyncClient,
    "websocket-client": WebsocketClientClient,
    "websockets": WebsocketsClient,
}


class RawSocket:
    """The baseline: a hand-made handshake, then constant pre-masked frames and byte counting."""

    def __init__(self, url: str) -> None:
        import base64
        import socket

        host, _, port = url.removeprefix("ws://").partition(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        assert response.startswith(b"HTTP/1.1 101"), response
        self.buffer = bytearray(256 * KIB)

    @staticmethod
    def frame(opcode: int, payload: bytes, masked: bool) -> bytes:
        """One whole frame; masked with a zero key (the server unmasks it all the same)."""
        length = len(payload)
        mask_bit = 0x80 if masked else 0
        if length < 126:
            header = bytes([0x80 | opcode, mask_bit | length])
        elif length < 65536:
            header = bytes([0x80 | opcode, mask_bit | 126]) + length.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, mask_bit | 127]) + length.to_bytes(8, "big")
        return header + (b"\0\0\0\0" if masked else b"") + payload

    def read_exactly(self, size: int) -> None:
        recv_into, buffer = self.sock.recv_into, self.buffer
        while size > 0:
            size -= recv_into(buffer, min(size, len(buffer)))

    def close(self) -> None:
        self.sock.close()


def _payload(size: int) -> bytes:
    return (b"websync-bench " * (size // 14 + 1))[:size]


def pingpong(client: Client, size: int) -> dict[str, Any]:
    """Send, wait for the echo, repeat for PINGPONG_SECONDS; the round-trip median too."""
    message = _payload(size)
    send, recv, clock = client.send_binary, client.recv, time.perf_counter
    for _ in range(min(WARMUP_MESSAGES, 20 if size >= MIB else WARMUP_MESSAGES)):
        send(message)
        recv()
    rounds: list[float] = []
    cpu = time.process_time()
    start = clock()
    end = start + PINGPONG_SECONDS
    now = start
    while now < end:
        send(message)
        recv()
        later = clock()
        rounds.append(later - now)
        now = later
    return _result(len(rounds), now - start, time.process_time() - cpu, rounds)


def stream(client: Client, size: int, text: bool = False) -> dict[str, Any]:
    """A sender thread sends as fast as it can; this thread receives the echoes."""
    payload = _payload(size)
    message: bytes | str = payload.decode() if text else payload
    send: Callable[[Any], Any] = client.send_text if text else client.send_binary
    recv = client.recv
    for _ in range(min(WARMUP_MESSAGES, 20 if size >= MIB else WARMUP_MESSAGES)):
        send(message)
        recv()
    count = stream_count(size)

    def sender() -> None:
        for _ in range(count):
            send(message)

    thread = threading.Thread(target=sender)
    cpu = time.process_time()
    start = time.perf_counter()
    thread.start()
    for _ in range(count):
        recv()
    elapsed = time.perf_counter() - start
    thread.join()
    return _result(count, elapsed, time.process_time() - cpu)


def raw_pingpong(raw: RawSocket, size: int) -> dict[str, Any]:
    payload = _payload(size)
    frame, echo = raw.frame(2, payload, True), len(raw.frame(2, payload, False))
    sendall, read_exactly, clock = raw.sock.sendall, raw.read_exactly, time.perf_counter
    for _ in range(WARMUP_MESSAGES):
        sendall(frame)
        read_exactly(echo)
    rounds: list[float] = []
    cpu = time.process_time()
    start = now = clock()
    end = start + PINGPONG_SECONDS
    while now < end:
        sendall(frame)
        read_exactly(echo)
        later = clock()
        rounds.append(later - now)
        now = later
    return _result(len(rounds), now - start, time.process_time() - cpu, rounds)


def raw_stream(raw: RawSocket, size: int, text: bool = False) -> dict[str, Any]:
    payload = _payload(size)
    opcode = 1 if text else 2
    frame, echo = raw.frame(opcode, payload, True), len(raw.frame(opcode, payload, False))
    count = stream_count(size)
    sendall = raw.sock.sendall
    thread = threading.Thread(target=lambda: [sendall(frame) for _ in range(count)])
    cpu = time.process_time()
    start = time.perf_counter()
    thread.start()
    raw.read_exactly(echo * count)
    elapsed = time.perf_counter() - start
    thread.join()
    return _result(count, elapsed, time.process_time() - cpu)


def run_worker_pingpong(url: str, size: int, on_echo: Callable[[float], bool]) -> None:
    """Ping-pong through a ``websync.start()`` worker: each echo reaches ``handle_frame``, which
    returns the next message, until ``on_echo(time.perf_counter())`` returns True. ``on_echo``
    also gets the connection's time, before the first message."""
    import websync

    message = websync.Binary(_payload(size))
    done = threading.Event()

    class PingPong(websync.Handler):
        def handle_connect(self, response: websync.Response) -> websync.Frame:
            on_echo(time.perf_counter())
            return message

        def handle_frame(self, frame: websync.Text | websync.Binary) -> websync.Frame | websync.Stop:
            if on_echo(time.perf_counter()):
                done.set()
                return websync.Stop()
            return message

        def handle_disconnect(self, reason: Exception, attempt: int) -> websync.Stop:
            done.set()
            return websync.Stop()

    PingPong.url = url
    worker = websync.start(PingPong(), max_size=None)
    done.wait()
    worker.join(10)


def worker_pingpong(url: str, size: int) -> dict[str, Any]:
    """websync's callback path: each echo reaches ``handle_frame``, which returns the next message."""
    rounds: list[float] = []
    marks: dict[str, float] = {}

    def on_echo(now: float) -> bool:
        if "last" in marks:
            if "start" not in marks and len(rounds) == WARMUP_MESSAGES:
                marks["start"], marks["cpu"] = now, time.process_time()
                del rounds[:]
                marks["end"] = now + PINGPONG_SECONDS
            rounds.append(now - marks["last"])
        marks["last"] = now
        if "end" in marks and now >= marks["end"]:
            marks["cpu"] = time.process_time() - marks["cpu"]
            return True
        return False

    run_worker_pingpong(url, size, on_echo)
    return _result(len(rounds), marks["last"] - marks["start"], marks["cpu"], rounds)


def worker_stream(url: str, size: int) -> dict[str, Any]:
    """websync's callback path: a thread calls ``worker.send``, echoes arrive in ``handle_frame``."""
    import websync

    payload = _payload(size)
    count = stream_count(size)
    connected, done = threading.Event(), threading.Event()
    received = [0]

    class Counter(websync.Handler):
        def handle_connect(self, response: websync.Response) -> None:
            connected.set()

        def handle_frame(self, frame: websync.Text | websync.Binary) -> None:
            received[0] += 1
            if received[0] == count + WARMUP_MESSAGES:
                done.set()

    Counter.url = url
    worker = websync.start(Counter(), max_size=None, max_queue=None)
    connected.wait(10)
    send = worker.send
    for _ in range(WARMUP_MESSAGES):
        send(payload)
    while received[0] < WARMUP_MESSAGES:
        time.sleep(0.001)
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(count):
        send(payload)
    done.wait()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    worker.stop()
    return _result(count, elapsed, cpu)


def idle(client_name: str, url: str) -> dict[str, Any]:
    """RSS growth per open, idle connection (the first connection, which loads modules, not counted)."""
    first = CLIENT_CLASSES[client_name](url)
    time.sleep(0.2)
    before = _rss()
    clients = [CLIENT_CLASSES[client_name](url) for _ in range(IDLE_CONNECTIONS)]
    time.sleep(0.5)
    per_connection = (_rss() - before) / IDLE_CONNECTIONS
    for client in [first, *clients]:
        client.close()
    return {"rss_per_connection": per_connection, "connections": IDLE_CONNECTIONS}


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _result(count: int, elapsed: float, cpu: float, rounds: list[float] | None = None) -> dict[str, Any]:
    result = {"messages": count, "seconds": elapsed, "rate": count / elapsed, "cpu_per_100k": cpu / count * 100_000}
    if rounds:
        result["rtt_median_us"] = statistics.median(rounds) * 1e6
    return result


def run_child(client_name: str, workload: str, size: int, url: str) -> dict[str, Any]:
    """One measurement in this process."""
    if workload == "idle":
        return idle(client_name, url)
    if workload == "worker-pingpong":
        return worker_pingpong(url, size)
    if workload == "worker-stream":
        return worker_stream(url, size)
    if client_name == "raw":
        raw = RawSocket(url)
        try:
            if workload == "pingpong":
                return raw_pingpong(raw, size)
            return raw_stream(raw, size, text=workload == "text")
        finally:
            raw.close()
    client = CLIENT_CLASSES[client_name](url)
    try:
        if workload == "pingpong":
            return pingpong(client, size)
        return stream(client, size, text=workload == "text")
    finally:
        client.close()


# -- in-process measurements -------------------------------------------------------------------


def tracing_off_cost(per_message_seconds: float) -> dict[str, float]:
    """What switched-off tracing adds to one message: the ``tracer.enabled`` checks on its path.

    A sent and a received message each pass one check (``Connection.send`` and ``Connection.feed``);
    the check is timed in isolation and set against a whole message's measured cost.
    """
    import timeit

    from websync.net.tracing import Tracer

    class Holder:
        def __init__(self) -> None:
            self.tracer = Tracer("bench")

    holder = Holder()
    number = 2_000_000
    check = min(timeit.repeat("if h.tracer.enabled: pass", globals={"h": holder}, number=number, repeat=5)) / number
    empty = min(timeit.repeat("pass", number=number, repeat=5)) / number
    per_message = 2 * max(check - empty, 0.0)
    return {"check_ns": per_message * 1e9, "percent": 100 * per_message / per_message_seconds}


def deflate_costs() -> list[dict[str, float]]:
    """Sans-IO cost of permessage-deflate per message size: one message sent and one received.

    A client and a server :class:`~websync.core.protocol.Protocol` exchange a JSON-like message in
    memory, with and without the extension; the client's share is half the round.
    """
    from websync.core.frames import Text
    from websync.core.protocol import Protocol, Role
    from websync.extensions.permessage_deflate import PerMessageDeflate

    def per_round(size: int, deflate: bool) -> float:
        client = Protocol(Role.CLIENT, max_size=None, extensions=[PerMessageDeflate()] if deflate else [])
        server = Protocol(Role.SERVER, max_size=None, extensions=[PerMessageDeflate()] if deflate else [])
        record = '{"id": 12345, "name": "websync", "values": [1, 2, 3], "ok": true}, '
        message = Text((record * (size // len(record) + 1))[:size])
        rounds = max(20, min(5000, 4 * MIB // size))

        def exchange() -> None:
            for _ in range(rounds):
                (echo,) = server.receive_data(client.send(message))
                client.receive_data(server.send(echo))

        exchange()
        best = min(_timed(exchange) for _ in range(3))
        return best / rounds

    costs = []
    for size in DEFLATE_SIZES:
        plain, compressed = per_round(size, False), per_round(size, True)
        costs.append(
            {"size": size, "plain_us": plain / 2 * 1e6, "deflate_us": compressed / 2 * 1e6, "ratio": compressed / plain}
        )
    return costs


def _timed(function: Callable[[], None]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# -- the driver --------------------------------------------------------------------------------


def _pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else argv


@contextmanager
def echo_server() -> Iterator[str]:
    """Start tools/bench_server.py on SERVER_CORE and yield its URL."""
    process = subprocess.Popen(
        _pinned(SERVER_CORE, [sys.executable, str(ROOT / "tools" / "bench_server.py")]),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the echo server did not start: {line!r}")
        yield f"ws://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.kill()
        process.wait()


def measure(client_name: str, workload: str, size: int, url: str) -> dict[str, Any] | None:
    """Run one measurement in a fresh process on CLIENT_CORE; None (and a warning) if it failed."""
    argv = [sys.executable, __file__, "--child", client_name, workload, str(size), url]
    try:
        output = subprocess.run(
            _pinned(CLIENT_CORE, argv), capture_output=True, text=True, timeout=CHILD_TIMEOUT, cwd=ROOT, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"warning: {client_name} {workload} {size} took over {CHILD_TIMEOUT}s", file=sys.stderr)
        return None
    if output.returncode:
        print(f"warning: {client_name} {workload} {size} failed:\n{output.stderr}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def run(reps: int, selected: set[str] | None, sweep: bool) -> dict[str, Any]:
    """All measurements, interleaved: each repetition runs every job, rotating the client order."""
    jobs = [
        (key, workload, size, clients)
        for key, workload, size, clients, _ in WORKLOADS
        if not selected or key in selected
    ]
    if sweep:
        done = {(workload, size) for _, workload, size, _ in jobs}
        jobs += [(f"sweep_{size}", "stream", size, CLIENTS) for size in SWEEP_SIZES if ("stream", size) not in done]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {key: {} for key, *_ in jobs}
    with echo_server() as url:
        for rep in range(reps):
            for key, workload, size, clients in jobs:
                order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
                for client_name in order:
                    result = measure(client_name, workload, size, url)
                    if result is not None:
                        samples[key].setdefault(client_name, []).append({**result, "repetition": rep})
            print(f"repetition {rep + 1}/{reps} done", file=sys.stderr, flush=True)
    medians = {
        key: {client_name: _median(results) for client_name, results in by_client.items()}
        for key, by_client in samples.items()
    }
    sizes = {key: size for key, _, size, _ in jobs}
    return {"samples": samples, "medians": medians, "sizes": sizes}


def _median(results: list[dict[str, Any]]) -> dict[str, float]:
    figures = [name for name, value in results[0].items() if isinstance(value, (int, float)) and name != "repetition"]
    return {name: statistics.median(r[name] for r in results) for name in figures}


def ratios(
    medians: dict[str, dict[str, dict[str, float]]], samples: dict[str, dict[str, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """The issue's goals with the measured ratio (of the medians) and whether it is met, and the
    ratios of the interleaved repetitions one by one (their median, lowest and highest): how far
    the machine's drift moves the ratio."""
    rows = []
    for what, (key_a, client_a), (key_b, client_b), goal in GOALS:
        try:
            ratio = medians[key_a][client_a]["rate"] / medians[key_b][client_b]["rate"]
            denominators = {b["repetition"]: b["rate"] for b in samples[key_b][client_b]}
        except KeyError:
            continue
        paired = [
            a["rate"] / denominators[a["repetition"]]
            for a in samples[key_a][client_a]
            if a["repetition"] in denominators
        ]
        per_repetition = [statistics.median(paired), min(paired), max(paired)] if paired else None
        rows.append(
            {"goal": what, "ratio": ratio, "per_repetition": per_repetition, "minimum": goal, "met": ratio >= goal}
        )
    return rows


def sweep_series(
    medians: dict[str, dict[str, dict[str, float]]], sizes: dict[str, int]
) -> dict[str, list[list[float]]]:
    """Per client, [size, messages per second] of every stream run, for the plot."""
    series: dict[str, list[list[float]]] = {}
    for key, by_client in medians.items():
        if key.startswith("sweep_") or key in ("stream", "stream_1m"):
            for client_name, median in by_client.items():
                series.setdefault(client_name, []).append([sizes[key], median["rate"]])
    return {name: sorted(points) for name, points in series.items()}


def table(report: dict[str, Any]) -> str:
    """The Markdown table the README shows."""
    medians = report["medians"]
    lines = [
        "| workload | websync | websocket-client (pure Python) | websockets.sync | raw socket |",
        "|---|---|---|---|---|",
    ]
    for key, _, _, _, title in WORKLOADS:
        if key not in medians:
            continue
        cells = []
        for client_name in CLIENTS:
            median = medians[key].get(client_name)
            if median is None:
                cells.append("")
            elif "rss_per_connection" in median:
                cells.append(f"{median['rss_per_connection'] / KIB:,.0f} KiB")
            else:
                cell = f"{median['rate']:,.0f}"
                if "rtt_median_us" in median and median["rate"] > 1000:
                    cell += f" ({median['rtt_median_us']:.0f} µs)"
                cells.append(cell)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    for key, title in (
        ("pingpong", "CPU s per 100k msgs, ping-pong 256 B"),
        ("stream", "CPU s per 100k msgs, stream 256 B"),
    ):
        if key in medians:
            cells = [f"{medians[key][c]['cpu_per_100k']:.2f}" if c in medians[key] else "" for c in CLIENTS]
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += ["", "| goal | ratio | per repetition: median (range) | minimum | met |", "|---|---|---|---|---|"]
    for row in report["ratios"]:
        spread = "" if row["per_repetition"] is None else "{:.2f} ({:.2f}–{:.2f})".format(*row["per_repetition"])
        lines.append(
            f"| {row['goal']} | {row['ratio']:.2f} | {spread} | {row['minimum']:.2f} | {'yes' if row['met'] else 'NO'} |"
        )
    if "stream" in medians and {"websync", "websocket-client"} <= set(medians["stream"]):
        ours, theirs = (
            medians["stream"]["websync"]["cpu_per_100k"],
            medians["stream"]["websocket-client"]["cpu_per_100k"],
        )
        lines.append(
            f"| CPU per 100k msgs (stream 256 B) at or below websocket-client | {ours / theirs:.2f} | | ≤ 1.00 | {'yes' if ours <= theirs else 'NO'} |"
        )
    if "tracing_off" in report:
        cost = report["tracing_off"]
        lines.append(
            f"| tracing switched off (% of a stream message) | {cost['percent']:.2f}% | | < 3% | {'yes' if cost['percent'] < 3 else 'NO'} |"
        )
    if "deflate" in report:
        lines += [
            "",
            "| permessage-deflate, message size | without (µs/msg) | with (µs/msg) | ratio |",
            "|---|---|---|---|",
        ]
        for row in report["deflate"]:
            lines.append(
                f"| {_size(row['size'])} | {row['plain_us']:.1f} | {row['deflate_us']:.1f} | {row['ratio']:.1f}x |"
            )
    return "\n".join(lines)


def _size(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB" if size >= KIB else f"{size} B"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="repetitions of every measurement (default 7)")
    parser.add_argument("--workloads", help=f"comma-separated subset of: {', '.join(k for k, *_ in WORKLOADS)}")
    parser.add_argument("--no-sweep", action="store_true", help="skip the message-size sweep of the plot")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "bench.json", help="where to write the results")
    parser.add_argument("--child", nargs=4, metavar=("CLIENT", "WORKLOAD", "SIZE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        client_name, workload, size, url = args.child
        print(json.dumps(run_child(client_name, workload, int(size), url)))
        return
    selected = set(args.workloads.split(",")) if args.workloads else None
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_before": os.getloadavg(),  # other work on the machine skews latency-bound results
        },
        "versions": _versions(),
        "reps": args.reps,
        **run(args.reps, selected, not args.no_sweep),
    }
    report["ratios"] = ratios(report["medians"], report["samples"])
    report["series"] = sweep_series(report["medians"], report["sizes"])
    if "stream" in report["medians"] and "websync" in report["medians"]["stream"]:
        report["tracing_off"] = tracing_off_cost(1 / report["medians"]["stream"]["websync"]["rate"])
    report["deflate"] = deflate_costs()
    report["machine"]["load_after"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    print(f"\nresults: {args.json}", file=sys.stderr)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("websync", "websocket-client", "websockets", "picows", "uvloop"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    found["wsaccel"] = "blocked"
    return found


if __name__ == "__main__":
    main()
