"""The child protocol: a thread with a start, a graceful stop, an exit reason and exit notification."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Final, Self, TypeVar

from .errors import NotRunningError, StartError
from .latch import Latch
from .lifecycle import LIVE
from .reasons import FORKED, KILLED, Exit
from .recorder import DEFAULT_SIZE, Event, Recorder, new_recorder, read
from .registry import REGISTRY

__all__ = ["FunctionProcess", "Monitor", "Process", "acting_as", "current_process"]

log = logging.getLogger("supervisors")
trace_log = logging.getLogger("supervisors.trace")

Monitor = Callable[["Process", object], None]
"""An exit callback: ``callback(process, reason)``."""

_by_thread: dict[int, Process] = {}
"""The process each process thread runs, by ``threading.get_ident()``: set by the thread when it
starts and removed when it ends (a dict entry, where a ``threading.local`` costs a dict per thread)."""

T = TypeVar("T")

_RUNNING: Final = object()
"""``Process._exit_signal`` until the first stop request or kill."""


def current_process() -> Process | None:
    """The process whose thread is calling, or None outside any process."""
    return _by_thread.get(threading.get_ident())


@contextmanager
def acting_as(process: Process) -> Iterator[None]:
    """Within the block, ``current_process()`` in the calling thread is ``process``: for work a
    process lets another thread do on its behalf (processes started meanwhile are adopted by it)."""
    ident = threading.get_ident()
    previous = _by_thread.get(ident)
    _by_thread[ident] = process
    try:
        yield
    finally:
        if previous is None:
            del _by_thread[ident]
        else:
            _by_thread[ident] = previous


_STARTED = threading.Event()
_STARTED.set()
_make_invoke_excepthook: Callable[[], object] | None = getattr(threading, "_make_invoke_excepthook", None)
_INVOKE_EXCEPTHOOK = None if _make_invoke_excepthook is None else _make_invoke_excepthook()


class _Starting:
    """``Thread._started`` of a process's thread from ``start()`` until the thread runs (CPython 3.11-3.13).

    ``Thread.start()`` waits on that Event for the new thread's first turn of the GIL, which
    comes behind every busy thread: a thousand workers make each start wait a round of them
    all. This stand-in is unset (so ``start()`` starts the thread), its ``wait()`` returns at
    once, and the thread replaces it with a set Event before anything else (``_share_thread_state``).
    """

    __slots__ = ()

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def set(self) -> None:
        """Called by the new thread's bootstrap: it swaps in a set Event right after."""

    def _at_fork_reinit(self) -> None:
        """Called on the threads left in a child after fork(): nothing to reset."""


_STARTING: Final = _Starting()


def _start_unawaited(thread: threading.Thread) -> None:
    """Start ``thread`` without waiting for its first turn of the GIL (see ``_Starting``).

    The Event is swapped only where it is what CPython makes: an unset Event.
    """
    event = getattr(thread, "_started", None)
    if type(event) is threading.Event and not event.is_set():
        thread._started = _STARTING  # type: ignore[attr-defined]
    thread.start()


def _share_thread_state(thread: threading.Thread) -> None:
    """In the new thread, first thing: swap two things ``threading.Thread`` makes for each thread and
    keeps for its whole life for shared ones (about 1.6 KiB a thread; CPython 3.11-3.13):

    - ``_started``, the Event ``is_alive()``, ``join()`` and ``repr()`` read "started" from
      (a Condition with a lock, bound methods and a 760-byte deque; ``_STARTING`` until now,
      when ``_start_unawaited`` swapped it): a set Event says the same for every started thread;
    - ``_invoke_excepthook``, a closure with five cells, called only when the thread's target
      raises, which a process's never does (``_bootstrap`` catches every exception): one made
      the same way serves every thread.

    Each is swapped only where it is what CPython makes or ``_STARTING``.
    """
    event = getattr(thread, "_started", None)
    if event is _STARTING or (type(event) is threading.Event and event.is_set()):
        thread._started = _STARTED  # type: ignore[attr-defined]
    hook = getattr(thread, "_invoke_excepthook", None)
    if _INVOKE_EXCEPTHOOK is not None and type(hook) is type(_INVOKE_EXCEPTHOOK):
        thread._invoke_excepthook = _INVOKE_EXCEPTHOOK  # type: ignore[attr-defined]


