"""An open WebSocket on a socket: the protocol core plus thread-safe writing and non-blocking reading."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import ConnectionClosed, ConnectionClosedError
from ..core.frames import Binary, CloseCode, Frame, Outgoing, Ping, Pong, Text, as_frame
from ..core.handshake import Response
from ..core.protocol import Protocol, State
from ..core.uri import WebSocketURI
from .deadline import Deadline
from .statistics import Statistics
from .tls import SerializedTLS, serialized
from .tracing import IN_KINDS, OUT_KINDS, Tracer, frame_detail
from .transport import WOULD_BLOCK, describe_socket_error, readable_waiter, shut_down, wait_writable

__all__ = ["Connection"]

READ_SIZE = 16 * 1024
"""The first read buffer of a connection, allocated at its first read (an idle connection that
never received anything holds none)."""
_NO_BUFFER = memoryview(bytearray())
"""The read buffer until the first read: a read into it returns 0 bytes at once, which
:meth:`Connection.receive` tells from EOF by its length (no test on the hot path)."""
MAX_READ_SIZE = 1024 * 1024
"""The read buffer doubles up to this size while reads fill it (large messages, streams)."""
CLOSE_WAIT = 1.0
"""How long closing the socket waits for a reader or a writer to leave it after the shutdown."""
_MSG_DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)


@dataclass
class Connection:
    """One open WebSocket on one socket, and the owner of that socket's reads and writes.

    Threads:

    - Writing: any thread may :meth:`send` (blocking, in order, under the
      write lock); the reader writes only without blocking (:meth:`try_send`, :meth:`send_control`,
      :meth:`flush` with ``wait=0``), so that a reader never waits for a blocked writer.
    - Reading: one thread at a time, the holder of :attr:`read_lock`, calls :meth:`receive` and
      :meth:`wait_readable`: the worker, or a blocking client's caller inside ``recv``. A write that finds the connection reset reads what the socket still
      holds under the same lock (see :meth:`_end_on_write`): the peer's last frames are delivered
      before the end, whoever wrote.
    - The protocol's state changes under the state lock, except the two hot paths that need none
      (see ``Protocol``). Attributes are set by this class only; :attr:`eof`, :attr:`closing`,
      :attr:`can_send` and the counters may be read from any thread.
    """

    sock: socket.socket
    protocol: Protocol
    uri: WebSocketURI
    response: Response
    subprotocol: str | None
    tracer: Tracer
    stats: Statistics = field(default_factory=Statistics)
    write_timeout: float | None = None
    early_data: bytes = b""
    """Bytes that came with the handshake (the peer's first frames), for :meth:`receive` to parse first."""

    def __post_init__(self) -> None:
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.read_lock = threading.Lock()
        """Held by whichever thread reads the socket: the worker, or a caller inside ``recv``."""
        self._unsent: deque[bytes | memoryview] | None = None
        """Encoded bytes the socket has not taken yet, oldest first (guarded by the write lock);
        None until the socket first has no room (see :meth:`_keep`)."""
        self._stalled_since: float | None = None
        """When a non-blocking write first left bytes the socket had no room for (see
        :attr:`write_deadline`); None once everything is written."""
        self._read_buffer = _NO_BUFFER
        self._tls = isinstance(self.sock, ssl.SSLSocket)
        self._io = serialized(self.sock)
        """Where reads and writes go: the socket, or for TLS its calls one at a time (``SerializedTLS``)."""
        self._dontwait = 0 if self._tls else _MSG_DONTWAIT
        """The flag that makes one call non-blocking; when there is one, the socket blocks from
        the first blocking read on, which is then one ``recv`` system call (no ``poll`` before it)."""
        timeout = self.sock.gettimeout()
        if (timeout is None and not self._dontwait) or timeout:  # would block, or poll before every call
            self.sock.setblocking(False)
            timeout = 0.0
        self._nonblocking = timeout == 0.0
        """Until the first blocking read: a worker never reads blocking, and leaving the socket as
        it came saves an ``ioctl``, which lets go of the GIL (docs/load.md)."""
        self._wait_readable = readable_waiter(self._io)
        self.eof = False
        """Whether the transport ended and every frame read from it was returned by :meth:`receive`:
        the peer closed TCP, or a read or write failed."""
        self._transport_error: OSError | None = None
        """The socket error that ended the connection, if one did (see :meth:`closed_exception`)."""
        self._write_error: OSError | None = None
        """The error of a failed write: no more writes are tried (see :meth:`_end_on_write`)."""
        self._record: Callable[[str, object], None] | None = None
        """Where frames in and out are recorded (the owning process's flight recorder)."""
        self._held: list[Frame] = []
        """Frames read after a write failed (see :meth:`_end_on_write`), for :meth:`receive` to return first."""

    def record_into(self, record: Callable[[str, object], None]) -> None:
        """Record every frame in and out with ``record(kind, detail)`` (``Process.record``: the
        owning worker's flight recorder), from whichever thread reads or writes the frame."""
        self._record = record

    @property
    def extensions(self) -> list[str]:
        """Names of the negotiated extensions."""
        return [extension.name for extension in self.protocol.extensions]

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Outgoing, *, fragment_size: int | None = None) -> None:
        """Encode and write a message (``str`` as text, ``bytes`` as binary) or a frame after
        anything queued before it, blocking until the socket took it all; thread-safe. A data
        message is split into ``fragment_size`` pieces.

        Raises :class:`~websync.core.errors.ConnectionClosed` once the close handshake started, and
        (1006) when the socket has no room for longer than ``write_timeout``: the stream is then
        mid-frame, so the connection is lost and the socket shut down, which wakes the worker.
        """
        write_lock = self._write_lock
        write_lock.acquire()  # not ``with``: its two method calls cost more than the lock itself
        try:
            if not self._write_now(self._encode(message, fragment_size)) and not self._write_unsent(self.write_timeout):
                raise self._write_timed_out()
        except _WriteFailed as failed:
            raise self._end_on_write(failed.error, wait=True) from failed.error
        finally:
            write_lock.release()

    def _write_now(self, data: bytes) -> bool:
        """Under the write lock: write ``data`` at once when nothing is queued before it (the
        common case) and queue what the socket does not take. True when nothing is left to
        write: no bytes, no replies the protocol owes the peer."""
        unsent = self._unsent
        if unsent:
            unsent.append(data)
            return False
        sent = self._send_some(data)
        if sent < len(data):
            self._keep(memoryview(data)[sent:])
            return False
        return not self.protocol.replies

    def _keep(self, chunk: bytes | memoryview) -> None:
        """Under the write lock: queue ``chunk`` behind the unsent bytes. The queue is made at the
        first chunk: an empty deque is 760 bytes, and most of a thousand idle connections never
        need one."""
        unsent = self._unsent
        if unsent is None:
            unsent = self._unsent = deque()
        unsent.append(chunk)

    def _send_some(self, data: bytes | memoryview) -> int:
        """Under the write lock: write what the socket takes of ``data`` now; return how much.

        Raises ``_WriteFailed`` when the socket fails, now or before (see :meth:`_end_on_write`).
        """
        if self._write_error is not None:
            raise _WriteFailed(self._write_error)
        try:
            sent: int = self._io.send(data, self._dontwait)
        except WOULD_BLOCK:
            return 0
        except OSError as exc:
            self._write_error = exc
            raise _WriteFailed(exc) from exc
        self.stats.bytes_out += sent
        return sent

    def _end_on_write(self, error: OSError, *, wait: bool) -> ConnectionClosed:
        """A write failed (the peer reset or closed the connection): return the exception that
        reports the end, after reading what the socket still holds.

        A peer may send its close frame and then reset the connection; Linux keeps the bytes it
        received before the reset readable, so they are read and parsed here, their frames kept
        for :meth:`receive`, and the end reported with the peer's close code. That takes the read
        lock: ``wait`` (a blocking writer, which never holds it) waits for the reader's turn to
        end, else only a free lock is taken; a reader holding it reads the rest itself (its reads
        meet the same end), and :attr:`eof` is set once :meth:`receive` returned the kept frames.
        """
        if self._transport_error is None:
            self._transport_error = error
        if self.eof or self._held or not self.read_lock.acquire(timeout=1.0 if wait else 0):
            return self.closed_exception()
        try:
            self.early_data = self._read_what_remains()
            if self.early_data:
                self._held += self.receive()  # parses early_data, reads nothing
            with self._state_lock:
                self.protocol.receive_eof()
            self.eof = not self._held
        finally:
            self.read_lock.release()
        return self.closed_exception()

    def _read_what_remains(self) -> bytes:
        """Holding the read lock after a failed write: the bytes the socket still holds, never blocking."""
        chunks = [self.early_data]
        self.early_data = b""
        while True:
            try:
                data = self._io.recv(MAX_READ_SIZE, self._dontwait)
            except OSError:  # would block, or the reset itself
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def lose(self, error: OSError) -> None:
        """The transport is over because of ``error``: a read failed, or a deadline passed (a
        ``TimeoutError`` saying which); the peer's close code stands if its close frame came."""
        if self._transport_error is None:
            self._transport_error = error
        self.eof = True
        with self._state_lock:
            self.protocol.receive_eof()

    def closed_exception(self) -> ConnectionClosed:
        """The exception that reports this connection's end to callers: the protocol's, and for an
        abnormal end (1006) one whose reason says why, with the error behind it as its
        ``__cause__`` (the ``OSError``, ``ssl.SSLError`` or ``TimeoutError``; none for a peer
        that closed TCP without a close frame). The one place every 1006 is worded."""
        closed = self.protocol.closed_exception()
        if closed.code != CloseCode.ABNORMAL:
            return closed
        error = self._transport_error
        if error is None:
            return ConnectionClosedError(CloseCode.ABNORMAL, "connection closed without a close frame")
        lost = ConnectionClosedError(CloseCode.ABNORMAL, describe_socket_error(error))
        lost.__cause__ = error
        return lost

    def _write_timed_out(self) -> ConnectionClosed:
        """Under the write lock: the peer took too long to read, with the stream mid-frame: the
        connection is lost. Shuts the socket down, which wakes the worker to report the end."""
        self.lose(TimeoutError(f"write timed out after {self.write_timeout:g} s"))
        shut_down(self.sock)
        return self.closed_exception()

    @property
    def write_deadline(self) -> float | None:
        """When bytes that wait for room in the socket will have waited ``write_timeout``: a
        :meth:`flush` after it loses the connection (``time.monotonic()``; None: no deadline)."""
        since = self._stalled_since
        return None if since is None or self.write_timeout is None else since + self.write_timeout

    def try_send(self, frame: Frame) -> bool:
        """Encode ``frame`` and write what the socket takes now, never blocking: the reader's way.

        Returns False, having encoded nothing, when the frame cannot go now: a close went out
        (see :attr:`can_send`), bytes wait for room in the socket (see :attr:`backlogged`), or
        another thread writes. Bytes the socket has no room for stay queued for :meth:`flush`.
        """
        if not self.can_send or not self._write_lock.acquire(False):
            return False
        try:
            if self._unsent:  # backlogged: the frame waits its turn with the caller
                return False
            if not self._write_now(self._encode(frame, None)):
                self._write_unsent(0)
        except _WriteFailed as failed:
            raise self._end_on_write(failed.error, wait=False) from failed.error
        finally:
            self._write_lock.release()
        return True

    def flush(self, wait: float | None = 0.0) -> bool:
        """Write the protocol's replies and the bytes still queued, waiting at most ``wait``
        seconds for another writer and for room (``None``: as long as it takes; 0: never blocks,
        so a reader cannot deadlock against a blocked writer). True when nothing is left.

        Raises :class:`~websync.core.errors.ConnectionClosedError` (1006) past :attr:`write_deadline`.
        """
        if not self._write_lock.acquire(timeout=-1 if wait is None else wait):
            return False
        try:
            if self._write_unsent(wait):
                return True
            deadline = self.write_deadline
            if deadline is not None and time.monotonic() >= deadline:
                raise self._write_timed_out()
            return False
        except _WriteFailed as failed:
            raise self._end_on_write(failed.error, wait=wait != 0) from failed.error
        finally:
            self._write_lock.release()

    @property
    def backlogged(self) -> bool:
        """Whether encoded bytes wait for room in the socket (a slow or paused peer)."""
        return bool(self._unsent)

    @property
    def unsent_bytes(self) -> int:
        """How many encoded bytes wait for room in the socket (not the protocol's replies)."""
        return sum(len(chunk) for chunk in tuple(self._unsent or ()))

    @property
    def has_output(self) -> bool:
        """Whether bytes or protocol replies wait to be written (see :meth:`flush`)."""
        return bool(self._unsent or self.protocol.replies)

    @property
    def writing(self) -> bool:
        """Whether a thread is writing now (its bytes and the replies go out when it is done)."""
        return self._write_lock.locked()

    def send_control(self, frame: Ping | Pong) -> bool:
        """Queue a ping or pong to go after the frame being written now, and write it if the
        socket is free; never blocks (see :meth:`flush`). True when it went out already."""
        with self._state_lock:
            self.protocol.queue_control(frame)
        return self.flush(0)

    def fail(self) -> None:
        """Queue the close frame that fails the connection after a protocol violation."""
        with self._state_lock:
            self.protocol.send_failure()

    def _encode(self, message: Outgoing, fragment_size: int | None) -> bytes:
        """Under the write lock: ``message`` encoded, counted and traced.

        A whole message, the common case, takes ``Protocol.send_message``: no frame value and no
        state lock (it changes no state a reader shares; the write lock orders the senders).
        """
        kind = type(message)
        if fragment_size is None and kind in _MESSAGE_KINDS:
            data = self.protocol.send_message(message)  # type: ignore[arg-type]
        elif fragment_size is None and (kind is Text or kind is Binary):
            data = self.protocol.send_message(message.data)  # type: ignore[union-attr]
        else:
            with self._state_lock:
                data = self.protocol.send(as_frame(message), fragment_size=fragment_size)
        self.stats.frames_out += 1
        if self.tracer.enabled or self._record is not None:
            self._trace_out(as_frame(message))
        return data

    def _trace_out(self, frame: Frame) -> None:
        """Trace and record a frame going out."""
        if self.tracer.enabled:
            self.tracer.frame("out", frame)
        if self._record is not None:
            self._record(OUT_KINDS[type(frame)], frame_detail(frame))

    def _take_replies(self) -> None:
        """Under the write lock: queue the frames the protocol owes the peer."""
        with self._state_lock:
            replies = self.protocol.replies_to_send()
        for frame, data in replies:
            self.stats.frames_out += 1
            if self.tracer.enabled or self._record is not None:
                self._trace_out(frame)
            self._keep(data)

    def _write_unsent(self, timeout: float | None) -> bool:
        """Under the write lock: write the queued bytes in order, then the replies the protocol
        owes the peer, waiting up to ``timeout`` for room (0: never, None: forever). True when
        everything was written."""
        protocol = self.protocol
        deadline = None
        while True:
            unsent = self._unsent
            if not unsent:
                if not protocol.replies:
                    self._stalled_since = None
                    return True
                self._take_replies()
                continue
            chunk = unsent[0]
            sent = self._send_some(chunk)
            if sent == len(chunk):
                unsent.popleft()
                continue
            if sent:
                unsent[0] = memoryview(chunk)[sent:]
                continue
            if timeout == 0:
                if self._stalled_since is None:
                    self._stalled_since = time.monotonic()
                return False
            if deadline is None:
                deadline = Deadline(timeout)
            remaining = deadline.remaining()
            if remaining == 0:
                return False
            try:
                wait_writable(self.sock, remaining)
            except OSError as exc:
                self._write_error = exc
                raise _WriteFailed(exc) from exc

    @property
    def has_buffered_input(self) -> bool:
        """Whether input waits where a poll of the socket cannot see it: bytes that came with the
        handshake, or TLS records already decrypted."""
        io = self._io
        return bool(self.early_data or self._held) or (isinstance(io, SerializedTLS) and io.pending() > 0)

    def wait_readable(self, timeout: float | None) -> bool:
        """Wait for data; True also when the socket was closed meanwhile (``receive`` then sees EOF),
        and at once while bytes that came with the handshake wait to be parsed.

        Only the thread holding :attr:`read_lock` may call this (it keeps the reader's poll object).
        """
        if self.early_data or self._held:
            return True
        try:
            return self._wait_readable(timeout)
        except (ValueError, OSError):
            return True

    def receive(self, *, block: bool = False) -> list[Frame]:
        """Read what the socket has and return the frames it completes, counted and traced; with
        ``block``, wait for data first (only the thread holding :attr:`read_lock` may block).
        Never blocks otherwise. The bytes that came with the handshake come first.

        Sets :attr:`eof` when the peer closed the TCP connection; an ``OSError`` from the socket
        counts as a lost connection too. Whole messages need no state lock
        (``Protocol.receive_messages``); the state lock is taken for the rest (control frames,
        fragments, a partial frame, a violation).
        """
        if self._held:  # read after a write failed: the transport is over once they are returned
            frames, self._held = self._held, []
            self.eof = True
            return frames
        if self.early_data:
            data: bytes | memoryview = self.early_data
            size = len(data)
            self.early_data = b""
        else:
            if block and self._nonblocking:
                if self._dontwait:  # the first blocking read: from now on the socket blocks
                    self.sock.setblocking(True)
                    self._nonblocking = False
                else:  # TLS, or no MSG_DONTWAIT: the socket stays non-blocking
                    self.wait_readable(None)
            buffer = self._read_buffer
            try:
                # Blocking, with no flags: recv_into parses each argument it is given (~0.1 µs).
                size = self._io.recv_into(buffer) if block else self._io.recv_into(buffer, 0, self._dontwait)
            except WOULD_BLOCK:
                return []
            except OSError as exc:
                self.lose(exc)
                return []
            if not size:
                if not buffer:  # the first read: allocate the buffer and read into it
                    self._read_buffer = memoryview(bytearray(READ_SIZE))
                    return self.receive(block=block)
                self.eof = True
                with self._state_lock:
                    self.protocol.receive_eof()
                return []
            if size == len(buffer) < MAX_READ_SIZE:
                self._read_buffer = memoryview(bytearray(2 * size))
            data = buffer[:size]
        self.stats.bytes_in += size
        frames, used = self.protocol.receive_messages(data)
        if used < size:
            with self._state_lock:
                frames += self.protocol.receive_data(data[used:] if used else data)
        self.stats.frames_in += len(frames)
        if self.tracer.enabled:
            for frame in frames:
                self.tracer.frame("in", frame)
        record = self._record
        if record is not None:
            for frame in frames:
                record(IN_KINDS[type(frame)], frame_detail(frame))
        return frames

    @property
    def closing(self) -> bool:
        """True once a close frame went either way or the protocol failed."""
        return self.protocol.closing

    @property
    def can_send(self) -> bool:
        """True until a close frame was sent (after a failure, until its close frame is written)."""
        return self.protocol.close_sent is None and self.protocol.state is not State.CLOSED

    def close_transport(self) -> None:
        """Close the socket (TLS: without waiting for the peer's close_notify).

        The shutdown first wakes the threads blocked reading or writing the socket; the close
        waits (briefly) for them to leave. A call in progress took the descriptor's number before
        it let go of the GIL: a close under it would free the number for the next socket or file
        opened, which the call would then read or write.
        """
        shut_down(self.sock)
        writing = self._write_lock.acquire(timeout=CLOSE_WAIT)  # a writer may wait for the read lock
        reading = self.read_lock.acquire(timeout=CLOSE_WAIT)
        try:
            self.sock.close()
        finally:
            if reading:
                self.read_lock.release()
            if writing:
                self._write_lock.release()
        with self._state_lock:
            self.protocol.receive_eof()

    def peer_done(self) -> bool:
        """Whether the peer is done with the connection once this side's close went out: a client
        waits for the server to close TCP first (RFC 6455 7.1.1)."""
        return self.eof

    def drain_until_eof(self, timeout: float | None) -> None:
        """After the close handshake, or the close that failed the connection, read and discard
        until :meth:`peer_done`, at most ``timeout`` seconds: a peer still writing when TCP closes
        would get a reset instead of the close frame."""
        if self.peer_done():
            return
        deadline = Deadline(timeout)
        if not self.read_lock.acquire(timeout=-1 if timeout is None else timeout):
            return
        try:
            while not self.peer_done():
                remaining = deadline.remaining()
                if remaining == 0:
                    break
                if self.wait_readable(remaining):
                    self.receive()
        finally:
            self.read_lock.release()


_MESSAGE_KINDS = frozenset({bytes, str, bytearray, memoryview})
"""What :meth:`Connection.send` takes as a whole message without a frame value."""


class _WriteFailed(Exception):
    """Internal: a write failed with ``error``; the public write calls turn it into ConnectionClosed."""

    def __init__(self, error: OSError) -> None:
        self.error = error
