"""A fault-injecting TCP relay for tests: put it in front of a real server and break the network.

:class:`FaultRelay` listens on 127.0.0.1 (port 0) and relays every accepted connection to an
upstream ``(host, port)``, one thread per direction. While traffic flows, a test can:

* :meth:`~FaultRelay.cut` every connection (both sockets closed: the client sees a TCP FIN),
  optionally only after ``after`` more bytes went downstream (server -> client), which cuts a
  frame in the middle;
* :meth:`~FaultRelay.reset` every connection (``SO_LINGER`` 0 then close: the client sees a RST);
* :meth:`~FaultRelay.blackhole` the network: nothing is forwarded any more and no socket is
  closed (a half-open connection, as after a cable pull or a NAT timeout); new connections are
  accepted and black-holed too;
* :meth:`~FaultRelay.trickle` every byte, both ways: 1-byte writes with ``delay`` between them;
* :meth:`~FaultRelay.refuse` new connections (accepted and reset at once, as a server that is down)
  and reset the current ones;
* :meth:`~FaultRelay.heal` back to plain relaying (connections cut, reset or black-holed stay dead).

``connections`` counts accepted connections; ``downstream_bytes`` counts bytes relayed to clients
(as each send starts), :meth:`~FaultRelay.undelivered` those of them the clients' kernels have not
acknowledged yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import select
import socket
import struct
import termios
import threading
import time
from dataclasses import dataclass

__all__ = ["FaultRelay"]

THREAD_PREFIX = "fault-relay"
POLL = 0.02
"""How often a pump looks at the relay's mode while its source is quiet."""


def _reset(sock: socket.socket) -> None:
    """Close with a RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


@dataclass
class _Cut:
    """Cut the link once ``remaining`` more bytes went downstream."""

    remaining: int


class _Link:
    """One relayed connection: the client's socket and the upstream socket."""

    def __init__(self, relay: FaultRelay, client: socket.socket, upstream: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.upstream = upstream
        self.lock = threading.Lock()
        self.sending = threading.Lock()
        """Held while bytes go downstream, from their counting until the socket took them all."""
        self.dead = False
        self.blackholed = relay.mode == "blackhole"
        self.cut_after: _Cut | None = None
        self.ended = 0

    def start(self, number: int) -> None:
        for src, dst, name in ((self.client, self.upstream, "up"), (self.upstream, self.client, "down")):
            threading.Thread(
                target=self._pump, args=(src, dst, name == "down"), name=f"{THREAD_PREFIX}-{number}-{name}", daemon=True
            ).start()

    def unacknowledged(self) -> int:
        """Bytes counted downstream that the client's kernel has not acknowledged yet (0 once the
        link is dead), after the send in progress, if any, handed them all to the socket."""
        with self.sending:
            pass
        try:
            queued = fcntl.ioctl(self.client.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
        except (OSError, ValueError):
            return 0
        count: int = struct.unpack("i", queued)[0]
        return count

    def kill(self, how: str) -> None:
        """End the link: ``"fin"`` closes both sockets, ``"rst"`` resets the client's."""
        with self.lock:
            if self.dead:
                return
            self.dead = True
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if how == "rst":
            _reset(self.client)
            _reset(self.upstream)
        else:
            self.client.close()
            self.upstream.close()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while not self.dead:
                if self.blackholed:
                    time.sleep(POLL)  # neither read nor close: the peer's bytes pile up unanswered
                    continue
                if not select.select([src], [], [], POLL)[0]:
                    continue
                if self.blackholed or self.dead:
                    continue
                data = src.recv(65536)
                if not data:
                    self._half_close(dst)
                    return
                self._forward(data, dst, downstream)
        except (OSError, ValueError):
            self.kill("fin")

    def _forward(self, data: bytes, dst: socket.socket, downstream: bool) -> None:
        cut = self.cut_after if downstream else None
        if cut is not None:
            data = data[: cut.remaining]
        with self.sending if downstream else contextlib.nullcontext():
            # Counted before the client can have the bytes: a client that received them sees them counted.
            if downstream:
                self.relay.downstream_bytes += len(data)
            if self.relay.delay is None:
                dst.sendall(data)
            else:
                for index in range(len(data)):
                    if self.dead:
                        return
                    dst.sendall(data[index : index + 1])
                    time.sleep(self.relay.delay)
        if cut is not None:
            cut.remaining -= len(data)
            if cut.remaining <= 0:
                self.kill("fin")

    def _half_close(self, dst: socket.socket) -> None:
        """The source closed: pass the FIN on; the link ends once both directions did."""
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self.lock:
            self.ended += 1
            done = self.ended == 2
        if done:
            self.kill("fin")


class FaultRelay:
    """A TCP relay on 127.0.0.1 in front of ``upstream``; see the module docstring for its faults."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "relay"
        self.delay: float | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self.downstream_bytes = 0
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name=f"{THREAD_PREFIX}-accept", daemon=True)
        self._acceptor.start()

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._closed:
                client.close()
                return
            if self.mode == "refuse":
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)  # the origin is down: the client sees a reset, as it would directly
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                self.connections += 1
                self._links.append(link)
                number = self.connections
            link.start(number)

    def undelivered(self) -> int:
        """Bytes relayed to clients that have not reached their sockets yet (sent, not acknowledged)."""
        return sum(link.unacknowledged() for link in self._live())

    def _live(self) -> list[_Link]:
        with self._lock:
            self._links = [link for link in self._links if not link.dead]
            return list(self._links)

    # -- faults -------------------------------------------------------------------------------

    def cut(self, after: int = 0) -> None:
        """Close every connection (FIN); with ``after``, once that many more bytes went downstream."""
        for link in self._live():
            if after:
                link.cut_after = _Cut(after)
            else:
                link.kill("fin")

    def reset(self) -> None:
        """Reset every connection (the client reads ECONNRESET)."""
        for link in self._live():
            link.kill("rst")

    def blackhole(self) -> None:
        """Stop forwarding on every connection, current and new, and keep all sockets open."""
        self.mode = "blackhole"
        for link in self._live():
            link.blackholed = True

    def trickle(self, delay: float = 0.001) -> None:
        """Forward every byte on its own, ``delay`` seconds apart, both ways."""
        self.delay = delay

    def refuse(self, *, current: bool = True) -> None:
        """Reset every new connection until :meth:`heal`, and the current ones unless ``current`` is False."""
        self.mode = "refuse"
        if current:
            self.reset()

    def heal(self) -> None:
        """Relay plainly again for new connections; black-holed ones are dropped (FIN)."""
        self.mode = "relay"
        self.delay = None
        for link in self._live():
            if link.blackholed:
                link.kill("fin")

    def close(self) -> None:
        self._closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self._acceptor.join(2)
        for link in self._live():
            link.kill("fin")
