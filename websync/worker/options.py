"""A worker's options, typed: how it connects, its keepalive, and its queue of outgoing frames."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..net.options import ConnectOptions, KeepaliveOptions, split_options

__all__ = ["DEFAULT_MAX_QUEUE", "Overflow", "WorkerOptions"]

Overflow = Literal["error", "drop_oldest", "drop_newest", "close"]
DEFAULT_MAX_QUEUE = 10_000


@dataclass(frozen=True)
class WorkerOptions:
    """The options of :func:`websync.start`, grouped by concern.

    ``max_queue`` bounds the frames kept while they cannot go out and ``overflow`` says what
    happens past it (see :class:`~websync.Worker`); ``record_frames`` keeps every frame in and out
    in the flight recorder (``supervisors.sys.log``, crash reports), off by default: about
    0.1-0.2 µs per frame (see docs/supervisors.md).
    """

    connect: ConnectOptions = field(default_factory=ConnectOptions)
    keepalive: KeepaliveOptions = field(default_factory=KeepaliveOptions)
    max_queue: int | None = DEFAULT_MAX_QUEUE
    overflow: Overflow = "error"
    record_frames: bool = False

    def __post_init__(self) -> None:
        if self.overflow not in get_args(Overflow):
            raise ValueError(f"overflow must be one of {get_args(Overflow)}, not {self.overflow!r}")

    @classmethod
    def from_keywords(cls, options: Mapping[str, Any], allowed: frozenset[str] | None = None) -> WorkerOptions:
        """The options from keyword arguments (``websync.start``'s); ``TypeError`` for an unknown
        name. ``allowed``: the worker options a caller takes, if not all of them."""
        connect, keepalive, rest = split_options(options, _WORKER_FIELDS if allowed is None else allowed)
        return cls(connect, keepalive, **rest)


_WORKER_FIELDS = frozenset({"max_queue", "overflow", "record_frames"})
