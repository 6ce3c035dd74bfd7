"""Waiting for state that no event announces, always with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    """Wait until `check()` holds; fail saying so if it never does within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - polling state that no event announces
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"condition not reached within {within}s") from None
