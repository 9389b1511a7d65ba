"""Peers and a recording handler for the worker tests (their fixtures are in ``conftest.py``).

* :class:`ScriptedServer`: a real ``websockets`` server in a subprocess on 127.0.0.1. It echoes every
  message, obeys ``cmd:`` text commands (``cmd:ping:<data>:<wait>`` pings the client and reports
  ``pong:<data>`` or ``nopong:<data>``; ``cmd:close:<code>:<reason>`` closes), and reports each
  connection on stdout as JSON (``open`` with the request headers, ``close`` with the client's close
  code), which the test reads. It can be killed and restarted on the same port.
* :class:`SilentPeer`: a raw socket peer that completes the opening handshake and then never answers
  anything (no pong, no close), optionally sending some bytes right after its 101 response.
* :class:`Recorder`: a :class:`websync.Handler` that records every callback, in order, and lets a test
  wait on the record instead of sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import websync

SERVER_SCRIPT = r"""
import json, sys, threading
from websockets.sync.server import serve
from websockets.exceptions import ConnectionClosed

lock = threading.Lock()

def out(**event):
    with lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

def handler(ws):
    out(event="open", path=ws.request.path, headers=[[k, v] for k, v in ws.request.headers.raw_items()])
    try:
        for message in ws:
            if isinstance(message, str) and message.startswith("cmd:"):
                _, what, *args = message.split(":", 3)
                if what == "ping":
                    waiter = ws.ping(args[0].encode())
                    answered = waiter.wait(float(args[1]) if len(args) > 1 else 5.0)
                    ws.send(("pong:" if answered else "nopong:") + args[0])
                elif what == "close":
                    ws.close(int(args[0]), args[1] if len(args) > 1 else "")
            else:
                out(event="message", path=ws.request.path, data=message if isinstance(message, str) else message.hex())
                ws.send(message)
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    out(event="close", path=ws.request.path, code=None if received is None else received.code,
        reason=None if received is None else received.reason)

with serve(handler, "127.0.0.1", int(sys.argv[1])) as server:
    out(event="listening", port=server.socket.getsockname()[1])
    server.serve_forever()
"""


class ScriptedServer:
    """The ``websockets`` server subprocess; ``events`` is what it reported, in order."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def start(self, port: int | None = None) -> ScriptedServer:
        """Start (or restart, on the same port by default) and wait until it listens."""
        assert self.proc is None, "already running"
        with self.cond:
            self.events.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, str(self.port if port is None else port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        listening = self.wait_event(lambda e: e["event"] == "listening", timeout=10)
        self.port = listening["port"]
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:  # closed here, once the server is gone
            for line in proc.stdout:
                with self.cond:
                    self.events.append(json.loads(line))
                    self.cond.notify_all()

    def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5) -> dict[str, Any]:
        """The first reported event matching ``predicate``, waiting for it if needed."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = [e for e in self.events if predicate(e)]
            return bool(found)

        with self.cond:
            assert self.cond.wait_for(check, timeout), f"server never reported it; events: {self.events}"
        return found[0]

    def kill(self) -> None:
        """SIGKILL the server: its connections die without a close frame."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SilentPeer:
    """Accepts connections, completes the handshake, then never answers (pings, close: nothing).

    ``after_handshake`` bytes are written in the same ``send`` as the 101 response. ``received``
    collects what the client wrote after the handshake.
    """

    def __init__(self, after_handshake: bytes = b"", answer: bool = True) -> None:
        self.after_handshake = after_handshake
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.connected = threading.Event()
        self.received = bytearray()
        self.sockets: list[socket.socket] = []
        self._closing = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closing:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(sock)
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        request = b""
        try:
            while b"\r\n\r\n" not in request:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                request += chunk
            if not self.answer:
                self.connected.set()
                while sock.recv(4096):
                    pass
                return
            key = next(
                line.split(b":", 1)[1].strip()
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + self.after_handshake
            )
            self.connected.set()
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                self.received += chunk
        except OSError:
            return

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


