"""What every supervisor shares: the mailbox loop, starting, stopping and restarting children, escalation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

from .errors import NotRunningError, RestartIntensityError, StartError
from .mailbox import Mailbox
from .process import Process
from .reasons import FORKED, is_normal_exit
from .spec import ChildSpec, ChildType
from .strategies import RestartIntensity, restart_scope, should_restart, shut_down

__all__ = ["SupervisorBase"]

log = logging.getLogger("supervisors")

T = TypeVar("T")


@dataclass
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
class _Call:
    fn: Callable[[], object]
    future: Future[object] = field(default_factory=Future)

    def run(self) -> None:
        try:
            self.future.set_result(self.fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self.future.set_exception(exc)


class SupervisorBase(Process):
    """A process that starts children from specs, restarts them one for one and escalates.

    All tree state is owned by the supervisor's thread; other threads reach it
    through the mailbox (``_call``). Subclasses choose the restart scope.
    """

    exit_timeout: ClassVar[float | None] = None
    _keeps_stopped_children: ClassVar[bool] = True

    def __init__(
        self, children: Iterable[tuple[Hashable, ChildSpec]], max_restarts: int, max_seconds: float, name: str | None
    ) -> None:
        super().__init__(name=name)
        self._intensity = RestartIntensity(max_restarts, max_seconds)
        self._children: dict[Hashable, _Child] = {key: _Child(spec) for key, spec in children}
        self._to_start = list(self._children)
        self._mailbox = Mailbox()

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
        try:
            for key in self._to_start:
                self._start(key)
        except BaseException:
            self._terminate_all()
            self._close_mailbox()
            raise

    def run(self) -> object:
        try:
            while True:
                message = self._mailbox.get()
                if isinstance(message, _Stop):
                    return message.reason
                if isinstance(message, _Call):
                    message.run()
                    continue
                assert isinstance(message, _Exit)
                key = self._key_of(message.process)
                if key is not None:
                    escalation = self._child_exited(key, message.reason)
                    if escalation is not None:
                        return escalation
        finally:
            self._terminate_all()
            self._close_mailbox()

    def request_stop(self, reason: object) -> None:
        self._mailbox.put(_Stop(reason))

    def restart_after_fork(self) -> Self:
        """In a process forked while this supervisor ran: start it again, with every child that was running.

        Raises RuntimeError unless the supervisor exited because of the fork.
        """
        if self.exit_reason != FORKED:
            raise RuntimeError(f"{self!r} was not stopped by a fork")
        self._to_start = [key for key, child in self._children.items() if child.process is not None]
        for child in self._children.values():
            child.process = None
        self._intensity = RestartIntensity(self.max_restarts, self.max_seconds)
        self._mailbox = Mailbox()
        self._reset()
        return self.start()

    def _lose_to_fork(self) -> None:
        super()._lose_to_fork()
        self._mailbox = Mailbox()
        self._mailbox.close()

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
                "active": sum(child.process is not None for child in children),
                "supervisors": supervisors,
                "workers": len(children) - supervisors,
            }

        return self._call(count)

    # For subclasses: run in the supervisor's thread.

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the supervisor's thread and return its result (or raise its error)."""
        if self._in_own_thread():
            return fn()
        call = _Call(fn)
        if self._thread is None or not self._mailbox.put(call):
            raise NotRunningError(f"{self!r} is not running")
        return call.future.result()  # type: ignore[return-value]

    def _scope(self, key: Hashable) -> list[Hashable]:
        """The children restarted when ``key`` exits; one for one unless a subclass says otherwise."""
        return restart_scope("one_for_one", list(self._children), key)

    def _start(self, key: Hashable) -> Process:
        """Start child ``key`` from its spec and monitor it; StartError if that fails."""
        child = self._children[key]
        try:
            process = child.spec.start()
            if not isinstance(process, Process) or (not process.is_alive() and process.exit_reason is None):
                raise TypeError(f"start() returned {process!r}, not a started Process")
        except Exception as exc:
            log.error("%s: child %r failed to start: %r", self._label(), child.spec.id, exc)
            raise StartError(child.spec.id, exc) from exc
        process.supervisor = self
        child.process = process
        process.monitor(self._notify_exit)
        self._trace("started child %r: %r", child.spec.id, process)
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
        child = self._children[key]
        process, child.process = child.process, None
        if process is None:
            return False
        if child.spec.restart == "temporary" or not self._keeps_stopped_children:
            del self._children[key]
        shut_down(process, child.spec.shutdown)
        self._trace("terminated child %r: %r", child.spec.id, process.exit_reason)
        return True

    def _key_of(self, process: Process) -> Hashable | None:
        return next((key for key, child in self._children.items() if child.process is process), None)

    # Internals.

    def _notify_exit(self, process: Process, reason: object) -> None:
        self._mailbox.put(_Exit(process, reason))

    def _child_exited(self, key: Hashable, reason: object) -> RestartIntensityError | None:
        """Handle the exit of child ``key``: restart per spec and strategy; the escalation reason if any."""
        child = self._children[key]
        child.process = None
        level = logging.INFO if is_normal_exit(reason) else logging.WARNING
        log.log(level, "%s: child %r exited: %r", self._label(), child.spec.id, reason)
        if should_restart(child.spec.restart, reason):
            return self._restart(key, reason)
        if child.spec.restart == "temporary" or not self._keeps_stopped_children:
            del self._children[key]
        return None

    def _restart(self, key: Hashable, reason: object) -> RestartIntensityError | None:
        """Restart the scope of ``key``; a failed start counts as another exit, until the intensity is reached."""
        pending = [key]
        while pending:
            if not self._intensity.allow(time.monotonic()):
                return self._escalate(key, reason)
            stopped = [other for other in reversed(self._scope(key)) if self._terminate(other)]
            order = [k for k in self._children if k in pending or k in stopped]
            pending = []
            for index, next_key in enumerate(order):
                log.info("%s: restarting child %r", self._label(), self._children[next_key].spec.id)
                try:
                    self._start(next_key)
                except StartError as error:
                    key, reason, pending = next_key, error.reason, order[index:]
                    break
        return None

    def _escalate(self, key: Hashable, reason: object) -> RestartIntensityError:
        error = RestartIntensityError(
            self.name, self._children[key].spec.id, reason, self.max_restarts, self.max_seconds
        )
        log.error("%s: %s; shutting down", self._label(), error)
        self._terminate_all()
        return error

    def _terminate_all(self) -> None:
        for key in reversed(list(self._children)):
            self._terminate(key)

    def _close_mailbox(self) -> None:
        for message in self._mailbox.close():
            if isinstance(message, _Call):
                message.future.set_exception(NotRunningError(f"{self!r} has exited"))

    def _label(self) -> str:
        return f"supervisor {self.name!r}" if self.name is not None else repr(self)
