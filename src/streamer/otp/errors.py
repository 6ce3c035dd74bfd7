"""Why a child or a supervisor could not do what was asked of it, and the exits a child chooses.

The runtime API's errors are OTP's error tuples as exceptions: `already_present`,
`{already_started, Child}`, `running`, `restarting` and `not_found`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.errors import StreamerError

if TYPE_CHECKING:
    from streamer.otp.child import Child


class Shutdown(StreamerError):
    """A clean exit on purpose: OTP's `shutdown` exit reason, or `{shutdown, reason}`.

    A child raises it to stop for good reasons of its own; `Child.kill(Shutdown(...))` asks the
    same from outside. A transient child that exits with it is not restarted and nothing is
    logged as a crash; a permanent child is restarted all the same, as in OTP.
    """

    def __init__(self, reason: object = None, *, message: str | None = None) -> None:
        if message is None:
            message = "shutdown" if reason is None else f"shutdown: {reason}"
        super().__init__(message)
        self.reason = reason


class Ignore(StreamerError):
    """Raised by a child before it calls `started()`: it decided not to run (OTP's `ignore`).

    Its start succeeds with nothing running; the handle's state is `ignored`.
    """


class StartError(StreamerError):
    """A child did not come up: its body raised, or ended, before it signalled it had started."""

    def __init__(self, child_id: str, reason: BaseException) -> None:
        super().__init__(f"child {child_id!r} failed to start: {reason!r}")
        self.child_id = child_id
        self.reason = reason


class AlreadyStarted(StartError):
    """The name (or the id) is held by a live child, carried along (OTP's already_started).

    The holder may be `abandoned`: stopped by its supervisor but still running, in which case
    the name is free again only once its task has ended.
    """

    def __init__(self, child_id: str, name: str, child: Child, *, what: str = "name") -> None:
        super().__init__(
            child_id, LookupError(f"{what} {name!r} is taken by {child.state} child {child.id!r}")
        )
        self.name = name
        self.child = child


class AlreadyPresent(StartError):
    """The supervisor keeps a stopped child with that id: restart or delete it (already_present)."""

    def __init__(self, child: Child) -> None:
        super().__init__(child.id, LookupError(f"a stopped child {child.id!r} is already present"))
        self.child = child


class MaxChildrenReached(StartError):
    """A dynamic supervisor already holds as many children as it was allowed."""

    def __init__(self, child_id: str, max_children: int) -> None:
        super().__init__(child_id, OverflowError(f"max_children={max_children} reached"))
        self.max_children = max_children


class ChildNotFound(StreamerError, LookupError):
    """The child is not (or no longer) supervised here: it was terminated, or was never started.

    OTP's `{error, not_found}`, and Elixir's `{:error, :not_found}` from
    `DynamicSupervisor.terminate_child/2`.
    """


class ChildRunning(StreamerError, RuntimeError):
    """The child still runs, so it cannot be restarted or deleted (OTP's `running`).

    An `abandoned` child counts as running: its task has not ended yet.
    """

    def __init__(self, child: Child) -> None:
        super().__init__(f"child {child.id!r} is {child.state}; terminate it first")
        self.child = child


class ChildRestarting(StreamerError, RuntimeError):
    """The child ended and its supervisor is about to restart it (OTP's `restarting`)."""

    def __init__(self, child: Child) -> None:
        super().__init__(f"child {child.id!r} is about to be restarted by its supervisor")
        self.child = child


class SupervisorNotRunning(StreamerError, RuntimeError):
    """The supervisor asked is not running, so it cannot start, stop or change children."""


class SupervisorFailed(Shutdown):
    """A supervisor gave up: more restarts than it allows in its window, so its parent decides.

    As in OTP it exits with reason `shutdown`: as a transient child it stays stopped, as a
    permanent one its parent restarts it (counting one restart of its own). `reason` is the
    last failure.
    """

    def __init__(self, supervisor: str, child_id: str, reason: BaseException | None) -> None:
        super().__init__(
            reason,
            message=f"supervisor {supervisor!r} reached its restart intensity; "
            f"last failure: child {child_id!r}: {reason!r}",
        )
        self.supervisor = supervisor
        self.child_id = child_id
        self.reason: BaseException | None = reason
