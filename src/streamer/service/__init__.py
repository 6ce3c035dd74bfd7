"""The composition root: the supervision tree that runs everything, and its `Service`.

`Service` is imported on first use, so `streamer.service.streaming` (whose results the public
API exports) loads without the web stack that the tree brings in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamer.service.tree import Service

__all__ = ["Service"]


def __getattr__(name: str) -> Any:
    if name != "Service":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from streamer.service.tree import Service

    return Service
