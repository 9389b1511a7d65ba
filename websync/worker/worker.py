"""The worker: one thread per connection that waits on its socket and its mailbox together,
drives a :class:`~websync.worker.handler.Handler`, reconnects, and keeps frames queued while disconnected."""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from supervisors import FORKED, Exit, NotRunningError, Process, is_normal_exit

from ..core.errors import ConnectionClosed, WebSocketError
from ..core.frames import Binary, Close, CloseCode, Frame, Outgoing, Ping, Pong, Text, as_frame
from ..net.connection import Connection
from ..net.deadline import Deadline
from ..net.options import ConnectOptions
from ..net.statistics import Statistics
from ..net.tracing import Tracer
from ..net.transport import Poller, Waitable, Waker, readable, readable_or_writable, shut_down
from .handler import Attempts, Handler, Reconnect, Reply, Stop
from .keepalive import Keepalive
from .opening import open_connection
from .options import WorkerOptions
from .outbox import Outbox
from .system import Mailbox, SystemCall, answer_system_calls, refuse_system_calls

__all__ = ["Worker", "start"]

logger = logging.getLogger("websync")
_worker_ids = itertools.count(1)

DEFAULT_FAILURE_GRACE = 10.0
"""How long a failing close may wait for a blocking client's application when close_timeout is None."""
WRITE_RETRY_INTERVAL = 0.01
"""How often a worker retries its writes while another thread holds the socket for writing."""
STANDBY_INTERVAL = 0.05
"""How often a standing-by worker looks whether the thread reading its socket has left: it stands
by while a caller holds the socket or read it since the worker's last look."""


T = TypeVar("T")


