"""The child protocol: a thread with a start, a graceful stop, an exit reason and exit notification."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Self

from .errors import StartError
from .lifecycle import LIVE
from .reasons import FORKED, KILLED
from .registry import REGISTRY

__all__ = ["FunctionProcess", "Monitor", "Process", "current_process"]

log = logging.getLogger("supervisors")
trace_log = logging.getLogger("supervisors.trace")

Monitor = Callable[["Process", object], None]
"""An exit callback: ``callback(process, reason)``."""

_current = threading.local()


def current_process() -> Process | None:
    """The process whose thread is calling, or None outside any process."""
    return getattr(_current, "process", None)


class Process:
    """A thread that runs ``run()`` and ends with an exit reason.

    Subclasses override ``run()`` (the body), optionally ``init()`` (setup that must
    succeed before ``start()`` returns) and ``request_stop()`` (how to ask the body to
    wind down). The thread is a daemon thread: live processes that no supervisor owns
    are stopped at interpreter exit, newest first, waiting up to ``exit_timeout``.
    """

    exit_timeout: ClassVar[float | None] = 5.0
    """How long interpreter exit waits for this process to stop before killing it."""

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name
        self.supervisor: Process | None = None
        """The supervisor that started this process, set by that supervisor."""
        self.traced = False
        """Log this process's events on the ``supervisors.trace`` logger (see ``trace()``)."""
        self._reset()

    def _reset(self) -> None:
        self.exit_reason: object = None
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._exited = threading.Event()
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

    # Life cycle.

    def start(self) -> Self:
        """Register the name, start the thread and wait for ``init()``.

        Raises NameTakenError if the name is taken, StartError if ``init()`` failed.
        """
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self!r} was already started")
            if self.name is not None:
                REGISTRY.register(self.name, self)
            self._thread = threading.Thread(target=self._bootstrap, name=self._thread_name(), daemon=True)
        LIVE.add(self)
        self._thread.start()
        self._started.wait()
        if self._init_error is not None:
            self._exited.wait()
            if isinstance(self._init_error, StartError):
                raise self._init_error
            raise StartError(self.name or type(self).__name__, self._init_error) from self._init_error
        self._trace("started")
        return self

    def stop(self, reason: object = "shutdown", timeout: float | None = None) -> None:
        """Ask the process to stop (``request_stop``), wait up to ``timeout`` seconds, then ``kill()`` it."""
        self._require_started()
        if not self.is_alive():
            return
        self._trace("stop requested: %r", reason)
        self.request_stop(reason)
        if self._in_own_thread():
            return
        if not self.join(timeout):
            log.warning("%r did not stop within %s s: killed", self, timeout)
            self.kill()

    def kill(self) -> None:
        """Brutal kill: exit at once with reason ``"killed"``.

        Python cannot kill a thread: monitors are notified and the name freed now, the
        body is asked to stop and its (daemon) thread is left to finish on its own.
        """
        self._require_started()
        if self._finish(KILLED):
            self.request_stop(KILLED)

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

    def _bootstrap(self) -> None:
        _current.process = self
        try:
            self.init()
        except BaseException as exc:  # noqa: BLE001 - the reason is handed to start()
            self._init_error = exc
            self._started.set()
            self._finish(exc)
            return
        self._started.set()
        try:
            reason = self.run()
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
        self._exited = threading.Event()
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
