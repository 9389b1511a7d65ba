"""What every supervisor shares: the mailbox loop, starting, stopping and restarting children, escalation."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from . import reports
from .errors import NotRunningError, RestartIntensityError, StartError
from .mailbox import Mailbox
from .process import Process, acting_as, current_process
from .reasons import FORKED, is_normal_exit
from .spec import AutoShutdown, ChildSpec, ChildType
from .strategies import RestartIntensity, Strategy, restart_scope, should_restart

__all__ = ["SupervisorBase", "SupervisorState"]

log = logging.getLogger("supervisors")

T = TypeVar("T")


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    process: Process | None = None


@dataclass
class _Exit:
    process: Process
    reason: object


@dataclass
class _Stop:
    reason: object


@dataclass
class _Retry:
    """Try a failed restart again, queued behind other messages as OTP's ``try_again_restart``."""

    key: Hashable  # the child whose exit started the restart: it decides the scope
    failed: Hashable  # the child whose start failed
    reason: object


@dataclass
class _Call:
    fn: Callable[[], object]
    system: bool = False  # handled while suspended
    done: threading.Event = field(default_factory=threading.Event)
    replied: bool = False
    result: object = None
    error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self.error = exc
        self.reply()

    def refuse(self, error: BaseException) -> None:
        self.error = error
        self.reply()

    def reply(self) -> None:
        self.replied = True
        self.done.set()

    def outcome(self) -> object:
        if self.error is not None:
            raise self.error
        return self.result


@dataclass(frozen=True)
class SupervisorState:
    """What ``supervisors.sys.get_state`` shows of a supervisor; ``replace_state`` may change the intensity."""

    strategy: Strategy
    max_restarts: int
    max_seconds: float
    auto_shutdown: AutoShutdown
    children: tuple[tuple[Hashable, Process | None, ChildSpec], ...]


