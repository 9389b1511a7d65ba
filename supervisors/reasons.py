"""Exit reasons: which are normal, and the reasons this package gives itself."""

from __future__ import annotations

from typing import Final

__all__ = ["FORKED", "KILLED", "is_normal_exit"]

KILLED: Final = "killed"
"""Exit reason of a process ended by ``kill()`` (abnormal, as in OTP)."""

FORKED: Final = ("shutdown", "fork")
"""Exit reason given, in a child process after ``os.fork()``, to every process whose thread did not survive the fork."""


def is_normal_exit(reason: object) -> bool:
    """True for ``"normal"``, ``"shutdown"`` and ``("shutdown", term)``; every other reason is abnormal."""
    if isinstance(reason, str):
        return reason in ("normal", "shutdown")
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown"
