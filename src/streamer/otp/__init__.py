"""Supervision primitives with Erlang/OTP semantics on asyncio: supervisors, dynamic supervisors,
a registry of unique names, and a runner for a whole tree.
"""

from streamer.otp.application import run_application
from streamer.otp.child import Child, ChildState
from streamer.otp.dynamic import DynamicSupervisor
from streamer.otp.errors import (
    AlreadyStarted,
    ChildNotFound,
    MaxChildrenReached,
    StartError,
    SupervisorFailed,
)
from streamer.otp.intensity import RestartIntensity
from streamer.otp.registry import Registry
from streamer.otp.spec import ChildSpec, ChildType, Restart, Started, Strategy
from streamer.otp.supervisor import Supervisor

__all__ = [
    "AlreadyStarted",
    "Child",
    "ChildNotFound",
    "ChildSpec",
    "ChildState",
    "ChildType",
    "DynamicSupervisor",
    "MaxChildrenReached",
    "Registry",
    "Restart",
    "RestartIntensity",
    "StartError",
    "Started",
    "Strategy",
    "Supervisor",
    "SupervisorFailed",
    "run_application",
]