class SupervisorBase(Process):
    """A process that starts children from specs, restarts them by strategy and escalates.

    All tree state is changed under ``_serving``: by the supervisor's thread, which holds it
    while it handles a message, or by a call from a thread that is no process, which runs in
    its caller's thread when nothing else is queued (see ``_call``); other calls go through
    the mailbox. Subclasses choose the strategy and the calls.
    """

    exit_timeout: ClassVar[float | None] = None
    adopts_children: ClassVar[bool] = True
    _keeps_stopped_children: ClassVar[bool] = True
    _stops_children_together: ClassVar[bool] = False

    def __init__(
        self,
        children: Iterable[tuple[Hashable, ChildSpec]],
        max_restarts: int,
        max_seconds: float,
        name: str | None,
        *,
        strategy: Strategy = "one_for_one",
        auto_shutdown: AutoShutdown = "never",
        extra_arguments: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(name=name)
        self.strategy: Strategy = strategy
        self.auto_shutdown: AutoShutdown = auto_shutdown
        self.extra_arguments = tuple(extra_arguments)
        self._intensity = RestartIntensity(max_restarts, max_seconds)
        self._children: dict[Hashable, _Child] = {key: _Child(spec) for key, spec in children}
        self._keys: dict[Process, Hashable] = {}  # running children, by process
        self._stopping: list[Process] = []  # children being shut down now
        self._to_start = list(self._children)
        self._mailbox = Mailbox()
        self._serving = threading.Lock()
        self._deferred: deque[object] = deque()  # messages that wait for a resume
        self._counts = {"messages_in": 0, "starts": 0, "restarts": 0}

    @property
    def max_restarts(self) -> int:
        """Restarts allowed within ``max_seconds`` before the supervisor escalates."""
        return self._intensity.max_restarts

    @property
    def max_seconds(self) -> float:
        """The length of the restart intensity window, in seconds."""
        return self._intensity.max_seconds

    # Process hooks.

    def init(self) -> None:
        """Start the children in order; on a failure stop those started, newest first, and raise StartError."""
        with self._serving:
            try:
                for key in self._to_start:
                    self._start(key)
            except BaseException:
                self._shut_down_tree()
                raise

    def run(self) -> object:
        try:
            while self.exit_reason is None:  # None until killed
                message = self._receive()
                with self._serving:
                    stop = self._handle(message)
                self._mailbox.handled()
                if stop is not None:
                    return stop.reason
            return self.exit_reason
        finally:
            with self._serving:
                self._shut_down_tree()

    def request_stop(self, reason: object) -> None:
        self._mailbox.put(_Stop(reason))

    def kill(self) -> None:
        """Kill the supervisor and, at once, its children (their subtrees too), as OTP's links do."""
        super().kill()
        for process in [*self._keys, *self._stopping]:
            process.kill()

    def restart_after_fork(self) -> Self:
        """In a process forked while this supervisor ran: start it again, with every child that was running.

        Raises RuntimeError unless the supervisor exited because of the fork.
        """
        if self.exit_reason != FORKED:
            raise RuntimeError(f"{self!r} was not stopped by a fork")
        self._to_start = [key for key, child in self._children.items() if child.process is not None]
        for child in self._children.values():
            child.process = None
        self._keys = {}
        self._deferred.clear()
        self.suspended = False
        self._intensity = RestartIntensity(self.max_restarts, self.max_seconds)
        self._mailbox = Mailbox()
        self._reset()
        return self.start()

    def _lose_to_fork(self) -> None:
        super()._lose_to_fork()
        self._serving = threading.Lock()
        self._mailbox = Mailbox()
        self._mailbox.close()

    # The system protocol (supervisors.sys).

    def system_call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the supervisor's thread, also while it is suspended."""
        return self._call(fn, system=True)

    def system_get_state(self) -> SupervisorState:
        children = tuple((child.spec.id, child.process, child.spec) for child in self._children.values())
        return SupervisorState(self.strategy, self.max_restarts, self.max_seconds, self.auto_shutdown, children)

    def system_replace_state(self, replace: Callable[[Any], Any]) -> SupervisorState:
        """Apply ``replace`` to the SupervisorState; only the intensity may change (TypeError, ValueError)."""
        old = self.system_get_state()
        new = replace(old)
        if not isinstance(new, SupervisorState):
            raise TypeError(f"a supervisor's state is a SupervisorState, not {new!r}")
        if (new.strategy, new.auto_shutdown, new.children) != (old.strategy, old.auto_shutdown, old.children):
            raise ValueError("only max_restarts and max_seconds can be replaced; children change by the OTP calls")
        self._intensity = RestartIntensity(new.max_restarts, new.max_seconds)
        return new

    def system_statistics(self) -> dict[str, object]:
        return dict(self._counts)

    # Queries shared by every supervisor.

    def which_children(self) -> list[tuple[Hashable, Process | None, ChildType]]:
        """``(id, child or None, type)`` for every child, in start order."""
        return self._call(
            lambda: [(child.spec.id, child.process, child.spec.type) for child in self._children.values()]
        )

    def count_children(self) -> dict[str, int]:
        """Counts of child ``specs``, ``active`` (running) children, ``supervisors`` and ``workers``."""

        def count() -> dict[str, int]:
            children = list(self._children.values())
            supervisors = sum(child.spec.type == "supervisor" for child in children)
            return {
                "specs": len(children),
                "active": len(self._keys),
                "supervisors": supervisors,
                "workers": len(children) - supervisors,
            }

        return self._call(count)

    # For subclasses: run in the supervisor's thread.

    def _call(self, fn: Callable[[], T], *, system: bool = False) -> T:
        """Run ``fn`` as the supervisor and return its result (or raise its error).

        From a thread that is no process, while the supervisor runs with nothing queued and is
        not suspended, ``fn`` runs at once in the calling thread, holding ``_serving``: the order
        is the mailbox's, and the caller waits on no other thread (each such wait is a turn of
        the GIL behind every busy thread). Otherwise ``fn`` goes through the mailbox to the
        supervisor's thread; a process that calls and is asked to stop meanwhile gets
        ``Exit(reason)`` instead.
        """
        caller = current_process()
        if caller is self:
            return fn()
        if caller is None and not system and self._thread is not None and self._serving.acquire(blocking=False):
            try:
                if self._mailbox.idle and not self.suspended:
                    with acting_as(self):
                        return fn()
            finally:
                self._serving.release()
        call = _Call(fn, system)
        if self._thread is None or not self._mailbox.put(call):
            raise NotRunningError(f"{self!r} is not running")
        if caller is None:
            call.done.wait()
        else:
            caller._wait_for_reply(call.done, lambda: call.replied)
        return call.outcome()  # type: ignore[return-value]

    def _start(self, key: Hashable) -> Process:
        """Start child ``key`` from its spec and monitor it; StartError if that fails."""
        child = self._children[key]
        if self.exit_reason is not None:  # killed: start nothing more
            raise StartError(child.spec.id, self.exit_reason)
        try:
            process = child.spec.start(*self.extra_arguments)
            if not isinstance(process, Process) or (not process.is_alive() and process.exit_reason is None):
                raise TypeError(f"start() returned {process!r}, not a started Process")
        except Exception as exc:
            reports.start_error(self._label(), child.spec.id, exc)
            raise StartError(child.spec.id, exc) from exc
        process.supervisor = self
        child.process = process
        self._keys[process] = key
        process.monitor(self._notify_exit)
        if self.exit_reason is not None:  # killed while the child started: kill() did not see it
            process.kill()
        self._counts["starts"] += 1
        self.record("child started", child.spec.id)
        self._trace("started child %r: %r", child.spec.id, process)
        reports.progress(self._label(), child.spec.id, process)
        return process

    def _add(self, key: Hashable, spec: ChildSpec) -> Process:
        """Add a child under ``key`` and start it; forget it again if the start fails."""
        self._children[key] = _Child(spec)
        try:
            return self._start(key)
        except BaseException:
            del self._children[key]
            raise

    def _terminate(self, key: Hashable) -> bool:
        """Stop child ``key`` as its spec says; forget temporary children. True if it was running."""
        released = self._release(key)
        if released is not None:
            self._shut_down([released])
        return released is not None

    # Internals.

    def _receive(self) -> object:
        """The next message to handle: deferred ones first; while suspended, only system messages."""
        while True:
            if self._deferred and not self.suspended:
                return self._deferred.popleft()
            message = self._mailbox.get()
            if not self.suspended or isinstance(message, _Stop) or (isinstance(message, _Call) and message.system):
                return message
            self._deferred.append(message)

    def _handle(self, message: object) -> _Stop | None:
        """Act on one message; a _Stop when the supervisor should exit."""
        self._counts["messages_in"] += 1
        if isinstance(message, _Stop):
            return message
        if isinstance(message, _Call):
            message.run()
            return None
        if isinstance(message, _Retry):
            child = self._children.get(message.failed)
            if child is None or child.process is not None:
                return None  # deleted or started again meanwhile
            return self._restart(message.key, message.failed, message.reason)
        assert isinstance(message, _Exit)
        key = self._keys.get(message.process)
        return None if key is None else self._child_exited(key, message.reason)

    def _notify_exit(self, process: Process, reason: object) -> None:
        self._mailbox.put(_Exit(process, reason))

    def _unbind(self, key: Hashable) -> Process | None:
        """Mark child ``key`` not running; its process if it ran."""
        child = self._children[key]
        process, child.process = child.process, None
        if process is not None:
            del self._keys[process]
        return process

    def _release(self, key: Hashable) -> tuple[ChildSpec, Process] | None:
        """Mark child ``key`` not running and forget it unless kept; its spec and process if it ran."""
        spec = self._children[key].spec
        process = self._unbind(key)
        if spec.restart == "temporary" or not self._keeps_stopped_children:
            del self._children[key]
        return None if process is None else (spec, process)

    def _child_exited(self, key: Hashable, reason: object) -> _Stop | None:
        """Handle the exit of child ``key``: report it, restart it per spec and strategy, or auto shut down."""
        spec, process = self._children[key].spec, self._unbind(key)
        assert process is not None
        self.record("child exited", (spec.id, reason))
        self._trace("child %r exited: %r", spec.id, reason)
        if spec.restart == "permanent" or not is_normal_exit(reason):
            reports.child_terminated(self._label(), spec.id, process, reason)
        else:
            log.info("%s: child %r exited: %r", self._label(), spec.id, reason)
        if should_restart(spec.restart, reason):
            return self._restart(key, key, reason)
        self._release(key)
        return self._auto_shutdown() if spec.significant else None

    def _restart(self, key: Hashable, failed: Hashable, reason: object) -> _Stop | None:
        """Restart the strategy's scope of ``key`` after ``failed`` exited (or failed to start) with ``reason``.

        A failed start counts as another exit: it is retried through the mailbox, so a stop
        request is seen between attempts, until the intensity is reached.
        """
        if not self._intensity.allow(time.monotonic()):
            return self._escalate(failed, reason)
        self._counts["restarts"] += 1
        scope = restart_scope(self.strategy, list(self._children), key) if key in self._children else [failed]
        for other in reversed(scope):
            if other != failed:
                self._terminate(other)
        for next_key in [other for other in scope if other in self._children]:
            log.info("%s: restarting child %r", self._label(), self._children[next_key].spec.id)
            try:
                self._start(next_key)
            except StartError as error:
                self._mailbox.put(_Retry(key, next_key, error.reason))
                return None
        return None

    def _escalate(self, key: Hashable, reason: object) -> _Stop:
        error = RestartIntensityError(
            self.name, self._children[key].spec.id, reason, self.max_restarts, self.max_seconds
        )
        reports.reached_max_intensity(self._label(), error)
        return _Stop("shutdown")

    def _auto_shutdown(self) -> _Stop | None:
        """After a significant child exited for good: shut down as ``auto_shutdown`` says, or None."""
        running = any(child.spec.significant and child.process is not None for child in self._children.values())
        if self.auto_shutdown == "any_significant" or (self.auto_shutdown == "all_significant" and not running):
            log.info("%s: significant children exited: auto shutdown", self._label())
            return _Stop("shutdown")
        return None

    def _shut_down_tree(self) -> None:
        """Stop every child (whatever one of them raises), then refuse further calls."""
        try:
            released = [self._release(key) for key in reversed(list(self._children))]
            stopping = [pair for pair in released if pair is not None]
            if self._stops_children_together:
                self._shut_down(stopping)
            else:
                for pair in stopping:
                    self._shut_down([pair])
        finally:
            self._close_mailbox()

    def _shut_down(self, children: list[tuple[ChildSpec, Process]]) -> None:
        """Stop ``children`` at the same time, each as its spec says; report each that does not stop cleanly."""
        self._stopping = [process for _, process in children]
        if self.exit_reason is not None:  # killed meanwhile: kill() may not have seen them
            for process in self._stopping:
                process.kill()
        waiting: list[tuple[ChildSpec, Process, float | None]] = []
        for spec, process in children:
            if spec.shutdown == "brutal_kill":
                process.kill()
                continue
            try:
                if process.is_alive():
                    process.begin_stop("shutdown", spec.shutdown)
            except Exception as exc:  # noqa: BLE001 - reported; the child is killed instead
                reports.shutdown_error(self._label(), spec.id, exc)
                process.kill()
                continue
            deadline = None if spec.shutdown is None else time.monotonic() + spec.shutdown
            waiting.append((spec, process, deadline))
        for spec, process, deadline in waiting:
            if not process.join(None if deadline is None else max(0.0, deadline - time.monotonic())):
                process.kill()
            reason = process.exit_reason
            if reason != "shutdown" and not (reason == "normal" and spec.restart != "permanent"):
                reports.shutdown_error(self._label(), spec.id, reason)
            self._trace("terminated child %r: %r", spec.id, reason)
        self._stopping = []

    def _close_mailbox(self) -> None:
        for message in [*self._deferred, *self._mailbox.close()]:
            if isinstance(message, _Call):
                message.refuse(NotRunningError(f"{self!r} has exited"))
        self._deferred.clear()

    def _label(self) -> str:
        return f"supervisor {self.name!r}" if self.name is not None else repr(self)