def _forget_other_threads() -> None:
    """After fork(), in the child: only the forking thread survives (its id may be reused)."""
    ident = threading.get_ident()
    mine = _by_thread.get(ident)
    _by_thread.clear()
    if mine is not None:
        _by_thread[ident] = mine


os.register_at_fork(after_in_child=_forget_other_threads)


class Process:
    """A thread that runs ``run()`` and ends with an exit reason.

    Subclasses override ``run()`` (the body), optionally ``init()`` (setup that must
    succeed before ``start()`` returns) and ``request_stop()`` (how to ask the body to
    wind down). The thread is a daemon thread: live processes that no supervisor owns
    are stopped at interpreter exit, newest first, waiting up to ``exit_timeout``.

    ``supervisors.sys`` reaches every process through the ``system_*`` methods; a process
    with a loop of its own overrides ``system_call`` (see its docstring).

    A process is small (a thousand of them are a thousand connections): its own attributes are
    slots, its exit is a :class:`~supervisors.latch.Latch`, and ``stop_requested`` is created at
    its first use. Subclasses without ``__slots__`` have a ``__dict__`` as usual.
    """

    __slots__ = (
        "name",
        "supervisor",
        "traced",
        "suspended",
        "stop_timeout",
        "_recorder",
        "exit_reason",
        "_stop_requested",
        "_exit_signal",
        "_waiting",
        "_lock",
        "_thread",
        "_started",
        "_exited",
        "_init_error",
        "_monitors",
        "__weakref__",
    )

    exit_timeout: ClassVar[float | None] = 5.0
    """How long interpreter exit waits for this process to stop before killing it."""

    adopts_children: ClassVar[bool] = False
    """Processes started from this process's thread get it as their ``supervisor`` (True for supervisors)."""

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name
        self.supervisor: Process | None = None
        """The supervisor that started this process: set before its ``init()`` runs."""
        self.traced = False
        """Log this process's events on the ``supervisors.trace`` logger (see ``trace()``)."""
        self.suspended = False
        """Set by ``supervisors.sys.suspend``: a process with a loop then handles only system calls."""
        self.stop_timeout: float | None = None
        """The shutdown time given with the last stop request (None: unbounded); ``kill()`` follows it."""
        self._recorder: Recorder | None = new_recorder(DEFAULT_SIZE)
        self._reset()

    def _reset(self) -> None:
        self.exit_reason: object = None
        self._stop_requested: threading.Event | None = None
        self._exit_signal: object = _RUNNING
        self._waiting: threading.Event | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started: threading.Lock | None = None
        """Held from ``start()`` until ``init()`` is over: ``start()`` waits for it, then drops it
        (None when the class has no ``init()`` to wait for)."""
        self._exited = Latch()
        self._init_error: BaseException | None = None
        self._monitors: list[Monitor] = []

    def __repr__(self) -> str:
        state = "alive" if self.is_alive() else f"exited {self.exit_reason!r}"
        label = f" {self.name!r}" if self.name is not None else ""
        return f"<{type(self).__name__}{label} at {id(self):#x} {state}>"

    # The body: override these.

    def init(self) -> None:
        """Override: setup run in the new thread before ``start()`` returns; raising makes ``start()`` fail."""

    def run(self) -> object:
        """Override: the body. Its return value is the exit reason (None means ``"normal"``);
        an exception it raises is the exit reason, logged once with its traceback."""
        raise NotImplementedError

    def request_stop(self, reason: object) -> None:
        """Override: ask the body to wind down. The default sets ``stop_requested``."""
        self.stop_requested.set()

    @property
    def stop_requested(self) -> threading.Event:
        """Set by the default ``request_stop()``: a body that loops watches it. Created at its
        first use (a process that overrides ``request_stop`` may never need one)."""
        event = self._stop_requested
        if event is None:
            with self._lock:
                event = self._stop_requested
                if event is None:
                    event = self._stop_requested = threading.Event()
        return event

    # The flight recorder: the last events, read by ``supervisors.sys.log`` and crash reports.

    def record(self, kind: str, detail: object = None) -> None:
        """Keep ``(time.monotonic(), kind, detail)`` in the ring of the last events (unless logging is off).

        Cheap enough for every frame: one clock read, a list append and a length test (see
        ``Recorder``). Keep ``detail`` small (a size, a type name): the ring holds on to it.
        """
        recorder = self._recorder
        if recorder is not None:
            recorder.append((time.monotonic(), kind, detail))
            if len(recorder) >= recorder.limit:
                del recorder[: -recorder.size]

    def recorded_events(self) -> list[Event]:
        """The recorded events, oldest first (empty while logging is off); also after the exit."""
        recorder = self._recorder
        return [] if recorder is None else read(recorder)

    @property
    def recording(self) -> bool:
        """Whether ``record`` keeps events (on by default; see ``supervisors.sys.log``)."""
        return self._recorder is not None

    def set_recording(self, size: int | None) -> None:
        """Keep the last ``size`` events (a new, empty ring), or none if ``size`` is None."""
        self._recorder = None if size is None else new_recorder(size)

    # The system protocol used by ``supervisors.sys``: override to expose a state of your own.

    def system_call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` where this process's state may be touched and return its result.

        The default runs it in the calling thread (a plain body has no loop to ask). A process
        with a loop overrides this to run ``fn`` in its own thread between two steps, also while
        ``suspended``. Raises NotRunningError if the process is not alive.
        """
        if not self.is_alive():
            raise NotRunningError(f"{self!r} is not running")
        return fn()

    def system_get_state(self) -> object:
        """The state ``sys.get_state`` returns; by default the process itself. Runs inside ``system_call``."""
        return self

    def system_replace_state(self, replace: Callable[[Any], Any]) -> object:
        """Apply ``replace`` to the state and keep its result; runs inside ``system_call``.

        The default state is the process itself, so ``replace`` must change it in place and
        return it (ValueError otherwise).
        """
        state = replace(self)
        if state is not self:
            raise ValueError(f"{self!r} is its own state: change it in place and return it")
        return state

    def system_statistics(self) -> dict[str, object]:
        """Counters ``sys.statistics`` reports beside its start and current times; none by default."""
        return {}

    def system_trace(self, enabled: bool) -> None:
        """Switch trace logging on or off (see ``supervisors.trace``)."""
        self.traced = enabled

    # Life cycle.

    def start(self) -> Self:
        """Register the name, start the thread and wait for ``init()``.

        A class that does not override ``init()`` has nothing to wait for: ``start()`` returns
        once the OS thread exists, before its first turn of the GIL (a turn that comes behind
        every busy thread: a supervisor restarting workers among a thousand others).
        Raises NameTakenError if the name is taken, StartError if the thread cannot start or
        ``init()`` failed (the name is then free again).
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self!r} was already started")
            if self.name is not None:
                REGISTRY.register(self.name, self)
            self._thread = threading.Thread(target=self._bootstrap, name=self._thread_name(), daemon=True)
        parent = current_process()
        if self.supervisor is None and parent is not None and parent.adopts_children:
            self.supervisor = parent
        LIVE.add(self)
        started = None
        if type(self).init is not Process.init:
            started = self._started = threading.Lock()
            started.acquire()
        else:
            self.record("started")  # before anything the thread records
        try:
            _start_unawaited(self._thread)
        except BaseException as exc:  # at the thread limit: roll the registration back
            self._started = None
            self._finish(exc)
            raise StartError(self.name or type(self).__name__, exc) from exc
        if started is not None:
            started.acquire()  # released by the new thread once init() returned or raised
            self._started = None
        if self._init_error is not None:
            self._exited.wait()
            if isinstance(self._init_error, StartError):
                raise self._init_error
            raise StartError(self.name or type(self).__name__, self._init_error) from self._init_error
        self._trace("started")
        return self

    def stop(self, reason: object = "shutdown", timeout: float | None = None) -> None:
        """Ask the process to stop (``begin_stop``), wait up to ``timeout`` seconds, then ``kill()`` it."""
        self._require_started()
        if not self.is_alive():
            return
        self.begin_stop(reason, timeout)
        if self._in_own_thread():
            return
        if not self.join(timeout):
            log.warning("%r did not stop within %s s: killed", self, timeout)
            self.kill()

    def begin_stop(self, reason: object = "shutdown", timeout: float | None = None) -> None:
        """Ask the process to stop without waiting: note ``timeout`` (``stop_timeout``), end a wait
        in a supervisor call with ``Exit(reason)``, and call ``request_stop(reason)``."""
        self.stop_timeout = timeout
        self._trace("stop requested: %r", reason)
        self.record("stop", reason)
        self._signal_exit(reason)
        self.request_stop(reason)

    def kill(self) -> None:
        """Brutal kill: exit at once with reason ``"killed"``.

        Python cannot kill a thread: monitors are notified and the name freed now, the
        body is asked to stop and its (daemon) thread is left to finish on its own.
        """
        self._require_started()
        if self._finish(KILLED):
            self._signal_exit(KILLED)
            try:
                self.request_stop(KILLED)
            except Exception:
                log.exception("%r: request_stop failed while killed", self)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the exit (monitors have been notified when it returns); True when exited."""
        self._require_started()
        if self._in_own_thread():
            raise RuntimeError("a process cannot join itself")
        return self._exited.wait(timeout)

    def is_alive(self) -> bool:
        """True from ``start()`` until the exit."""
        return self._thread is not None and self.exit_reason is None

    def monitor(self, callback: Monitor) -> None:
        """Call ``callback(process, reason)`` once at exit: from the exiting thread (or the one calling
        ``kill()``), or now if the process has already exited."""
        with self._lock:
            if self.exit_reason is None:
                self._monitors.append(callback)
                return
        callback(self, self.exit_reason)

    def demonitor(self, callback: Monitor) -> None:
        """Remove a callback given to ``monitor()``; no error if it is not there."""
        with self._lock:
            if callback in self._monitors:
                self._monitors.remove(callback)

    # Internals.

    def _signal_exit(self, reason: object) -> None:
        """Keep the first stop reason and wake a wait in ``_wait_for_reply``."""
        if self._exit_signal is _RUNNING:
            self._exit_signal = reason
        waiting = self._waiting
        if waiting is not None:
            waiting.set()

    def _wait_for_reply(self, done: threading.Event, replied: Callable[[], bool]) -> None:
        """Wait, in this process's thread, for a reply that sets ``done``; a stop request ends the
        wait with ``Exit(stop reason)`` (a process waiting on its supervisor must still stop)."""
        self._waiting = done
        try:
            if self._exit_signal is _RUNNING:
                done.wait()
        finally:
            self._waiting = None
        if not replied():
            raise Exit(self._exit_signal)

    def _bootstrap(self) -> None:
        assert self._thread is not None
        _share_thread_state(self._thread)
        ident = threading.get_ident()
        _by_thread[ident] = self
        try:
            self._run_in_thread()
        finally:
            del _by_thread[ident]

    def _run_in_thread(self) -> None:
        started = self._started
        if started is not None:  # start() waits for init()
            try:
                self.init()
            except BaseException as exc:  # noqa: BLE001 - the reason is handed to start()
                self._init_error = exc
                started.release()
                self._finish(exc)
                return
            self.record("started")
            started.release()
        try:
            reason = self.run()
        except Exit as exit:
            reason = exit.reason
        except BaseException as exc:  # an exception is an exit reason
            log.error("%r crashed", self, exc_info=exc)
            reason = exc
        self._finish("normal" if reason is None else reason)

    def _finish(self, reason: object) -> bool:
        """Record the exit and notify monitors; False if the process had already exited."""
        with self._lock:
            if self.exit_reason is not None:
                return False
            self.exit_reason = reason
            monitors, self._monitors = self._monitors, []
        if self.name is not None:
            REGISTRY.unregister(self.name, self)
        LIVE.discard(self)
        self._trace("exited: %r", reason)
        self.record("exited", reason)
        for callback in monitors:
            try:
                callback(self, reason)
            except Exception:
                log.exception("monitor %r of %r failed", callback, self)
        self._exited.set()
        return True

    def _lose_to_fork(self) -> None:
        """In a forked child: unless this thread survived the fork, the process is dead."""
        if self._in_own_thread():
            return
        self._lock = threading.Lock()
        self.exit_reason = FORKED
        self._monitors = []
        self._exited = Latch()
        self._exited.set()
        if self.name is not None:
            REGISTRY.unregister(self.name, self)
        LIVE.discard(self)

    def _in_own_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def _require_started(self) -> None:
        if self._thread is None:
            raise RuntimeError(f"{self!r} was not started")

    def _thread_name(self) -> str:
        return f"{type(self).__name__}-{self.name if self.name is not None else hex(id(self))}"

    def _trace(self, message: str, *args: object) -> None:
        if self.traced:
            trace_log.debug("%r: " + message, self, *args)


class FunctionProcess(Process):
    """Run ``target(*args, **kwargs)`` as a process; its return value is the exit reason.

    A function that should honour ``stop()`` can watch
    ``supervisors.current_process().stop_requested``.
    """

    def __init__(self, target: Callable[..., object], *args: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name)
        self.target = target
        self.args = args
        self.kwargs = kwargs

    def run(self) -> object:
        return self.target(*self.args, **self.kwargs)
