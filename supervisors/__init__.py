"""OTP-style supervision trees for Python threads.

A child is described by a ChildSpec; a Supervisor starts children in order,
restarts them by strategy within a restart intensity and escalates beyond it.
``supervisors.sys`` is OTP's ``sys`` for every process. See docs/supervisors.md.
"""

from . import sys as sys  # supervisors.sys, as in OTP
from ._version import __version__ as __version__
from .base import SupervisorBase, SupervisorState
from .dynamic import DynamicSupervisor
from .errors import (
    ChildRunningError,
    DuplicateChildError,
    MaxChildrenError,
    NameTakenError,
    NotRunningError,
    RestartIntensityError,
    StartError,
    SupervisorError,
    UnknownChildError,
)
from .process import FunctionProcess, Monitor, Process, current_process
from .reasons import FORKED, KILLED, Exit, is_normal_exit
from .recorder import Event
from .registry import whereis
from .spec import AutoShutdown, ChildSpec, ChildType, Restart, Shutdown, check_childspecs
from .supervisor import Supervisor
from .trace import trace

__all__ = [
    "FORKED",
    "KILLED",
    "AutoShutdown",
    "ChildRunningError",
    "ChildSpec",
    "ChildType",
    "DuplicateChildError",
    "DynamicSupervisor",
    "Event",
    "Exit",
    "FunctionProcess",
    "MaxChildrenError",
    "Monitor",
    "NameTakenError",
    "NotRunningError",
    "Process",
    "Restart",
    "RestartIntensityError",
    "Shutdown",
    "StartError",
    "Supervisor",
    "SupervisorBase",
    "SupervisorError",
    "SupervisorState",
    "UnknownChildError",
    "check_childspecs",
    "current_process",
    "is_normal_exit",
    "trace",
    "whereis",
]
