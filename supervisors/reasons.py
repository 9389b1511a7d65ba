"""Exit reasons: which are normal, and the reasons this package gives itself."""

from __future__ import annotations

from typing import Final

__all__ = ["FORKED", "KILLED", "Exit", "is_normal_exit"]

KILLED: Final = "killed"
"""Exit reason of a process ended by ``kill()`` (abnormal, as in OTP)."""

FORKED: Final = ("shutdown", "fork")
"""Exit reason given, in a child process after ``os.fork()``, to every process whose thread did not survive the fork."""


def is_normal_exit(reason: object) -> bool:
    """True for ``"normal"``, ``"shutdown"`` and ``("shutdown", term)``; every other reason is abnormal."""
    if isinstance(reason, str):
        return reason in ("normal", "shutdown")
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown"


class Exit(BaseException):
    """Raise in a process's thread to end it with exit reason ``reason``, like OTP's ``exit/1``.

    Not logged as a crash. A process blocked in a call to a supervisor gets it when it is
    asked to stop (reason: the stop reason), so the stop reaches it whatever it waits on.
    A BaseException, so that ``except Exception`` does not swallow it.
    """

    def __init__(self, reason: object) -> None:
        super().__init__(reason)
        self.reason = reason
