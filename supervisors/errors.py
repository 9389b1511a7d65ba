"""The exception hierarchy of the supervisors package."""

from __future__ import annotations

from collections.abc import Hashable

__all__ = [
    "ChildRunningError",
    "DuplicateChildError",
    "MaxChildrenError",
    "NameTakenError",
    "NotRunningError",
    "RestartIntensityError",
    "StartError",
    "SupervisorError",
    "UnknownChildError",
]


class SupervisorError(Exception):
    """Base class of every error raised by the supervisors package."""


class StartError(SupervisorError):
    """A process, or a supervisor's child, failed to start.

    ``child_id`` is the child's id (or the process name), ``reason`` what went wrong.
    """

    def __init__(self, child_id: Hashable, reason: object) -> None:
        super().__init__(f"{child_id!r} failed to start: {reason!r}")
        self.child_id = child_id
        self.reason = reason


class NameTakenError(SupervisorError):
    """A name is already registered to a live process."""

    def __init__(self, name: str, process: object) -> None:
        super().__init__(f"name {name!r} is already registered to {process!r}")
        self.name = name
        self.process = process


class MaxChildrenError(SupervisorError):
    """A DynamicSupervisor already runs ``max_children`` children."""

    def __init__(self, max_children: int) -> None:
        super().__init__(f"the supervisor already has its maximum of {max_children} children")
        self.max_children = max_children


class UnknownChildError(SupervisorError, LookupError):
    """No child with this id (or process) belongs to the supervisor."""

    def __init__(self, child: object) -> None:
        super().__init__(f"no such child: {child!r}")
        self.child = child


class DuplicateChildError(SupervisorError):
    """A child with this id already exists in the supervisor."""

    def __init__(self, child_id: Hashable) -> None:
        super().__init__(f"a child with id {child_id!r} already exists")
        self.child_id = child_id


class ChildRunningError(SupervisorError):
    """The call needs a stopped child but the child is running."""

    def __init__(self, child_id: Hashable) -> None:
        super().__init__(f"child {child_id!r} is running")
        self.child_id = child_id


class NotRunningError(SupervisorError):
    """The supervisor was never started or has exited."""


class RestartIntensityError(SupervisorError):
    """Exit reason of a supervisor that reached its maximum restart intensity.

    More than ``max_restarts`` restarts happened within ``max_seconds``; the last
    one was needed because child ``child_id`` exited with ``reason``.
    """

    def __init__(
        self, supervisor: str | None, child_id: Hashable, reason: object, max_restarts: int, max_seconds: float
    ) -> None:
        who = "supervisor" if supervisor is None else f"supervisor {supervisor!r}"
        super().__init__(
            f"{who} reached max restart intensity "
            f"(more than {max_restarts} restarts in {max_seconds} s); "
            f"child {child_id!r} last exited with {reason!r}"
        )
        self.supervisor = supervisor
        self.child_id = child_id
        self.reason = reason
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
