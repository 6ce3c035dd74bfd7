"""Supervision primitives with Erlang/OTP semantics on asyncio: supervisors, dynamic supervisors,
a registry of unique names, and a runner for a whole tree.

Where Python cannot follow OTP: there is no untrappable kill. Past its shutdown time (at once
for `shutdown=0`, `brutal_kill`) a child is cancelled again every loop turn, which cuts its
cleanup at the `await` it is in; only the synchronous part up to there always runs. A child deaf
to every cancellation is `abandoned` and keeps its registered name until its task has really
ended (see `streamer.otp.child`).
"""

from streamer.otp.application import run_application
from streamer.otp.child import Child, ChildState
from streamer.otp.dynamic import DynamicSupervisor
from streamer.otp.errors import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    Ignore,
    MaxChildrenReached,
    Shutdown,
    StartError,
    SupervisorFailed,
    SupervisorNotRunning,
)
from streamer.otp.intensity import RestartIntensity
from streamer.otp.registry import Registry
from streamer.otp.spec import ChildSpec, ChildType, Restart, Started, Strategy
from streamer.otp.supervisor import Supervisor

__all__ = [
    "AlreadyPresent",
    "AlreadyStarted",
    "Child",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "ChildSpec",
    "ChildState",
    "ChildType",
    "DynamicSupervisor",
    "Ignore",
    "MaxChildrenReached",
    "Registry",
    "Restart",
    "RestartIntensity",
    "Shutdown",
    "StartError",
    "Started",
    "Strategy",
    "Supervisor",
    "SupervisorFailed",
    "SupervisorNotRunning",
    "run_application",
]
