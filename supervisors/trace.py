"""Per-process trace logging."""

from __future__ import annotations

from .process import Process

__all__ = ["trace"]


def trace(process: Process, enabled: bool = True) -> None:
    """Log ``process``'s events (for a supervisor: its children's starts, exits, restarts and
    terminations) at DEBUG on the ``supervisors.trace`` logger, or stop doing so."""
    process.system_trace(enabled)
