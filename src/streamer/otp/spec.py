"""What a supervisor needs to know about a child before starting it (OTP's child specification)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamer.otp.registry import Registry


class Restart(StrEnum):
    """When a child that ended is started again."""

    PERMANENT = "permanent"
    """Always, whatever the reason it ended."""
    TRANSIENT = "transient"
    """Only after a crash; a normal exit, a shutdown or a raised `Shutdown` leaves it stopped."""
    TEMPORARY = "temporary"
    """Never, not even when a sibling's restart stopped it; it is then forgotten."""


class Strategy(StrEnum):
    """Which siblings go down and come back with a child that is restarted."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class ChildType(StrEnum):
    """Workers do the work; supervisors only own other children (and get unlimited shutdown)."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


Started = Callable[[], None]
"""The start handshake: a child calls it once, when it is initialised (OTP's `init/1` returning).

Its supervisor's `run`/`start_child` returns only after that call, so whoever starts a child
knows it is up, or gets the error that stopped it from coming up. A child that decides not to
run raises `Ignore` instead of calling it (OTP's `init/1` returning `ignore`).
"""

Body = Callable[[Started], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to start one child, when to restart it and how long to wait when stopping it."""

    id: str
    start: Body
    """The child's body; every start runs one call of it as one asyncio task."""
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = 5.0
    """Seconds to wait after cancelling it before it is abandoned; None waits forever; 0 is
    OTP's `brutal_kill`: cancel it and do not wait for its cleanup."""
    type: ChildType = ChildType.WORKER
    name: tuple[Registry, str] | None = None
    """A unique name in a registry, held while the child runs (OTP's `{:via, Registry, ...}`)."""
    describe: Callable[[], dict[str, Any]] | None = field(default=None, compare=False)
    """The child's own subtree as plain data, for children that are themselves supervisors."""

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a child spec needs a non-empty id")
        if self.shutdown is not None and self.shutdown < 0:
            raise ValueError(f"child {self.id!r}: shutdown must be >= 0 seconds or None")
