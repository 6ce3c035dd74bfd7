"""Unique names for live children, so callers find a child by what it is (OTP's Registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.otp.errors import AlreadyStarted

if TYPE_CHECKING:
    from streamer.otp.child import Child


class Registry:
    """Maps each name to the one supervised child holding it.

    Supervisors claim a child's name before starting it and release it once they are done
    with the child, however it ended: shut down, terminated, failed to start, or exited and
    not to be restarted. A child between a crash and its restart keeps its name, so a lookup
    never misses a child that is coming back, and nobody else can take the name meanwhile.
    """

    __slots__ = ("_children", "label")

    def __init__(self, label: str = "registry") -> None:
        self.label = label
        self._children: dict[str, Child] = {}

    def lookup(self, name: str) -> Child | None:
        """The child registered under `name`, if any (it may be about to be restarted)."""
        return self._children.get(name)

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._children)

    def __len__(self) -> int:
        return len(self._children)

    def _register(self, name: str, child: Child) -> None:
        holder = self._children.get(name)
        if holder is not None and holder is not child:
            raise AlreadyStarted(child.id, name, holder)
        self._children[name] = child

    def _unregister(self, name: str, child: Child) -> None:
        if self._children.get(name) is child:
            del self._children[name]

    def __repr__(self) -> str:
        return f"<Registry {self.label!r} names={len(self._children)}>"
