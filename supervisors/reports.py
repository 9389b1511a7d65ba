"""A supervisor's reports, as OTP's: progress (INFO) and errors (ERROR) on the ``supervisors`` logger.

Each record carries the report's fields as ``record.report`` (a dict) for handlers that want them.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from .errors import RestartIntensityError
from .process import Process
from .recorder import describe

__all__ = ["child_terminated", "progress", "reached_max_intensity", "shutdown_error", "start_error"]

log = logging.getLogger("supervisors")


def _report(level: int, supervisor: str, context: str, text: str, **fields: object) -> None:
    report = {"supervisor": supervisor, "context": context, **fields}
    log.log(level, "%s: %s: %s", supervisor, context, text, extra={"report": report})


def progress(supervisor: str, child_id: Hashable, process: Process) -> None:
    """A child started (or restarted)."""
    if not log.isEnabledFor(logging.INFO):
        return  # a report not logged costs nothing to write: a supervisor may restart a hundred at once
    _report(logging.INFO, supervisor, "progress", f"started child {child_id!r}: {process!r}", id=child_id, pid=process)


def child_terminated(supervisor: str, child_id: Hashable, process: Process, reason: object) -> None:
    """A child exited in a way OTP reports (abnormally, or a permanent child at all), with its last events."""
    if not log.isEnabledFor(logging.ERROR):
        return  # its last events are costly to describe
    events = process.recorded_events()
    text = f"child {child_id!r} ({process!r}) exited with {reason!r}"
    if events:
        text += f"; its last {len(events)} events:\n{describe(events)}"
    _report(logging.ERROR, supervisor, "child_terminated", text, id=child_id, pid=process, reason=reason, events=events)


def start_error(supervisor: str, child_id: Hashable, error: BaseException) -> None:
    """A child's start failed."""
    _report(
        logging.ERROR,
        supervisor,
        "start_error",
        f"child {child_id!r} failed to start: {error!r}",
        id=child_id,
        reason=error,
    )


def shutdown_error(supervisor: str, child_id: Hashable, reason: object) -> None:
    """Stopping a child failed, or it stopped with another reason than ``"shutdown"``."""
    text = f"child {child_id!r} did not shut down cleanly: {reason!r}"
    _report(logging.ERROR, supervisor, "shutdown_error", text, id=child_id, reason=reason)


def reached_max_intensity(supervisor: str, error: RestartIntensityError) -> None:
    """The supervisor reached its restart intensity and shuts down."""
    _report(
        logging.ERROR,
        supervisor,
        "reached_max_restart_intensity",
        f"{error}; shutting down",
        id=error.child_id,
        reason=error.reason,
        max_restarts=error.max_restarts,
        max_seconds=error.max_seconds,
    )