class Lost(Exception):
    """The connection ended; ``error`` is what handle_disconnect is told. Internal to the worker
    package: it never leaves the worker's loop or a blocking client's read."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _end_if_read_to_end(connection: Connection) -> None:
    """A write met the end of the connection: report it once every frame read from the connection
    was dispatched (frames the peer sent before a reset still are: see ``Connection.receive``)."""
    if connection.eof:
        raise Lost(connection.closed_exception())


def _close_code_for(reason: object) -> int:
    """1001 (going away) when the worker is shut down by its supervisor, 1000 otherwise."""
    shutdown = reason == "shutdown" or (isinstance(reason, tuple) and reason[:1] == ("shutdown",))
    return CloseCode.GOING_AWAY if shutdown else CloseCode.NORMAL


class Worker(Process):
    """A thread that owns one WebSocket connection and calls its handler's callbacks.

    Create it with :func:`start`. ``max_queue`` bounds the frames kept while disconnected and
    ``overflow`` says what happens past it: ``"error"`` (``send`` raises :class:`QueueFull`),
    ``"drop_oldest"``, ``"drop_newest"``, or ``"close"`` (the queue is dropped and the connection
    closes with 1008, policy violation: a peer too slow for its messages).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        name: str | None = None,
        debug: Iterable[str] = (),
        connection: Connection | None = None,
        options: WorkerOptions | None = None,
        **keywords: Any,
    ) -> None:
        """``options``, or the keyword arguments of :func:`start` that make them."""
        super().__init__(name=name)
        if options is not None and keywords:
            raise TypeError("give the options either as WorkerOptions or as keyword arguments")
        self.handler = handler
        self.options = WorkerOptions.from_keywords(keywords) if options is None else options
        label = name or f"worker-{next(_worker_ids)}"
        self.tracer = connection.tracer if connection is not None else Tracer(label)
        if "trace" in debug or self.options.connect.trace:
            self.tracer.switch(True)
        self.stats = connection.stats if connection is not None else Statistics()
        self.connection = connection
        self._mailbox: Mailbox = deque()
        self._outbox = Outbox(self.options.max_queue, self.options.overflow, self.stats)
        self._waker = Waker()
        self._stopping: object | None = None
        self._close_deadline: float | None = None
        self._failure_deadline: float | None = None
        self._stop_deadline: float | None = None
        """Until when a stop lets a handshake go on for the frames queued before it."""
        self._keepalive = Keepalive(self.options.keepalive, time.monotonic())
        self.reading_paused = False
        """Whether the worker leaves the socket unread until the application catches up (a
        blocking client's ``max_unread``): TCP backpressure then reaches the peer."""
        self._bytes_in_seen = 0
        """``stats.bytes_in`` after the worker's last read or look: when it moved, another thread
        read the socket meanwhile (see ``STANDBY_INTERVAL``)."""
        if connection is not None and self.options.record_frames:
            connection.record_into(self.record)

    # -- the public side (any thread) ---------------------------------------------------------

    def send(self, message: Outgoing) -> None:
        """Queue a message (``str``: text, bytes-like: binary) or a frame for sending."""
        if self._outbox.put(as_frame(message)):
            self._waker.wake()
            return
        logger.warning("%s: outgoing queue over %s frames, closing with 1008", self.tracer.name, self.options.max_queue)
        self._post("close", (CloseCode.POLICY_VIOLATION, "outgoing queue overflow"))

    @property
    def queued(self) -> int:
        """Frames waiting to be sent."""
        return len(self._outbox)

    def send_info(self, message: Any) -> None:
        """Deliver ``message`` to the handler's ``handle_info`` in the worker's thread."""
        self._post("info", message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake with ``code`` and ``reason``; the worker exits after it."""
        self._post("close", (code, reason))

    def request_stop(self, reason: object) -> None:
        timeout = self.stop_timeout
        self._stop_deadline = None if timeout is None else time.monotonic() + timeout / 2
        self._post("stop", reason)

    def stop(self, reason: object = "normal", timeout: float | None = 5) -> None:
        """Close (1000, or 1001 for a shutdown), call ``terminate``, end the thread.

        The close handshake gets close_timeout, but at most half of ``timeout`` so that the close
        is forced (and ``terminate`` called) before the worker would be killed.
        """
        super().stop(reason, timeout)

    def kill(self) -> None:
        """Exit at once with reason ``"killed"`` and shut the socket down.

        The shutdown ends a thread blocked writing to a peer that stopped reading (its pongs or
        messages fill the socket buffers), which no stop request can reach. In a process forked
        from the one the worker ran in, the connection belongs to the parent: only this process's
        copy of the socket is closed.
        """
        forked = self.exit_reason == FORKED
        super().kill()
        connection = self.connection
        if connection is None:
            return
        if forked:
            connection.sock.close()
        else:
            shut_down(connection.sock)

    def _close_timeout(self) -> float | None:
        """How long the close handshake (and then the wait for the peer's TCP close) may take."""
        timeout = self.options.connect.close_timeout
        if self.stop_timeout is None:
            return timeout
        return self.stop_timeout / 2 if timeout is None else min(timeout, self.stop_timeout / 2)

    def _post(self, kind: str, payload: Any) -> None:
        self._mailbox.append((kind, payload))
        self._waker.wake()

    # -- the system protocol of supervisors.sys (any thread) -------------------------------------

    def system_call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the worker's thread between two steps (also while suspended or
        connecting) and return its result or raise its exception; NotRunningError once the
        worker has exited."""
        if self._in_own_thread():
            return fn()
        if not self.is_alive():
            raise NotRunningError(f"{self!r} is not running")
        call = SystemCall(fn)
        self._post("system", call)
        return call.answer(self.is_alive, self)  # type: ignore[no-any-return]

    def system_get_state(self) -> object:
        """The handler: the state its callbacks keep (a server connection's ServerHandler)."""
        return self.handler

    def system_replace_state(self, replace: Callable[[Any], Any]) -> object:
        """Replace the handler with ``replace(handler)``; its callbacks are called from now on."""
        self.handler = replace(self.handler)
        return self.handler

    def system_statistics(self) -> dict[str, object]:
        """Frames and bytes in and out, reconnects, dropped and queued frames, connected since."""
        counters: dict[str, object] = {**self.stats.as_dict(), "queued": len(self._outbox)}
        return counters

    def system_trace(self, enabled: bool) -> None:
        """Switch the ``supervisors.trace`` log and the frame trace (``websync.trace``) together."""
        super().system_trace(enabled)
        self.tracer.switch(enabled)

    # -- the worker's thread --------------------------------------------------------------------

    def run(self) -> object:
        reason: object = "normal"
        try:
            self._waker.open()
            reason = self._lifecycle()
            return reason
        except BaseException as exc:
            reason = exc.reason if isinstance(exc, Exit) else exc
            raise
        finally:
            self._discard_connection()
            self._report_unsent()
            self._call_terminate(reason)
            refuse_system_calls(self._mailbox, self)
            self._waker.close()

    def _report_unsent(self) -> None:
        """Count and log the frames that never went out (no connection came up before the exit)."""
        unsent = self._outbox.discard()
        if unsent:
            logger.warning("%s exited with %d queued frame(s) unsent", self.tracer.name, unsent)

    def _lifecycle(self) -> object:
        """Connect, serve, and ask the handler what to do after each end, until a stop."""
        attempts = Attempts(self.handler.stable_after)
        while True:
            reason: Exception
            if self.connection is None:
                try:
                    self.connection = self._connect()
                    if self.options.record_frames:
                        self.connection.record_into(self.record)
                    self.record("connected", str(self.connection.uri))
                except (WebSocketError, OSError) as exc:
                    attempt = attempts.failed()
                    self.tracer.event("connection attempt %d failed: %s", attempt, exc)
                    reason = exc
            if self.connection is not None:
                attempts.connected(time.monotonic())
                reason = self._serve(self.connection)
                attempt = attempts.ended(time.monotonic())
            self._drain_mailbox(None)
            if self._stopping is not None:
                return self._stopping
            decision = self._callback(self.handler.handle_disconnect, reason, attempt)
            if isinstance(decision, Stop):
                return decision.reason
            if not isinstance(decision, Reconnect):
                raise TypeError(f"handle_disconnect must return Reconnect or Stop, not {decision!r}")
            self.stats.reconnects += 1
            self.tracer.event("reconnecting in %.3fs (attempt %d)", decision.delay, attempt)
            if not self._idle(decision.delay):
                return self._stopping

    def _connect(self) -> Connection:
        url, options = self._connect_details()
        return open_connection(
            url, options, self.tracer, stats=self.stats, cancelled=self._stop_posted, waker=self._waker
        )

    def _stop_posted(self) -> bool:
        """Whether a handshake in progress gives up (polled while it waits): a stop or close waits
        in the mailbox, and no frame queued before it needs the connection (those get half the
        stop's timeout, or the handshake's own, to go out before the close)."""
        if any(kind == "system" for kind, _ in list(self._mailbox)):
            answer_system_calls(self._mailbox)
        if not any(kind in ("stop", "close") for kind, _ in list(self._mailbox)):
            return False
        deadline = self._stop_deadline
        return not self._outbox.frames or (deadline is not None and time.monotonic() >= deadline)

    def _connect_details(self) -> tuple[str, ConnectOptions]:
        details = self._callback(self.handler.connect)
        if isinstance(details, str):
            return details, self.options.connect
        url, headers, *rest = details
        return url, self.options.connect.updated(headers, rest[0] if rest else {})

    def _idle(self, delay: float) -> bool:
        """Wait ``delay`` seconds while handling the mailbox; False if a stop arrived."""
        deadline = Deadline(delay)
        while self._stopping is None:
            remaining = deadline.remaining()
            if remaining == 0:
                return True
            readable([self._waker.reader], remaining)
            self._drain_mailbox(None)
        return False

    # -- serving one connection -----------------------------------------------------------------

    def _serve(self, connection: Connection) -> Exception:
        """Run one connection until it ends; return the reason it ended."""
        try:
            self._apply(connection, self._callback(self.handler.handle_connect, connection.response), first=True)
            self._flush_outbox(connection)
            if connection.early_data:
                with connection.read_lock:  # unless a caller's recv() took them first
                    self._dispatch(connection, connection.receive())
            return self._loop(connection)
        except Lost as lost:
            return lost.error
        except BaseException:
            self._report_crash(connection)
            raise
        finally:
            self._discard_connection()

    def _report_crash(self, connection: Connection) -> None:
        """Tell the peer that this side failed (close code 1011) before the socket closes.

        Best effort and never blocking: the close frame goes if the socket takes it now.
        """
        if not connection.can_send:
            return
        self.tracer.event("crashed: closing with %d", CloseCode.INTERNAL_ERROR)
        try:
            connection.try_send(Close(CloseCode.INTERNAL_ERROR, "internal error"))
        except ConnectionClosed:
            pass  # the connection is gone already

    def _loop(self, connection: Connection) -> Exception:
        self._keepalive.restart(time.monotonic())
        self._bytes_in_seen = connection.stats.bytes_in
        poller = Poller([connection.sock, self._waker.reader])
        woken = False  # no wait yet: a wake-up sent before this shows as ``pending``
        while True:
            self._drain_mailbox(connection, woken=woken)
            if connection.eof or connection.protocol.closing:
                ended = self._ended(connection)
                if ended is not None:
                    return ended
            now = time.monotonic()
            if self._close_deadline is not None and now >= self._close_deadline:
                return self._lost(connection, f"close handshake timed out after {self._close_timeout():g} s")
            keepalive_due = self._keepalive.deadline
            if keepalive_due is not None and now >= keepalive_due:
                lost = self._keep_alive(connection, now)
                if lost is not None:
                    return lost
                keepalive_due = self._keepalive.deadline
            deadline = keepalive_due
            write_due = connection.write_deadline  # no generator and min(): this runs every round trip
            if write_due is not None and (deadline is None or write_due < deadline):
                deadline = write_due
            if self._close_deadline is not None or self._failure_deadline is not None:  # closing
                deadline = min(d for d in (deadline, self._close_deadline, self._failure_deadline) if d is not None)
            timeout = None if deadline is None else deadline - now  # a negative one polls
            woken = self._wait_and_read(connection, poller, timeout)

    def _keep_alive(self, connection: Connection, now: float) -> Exception | None:
        """At a keepalive deadline: the end of a connection whose peer went silent, else None
        after sending the ping that is due. While reading is paused (``reading_paused``) the
        peer's pong waits unread in the socket: silence then proves nothing."""
        keepalive, stats = self._keepalive, connection.stats
        if keepalive.expired(now, stats.bytes_in, stats.bytes_out) and not self.reading_paused:
            return self._lost(connection, f"keepalive: no pong within {keepalive.options.ping_timeout:g} s")
        payload = None if connection.closing else keepalive.ping_due(now)
        if payload is not None:
            self._send_control(connection, Ping(payload))
            keepalive.ping_queued(now, stats.bytes_in, stats.bytes_out, connection.unsent_bytes)
        return None

    def _lost(self, connection: Connection, why: str) -> ConnectionClosed:
        """A deadline passed (``why`` says which): the connection is lost, its end reported like a
        socket error's (``Connection.closed_exception``: 1006, the ``TimeoutError`` as its cause)."""
        self.tracer.event("connection lost: %s", why)
        connection.lose(TimeoutError(why))
        return connection.closed_exception()

    def _wait_and_read(self, connection: Connection, poller: Poller, timeout: float | None) -> bool:
        """Write what waits, then sleep until the socket or the mailbox needs the worker, at most
        ``timeout`` seconds (the next deadline), and read; True when the wait saw a wake-up byte
        (see :meth:`_drain_mailbox`).

        While another thread reads the socket (a caller blocked in ``recv``, or one that read it
        since the worker last looked and is likely to call again), the worker stands by on its
        mailbox only and looks again every STANDBY_INTERVAL seconds: racing that caller for the
        socket would turn its next message into a thread hand-off.
        """
        writer = None
        if connection.has_output or connection.protocol.error or self._outbox.frames:
            if not self._flush(connection) and connection.writing:  # another thread writes: look again soon
                timeout = WRITE_RETRY_INTERVAL if timeout is None else min(timeout, WRITE_RETRY_INTERVAL)
            if self._outbox.frames and not connection.backlogged:  # the backlog drained: the queue goes on
                self._flush_outbox(connection)
            if connection.backlogged and not connection.writing:
                writer = connection.sock
        if self.reading_paused and connection.protocol.close_sent is None:
            # The socket waits until the application reads (see ``reading_paused``); once this
            # side's close went out, the close handshake reads on: the peer's close frame is next.
            return self._waker.reader in self._wait([self._waker.reader], writer, timeout)
        bytes_in = connection.stats.bytes_in
        if connection.read_lock.locked() or bytes_in != self._bytes_in_seen:
            self._bytes_in_seen = bytes_in
            timeout = STANDBY_INTERVAL if timeout is None else min(timeout, STANDBY_INTERVAL)
            return self._waker.reader in self._wait([self._waker.reader], writer, timeout)
        if connection.has_buffered_input:  # no poll would see it
            self._read_now(connection)
            return False
        ready = poller.wait(timeout, writer)  # the connection's socket and the wake-up socket
        if connection.sock in ready:  # readable, or room for the backlog: a read never blocks
            self._read_now(connection)
        return self._waker.reader in ready

    def _read_now(self, connection: Connection) -> None:
        """Read and dispatch what the socket holds, without blocking, unless another thread reads
        it; the replies go out at the loop's next turn."""
        if connection.read_lock.acquire(False):
            try:
                frames = connection.receive()
                self._bytes_in_seen = connection.stats.bytes_in
                if frames:
                    self._dispatch(connection, frames)
            finally:
                connection.read_lock.release()

    @staticmethod
    def _wait(readers: list[Waitable], writer: socket.socket | None, timeout: float | None) -> list[Waitable]:
        """Wait for ``readers``, and for room in ``writer`` when bytes wait for it."""
        return readable(readers, timeout) if writer is None else readable_or_writable(readers, writer, timeout)

    def _flush(self, connection: Connection, wait: float | None = 0.0) -> bool:
        """Write the replies and queued bytes, the failing close once it is due (``_failure_held``);
        ``wait`` as for ``Connection.flush``. True when nothing is left to write."""
        if connection.protocol.error is not None and not self._failure_held(connection):
            connection.fail()
        try:
            return connection.flush(wait)
        except ConnectionClosed:
            _end_if_read_to_end(connection)
            return False

    def _failure_held(self, connection: Connection) -> bool:
        """Whether the close that fails a broken connection waits for the application (see
        :meth:`_hold_failure`), for at most close_timeout."""
        if connection.protocol.error is None or not connection.can_send:
            return False
        if self._failure_deadline is None:
            if not self._hold_failure():
                return False
            timeout = self._close_timeout()
            self._failure_deadline = time.monotonic() + (DEFAULT_FAILURE_GRACE if timeout is None else timeout)
        return time.monotonic() < self._failure_deadline

    def _hold_failure(self) -> bool:
        """Whether the close that fails a broken connection waits for the application; called
        after the frames before the violation were dispatched. A handler-driven worker has
        answered them by then: its close goes at once."""
        return False

    def _ended(self, connection: Connection) -> Exception | None:
        """The reason the connection is over (after the close handshake, a failure or EOF), or None."""
        protocol = connection.protocol
        if protocol.error is None and (protocol.close_received is None or protocol.close_sent is None):
            # A close a callback sent, or the peer's close whose answer waits behind a blocked sender.
            closing = protocol.close_sent is not None or protocol.close_received is not None
            if closing and self._close_deadline is None:
                timeout = self._close_timeout()
                self._close_deadline = None if timeout is None else time.monotonic() + timeout
            return connection.closed_exception() if connection.eof else None
        if self._failure_held(connection) and not connection.eof:
            return None
        # The close frame owed to the peer goes out even if a sender holds the socket now.
        try:
            self._flush(connection, wait=self._close_timeout())
        except Lost:
            pass  # the peer is gone: nothing more can be written
        connection.drain_until_eof(self._close_timeout())
        return protocol.error or connection.closed_exception()

    def wake(self) -> None:
        """Make the worker look at its connection now (after another thread read from it)."""
        self._waker.wake()

    def _dispatch(self, connection: Connection, frames: list[Frame]) -> None:
        handler = self.handler
        for frame in frames:
            if isinstance(frame, (Text, Binary)):
                reply = self._callback(handler.handle_frame, frame)
            elif isinstance(frame, Ping):
                reply = self._callback(handler.handle_ping, frame)
                if isinstance(reply, Pong):
                    self.tracer.event("ping answered (%d bytes)", len(frame.data))
            elif isinstance(frame, Pong):
                self._keepalive.pong_received(frame.data)
                reply = self._callback(handler.handle_pong, frame)
            else:
                self.tracer.event("close received: %s %r", frame.code, frame.reason)
                reply = self._callback(handler.handle_close, frame)
                if reply is not None:
                    self._apply(connection, reply)
                # After the answers to the frames before it; a close the handler sent wins.
                reply = None if self._outbox.has_close() else connection.protocol.close_reply()
            if reply is not None:
                self._apply(connection, reply)

    def _drain_mailbox(self, connection: Connection | None, *, woken: bool = True) -> None:
        """Empty the wake-up socket, then act on the outbox and the mailbox.

        ``woken=False`` says the last wait saw no wake-up byte: the socket is then read only if a
        wake-up was sent since (a byte sent after that read shows in the next wait).
        """
        if woken or self._waker.pending:
            self._waker.drain()
        if self.suspended:
            self._stay_suspended()
        if connection is not None and self._outbox.frames:
            self._flush_outbox(connection)  # frames sent before an info or stop go first
        while self._mailbox:
            kind, payload = self._mailbox.popleft()
            if kind == "system":
                payload.run()
                if self.suspended:  # suspended by this call: nothing more until resumed
                    self._stay_suspended()
            elif kind == "info":
                self._apply(connection, self._callback(self.handler.handle_info, payload))
            elif kind == "close":
                self._begin_stop("normal", connection, *payload)
            elif kind == "stop":
                self._begin_stop(payload, connection, _close_code_for(payload), "")

    def _stay_suspended(self) -> None:
        """While ``suspended`` (``supervisors.sys.suspend``): answer system calls and nothing else
        (no socket reads or writes, no info or close) until resumed. A stop ends the suspension:
        the messages queued before it are then handled in order, and the stop."""
        while self.suspended:
            if any(kind == "stop" for kind, _ in self._mailbox):
                self.suspended = False
                return
            answer_system_calls(self._mailbox)
            if self.suspended:
                readable([self._waker.reader], None)
                self._waker.drain()

    def _flush_outbox(self, connection: Connection) -> None:
        """Send queued frames in order without ever blocking: stop while another thread writes,
        while the socket has no room, or once a close went out."""
        self._outbox.send_queued(lambda frame: self._send(connection, frame))

    def _begin_stop(self, reason: object, connection: Connection | None, code: int, text: str) -> None:
        """Stop with ``reason``: the close frame goes after the frames queued before it. The
        first stop decides; a connection is never served once a stop came (see ``_lifecycle``)."""
        if self._stopping is not None:
            return  # stopping already: its close frame is on its way
        self._stopping = reason
        if connection is None or connection.protocol.close_sent is not None:
            return
        self.tracer.event("closing: %d %r", code, text)
        timeout = self._close_timeout()
        self._close_deadline = None if timeout is None else time.monotonic() + timeout
        self._apply(connection, Close(code, text))

    def _apply(self, connection: Connection | None, reply: Reply, *, first: bool = False) -> None:
        """Carry out what a callback returned; ``first`` puts its frames before those already queued."""
        if (
            isinstance(reply, (Text, Binary))
            and connection is not None
            and not self._outbox.frames
            and self._send(connection, reply)
        ):
            return  # one message with nothing queued before it (the common reply): no outbox round trip
        if reply is None:
            return
        if isinstance(reply, Stop):
            self._begin_stop(reply.reason, connection, _close_code_for(reply.reason), "")
            return
        frames: list[Frame] = []
        for frame in reply if isinstance(reply, list) else [reply]:
            if not isinstance(frame, (Ping, Pong)):
                frames.append(frame)
            elif connection is not None:
                self._send_control(connection, frame)
        self._outbox.put_all(frames, first=first)
        if connection is not None:
            self._flush_outbox(connection)

    def _send_control(self, connection: Connection, frame: Ping | Pong) -> None:
        """A ping or pong jumps the outbox: it goes right after the frame being written now."""
        try:
            connection.send_control(frame)
        except ConnectionClosed:
            _end_if_read_to_end(connection)  # else closing (no more pings or pongs), or frames wait to be read

    def _send(self, connection: Connection, frame: Frame) -> bool:
        """Hand ``frame`` to the connection without blocking; False when it cannot go now (see
        ``Connection.try_send``)."""
        try:
            return connection.try_send(frame)
        except ConnectionClosed:
            _end_if_read_to_end(connection)
            return False

    def _callback(self, callback: Any, *args: Any) -> Any:
        """Call a handler callback; its exception goes to ``handle_error`` (which re-raises by default)."""
        try:
            return callback(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the handler, which decides (Exit passes)
            self.record("callback raised", type(exc).__name__)
            return self.handler.handle_error(exc)

    def _discard_connection(self) -> None:
        connection, self.connection = self.connection, None
        self._close_deadline = self._failure_deadline = None
        if connection is not None:
            connection.close_transport()
            self._outbox.drop_closes()
            self.stats.connected_since = None
            self.record("disconnected", int(connection.protocol.close_code))
            self.tracer.event("disconnected: %d %r", connection.protocol.close_code, connection.protocol.close_reason)

    def _call_terminate(self, reason: object) -> None:
        self.tracer.event("terminating: %r", reason)
        try:
            self.handler.terminate(reason)
        except Exception:  # the worker is exiting; the error must still be seen
            logger.exception("terminate() of %s raised", self.tracer.name)
        if not is_normal_exit(reason):
            self.tracer.event("exit reason is abnormal: %r", reason)


def start(handler: Handler, *, name: str | None = None, debug: Iterable[str] = (), **options: Any) -> Worker:
    """Start a worker thread for ``handler`` and return it at once; it connects in the background.

    A worker that cannot make its wake-up descriptor (no file descriptor left) exits at once with
    that ``OSError`` (errno EMFILE) as its reason, logged as a crash.

    ``options``: those of :class:`~websync.net.options.ConnectOptions` and
    :class:`~websync.net.options.KeepaliveOptions`, ``max_queue``, ``overflow`` and
    ``record_frames`` (see :class:`~websync.worker.options.WorkerOptions`).
    """
    return Worker(handler, name=name, debug=debug, options=WorkerOptions.from_keywords(options)).start()