Hook = Callable[[Any], Any]
_DEFAULT = object()


class Recorder(websync.Handler):
    """Records every callback as a tuple in ``events``; ``hooks[name](arg)`` chooses a return value."""

    def __init__(self, url: str, *, delay: float = 0.05, hooks: dict[str, Hook] | None = None) -> None:
        self.url = url
        self.delay = delay
        self.hooks = hooks or {}
        self.details: Any = None
        self.events: list[tuple[Any, ...]] = []
        self.threads: set[threading.Thread] = set()
        self.cond = threading.Condition()

    # -- recording and waiting

    def record(self, *event: Any) -> None:
        with self.cond:
            self.events.append(event)
            self.threads.add(threading.current_thread())
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[list[tuple[Any, ...]]], bool], timeout: float = 5) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.events), timeout), f"timed out; events: {self.events}"

    def wait_count(self, kind: str, count: int = 1, timeout: float = 5) -> None:
        self.wait_for(lambda events: self.count(kind) >= count, timeout)

    def count(self, kind: str) -> int:
        with self.cond:
            return sum(1 for event in self.events if event[0] == kind)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        with self.cond:
            return [event for event in self.events if event[0] == kind]

    def frames(self) -> list[Any]:
        return [event[1] for event in self.of("frame")]

    def wait_frames(self, count: int, timeout: float = 5) -> list[Any]:
        self.wait_count("frame", count, timeout)
        return self.frames()

    def _hook(self, name: str, arg: Any, default: Any = None) -> Any:
        hook = self.hooks.get(name)
        return default if hook is None else hook(arg)

    # -- the callbacks

    def connect(self) -> Any:
        self.record("connect")
        if self.details is not None:
            return self.details
        return super().connect()

    def handle_connect(self, response: websync.Response) -> Any:
        self.record("handle_connect", response.status)
        return self._hook("handle_connect", response)

    def handle_frame(self, frame: websync.Text | websync.Binary) -> Any:
        self.record("frame", frame.data)
        return self._hook("handle_frame", frame)

    def handle_ping(self, frame: websync.Ping) -> Any:
        self.record("ping", bytes(frame.data))
        return self._hook("handle_ping", frame, super().handle_ping(frame))

    def handle_pong(self, frame: websync.Pong) -> Any:
        self.record("pong", bytes(frame.data))
        return self._hook("handle_pong", frame)

    def handle_close(self, frame: websync.Close) -> Any:
        self.record("close", frame.code, frame.reason)
        return self._hook("handle_close", frame)

    def handle_info(self, message: Any) -> Any:
        self.record("info", message)
        return self._hook("handle_info", message)

    def handle_disconnect(self, reason: Exception, attempt: int) -> Any:
        self.record("disconnect", reason, attempt)
        return self._hook("handle_disconnect", (reason, attempt), websync.Reconnect(self.delay))

    def handle_error(self, error: Exception) -> Any:
        self.record("error", error)
        if "handle_error" in self.hooks:
            return self.hooks["handle_error"](error)
        return super().handle_error(error)

    def terminate(self, reason: object) -> None:
        self.record("terminate", reason)


def env_without_trace() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("WEBSYNC_TRACE", None)
    return env


_paths = iter(range(1, 1_000_000))


def unique_url(server: ScriptedServer | SilentPeer) -> str:
    """The server's URL with a path of its own, to find this test's connections in its report."""
    return f"{server.url}t{next(_paths)}"


def path_of(url: str) -> str:
    return "/" + url.rsplit("/", 1)[1]


def send_until_closed(ws: websync.ClientConnection) -> None:
    """Send 1 MiB messages until the connection ends: a sender that blocks once the peer stops reading."""
    try:
        while True:
            ws.send(b"x" * (1 << 20))
    except websync.ConnectionClosed:
        pass
