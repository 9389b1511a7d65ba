"""OTP-style supervision trees for Python threads.

A child is described by a ChildSpec; a Supervisor starts children in order,
restarts them by strategy within a restart intensity and escalates beyond it.
See docs/supervisors.md.
"""

from ._version import __version__ as __version__
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
from .reasons import FORKED, KILLED, is_normal_exit
from .registry import whereis
from .spec import ChildSpec
from .supervisor import Supervisor
from .trace import trace

__all__ = [
    "FORKED",
    "KILLED",
    "ChildRunningError",
    "ChildSpec",
    "DuplicateChildError",
    "DynamicSupervisor",
    "FunctionProcess",
    "MaxChildrenError",
    "Monitor",
    "NameTakenError",
    "NotRunningError",
    "Process",
    "RestartIntensityError",
    "StartError",
    "Supervisor",
    "SupervisorError",
    "UnknownChildError",
    "current_process",
    "is_normal_exit",
    "trace",
    "whereis",
]
