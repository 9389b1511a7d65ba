"""Test children and a kit that builds specs and cleans up every tree a test starts."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, TypeVar

import pytest

from supervisors import ChildSpec, DynamicSupervisor, Process, Supervisor

P = TypeVar("P", bound=Process)


class Worker(Process):
    """Records ("start", tag) at init and ("stop", tag) at each stop request.

    ``exit(reason)`` ends it with ``reason`` (an exception is raised); a ``deaf``
    worker ignores stop requests.
    """

    def __init__(
        self, events: list[tuple[str, Hashable]], tag: Hashable, *, name: str | None = None, deaf: bool = False
    ) -> None:
        super().__init__(name=name)
        self.events = events
        self.tag = tag
        self.deaf = deaf
        self.outcome: object = "shutdown"

    def init(self) -> None:
        self.events.append(("start", self.tag))

    def request_stop(self, reason: object) -> None:
        self.events.append(("stop", self.tag))
        if not self.deaf:
            self.outcome = reason
            super().request_stop(reason)

    def exit(self, reason: object) -> None:
        self.outcome = reason
        self.stop_requested.set()

    def run(self) -> object:
        self.stop_requested.wait()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class Kit:
    """Builds worker specs that share one event list, and remembers what to clean up."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Hashable]] = []
        self.workers: list[Worker] = []
        self.processes: list[Process] = []

    def worker(self, tag: Hashable, *, name: str | None = None, deaf: bool = False) -> Worker:
        worker = Worker(self.events, tag, name=name, deaf=deaf)
        self.workers.append(worker)
        return worker

    def spec(self, child_id: Hashable, *, name: str | None = None, deaf: bool = False, **options: Any) -> ChildSpec:
        return ChildSpec(child_id, lambda: self.worker(child_id, name=name, deaf=deaf).start(), **options)

    def start(self, process: P) -> P:
        self.processes.append(process)
        return process.start()

    def exit_child(self, supervisor: Process | None, child_id: Hashable, reason: object = None) -> Worker:
        """End ``supervisor``'s child ``child_id`` with ``reason`` (default: a crash) and wait for its exit."""
        assert isinstance(supervisor, (Supervisor, DynamicSupervisor))
        child = {id_: process for id_, process, _ in supervisor.which_children()}[child_id]
        assert isinstance(child, Worker)
        child.exit(RuntimeError(f"{child_id} crashed") if reason is None else reason)
        assert child.join(5)
        return child

    def starts(self) -> list[Hashable]:
        return [tag for event, tag in self.events if event == "start"]

    def stops(self) -> list[Hashable]:
        return [tag for event, tag in self.events if event == "stop"]

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.is_alive():
                process.stop(timeout=5)
        for worker in self.workers:
            worker.stop_requested.set()


@pytest.fixture
def kit() -> Iterator[Kit]:
    kit = Kit()
    yield kit
    kit.close()
