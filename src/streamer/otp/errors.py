"""Why a child or a supervisor could not do what was asked of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.errors import StreamerError

if TYPE_CHECKING:
    from streamer.otp.child import Child


class StartError(StreamerError):
    """A child did not come up: its body raised, or ended, before it signalled it had started."""

    def __init__(self, child_id: str, reason: BaseException) -> None:
        super().__init__(f"child {child_id!r} failed to start: {reason!r}")
        self.child_id = child_id
        self.reason = reason


class AlreadyStarted(StartError):
    """The child's name is held by a live child, which is carried along (OTP's already_started)."""

    def __init__(self, child_id: str, name: str, child: Child) -> None:
        super().__init__(child_id, LookupError(f"name {name!r} is taken by child {child.id!r}"))
        self.name = name
        self.child = child


class MaxChildrenReached(StartError):
    """A dynamic supervisor already holds as many children as it was allowed."""

    def __init__(self, child_id: str, max_children: int) -> None:
        super().__init__(child_id, OverflowError(f"max_children={max_children} reached"))
        self.max_children = max_children


class ChildNotFound(StreamerError, LookupError):
    """The child is not (or no longer) supervised here: it was terminated, or was never started."""


class SupervisorFailed(StreamerError):
    """A supervisor gave up: more restarts than it allows in its window, so its parent decides."""

    def __init__(self, supervisor: str, child_id: str, reason: BaseException | None) -> None:
        super().__init__(
            f"supervisor {supervisor!r} reached its restart intensity; "
            f"last failure: child {child_id!r}: {reason!r}"
        )
        self.supervisor = supervisor
        self.child_id = child_id
        self.reason = reason
