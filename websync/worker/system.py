"""The worker's side of ``supervisors.sys``: calls posted to its mailbox, answered in its thread."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisors import NotRunningError

__all__ = ["Mailbox", "SystemCall", "answer_system_calls", "refuse_system_calls"]

Mailbox = deque[tuple[str, Any]]
"""A worker's messages from other threads, ``(kind, payload)`` in order ("system": a SystemCall)."""

LIVENESS_INTERVAL = 0.05
"""How often a caller waiting for its answer looks whether the worker has exited."""


@dataclass
class SystemCall:
    """A ``supervisors.sys`` call posted to a worker's mailbox, and its answer."""

    fn: Callable[[], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def run(self) -> None:
        """In the worker's thread: run the call and hand its result or exception over."""
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self.error = exc
        self.done.set()

    def refuse(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def answer(self, alive: Callable[[], bool], process: object) -> Any:
        """In the calling thread: wait for the answer; NotRunningError if the worker exits first."""
        while not self.done.wait(LIVENESS_INTERVAL):
            if not alive():  # exited: it answered what it found queued, not this one
                self.refuse(NotRunningError(f"{process!r} is not running"))
        if self.error is not None:
            raise self.error
        return self.result


def answer_system_calls(mailbox: Mailbox) -> None:
    """In the worker's thread: run the system calls waiting in ``mailbox``, leaving the other
    messages in order."""
    for _ in range(len(mailbox)):
        kind, payload = mailbox.popleft()
        if kind == "system":
            payload.run()
        else:
            mailbox.append((kind, payload))


def refuse_system_calls(mailbox: Mailbox, process: object) -> None:
    """At the worker's exit: the system calls still queued get NotRunningError."""
    for kind, payload in list(mailbox):
        if kind == "system":
            payload.refuse(NotRunningError(f"{process!r} is not running"))
