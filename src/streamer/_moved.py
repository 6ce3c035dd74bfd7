"""Old import paths of names that moved, kept working for one release with a warning.

A program written against an earlier layout keeps running, and the warning names the new path
to import from, so upgrading is a search-and-replace rather than a hunt.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib import import_module


def moved(old: str, new: str) -> Callable[[str], object]:
    """A module `__getattr__` for `old` that serves `new`'s names with a DeprecationWarning."""

    def __getattr__(name: str) -> object:
        try:
            value: object = getattr(import_module(new), name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{old} moved to {new}: import {name} from {new} (the old path goes in the next "
            "release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__
