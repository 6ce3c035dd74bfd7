"""Tests for streamer.binance.budget: one REST weight budget and cool-down for the process."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from streamer.binance.budget import USED_WEIGHT_HEADER, RestBudget
from streamer.binance.rest import BinanceRest, RestError, RetryPolicy
from streamer.mock_exchange import Limits, MockConfig, MockExchange


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0  # 20 s into a clock minute

    def __call__(self) -> float:
        return self.now


def test_weight_beyond_the_minute_waits_for_the_next_clock_minute() -> None:
    """Within the limit nothing waits; past it, the wait ends with the exchange's minute."""
    clock = Clock()
    budget = RestBudget(100, clock)
    assert budget.delay(100) == 0.0
    budget.observe(200, {USED_WEIGHT_HEADER: "90"}, None)
    assert budget.used == 90
    assert budget.delay(25) == pytest.approx(40.0)
    clock.now += 40.0
    assert (budget.delay(25), budget.used) == (0.0, 0)


def test_a_429_holds_every_request_back_for_its_retry_after() -> None:
    """One 429 seen by any request makes every request wait as long as the exchange asked."""
    clock = Clock()
    budget = RestBudget(6_000, clock)
    budget.observe(429, {}, 7.0)
    assert budget.delay(1) == pytest.approx(7.0)
    budget.observe(418, {}, None)
    assert budget.delay(1) == pytest.approx(300.0)
    assert budget.cooldowns == 2


class Counting(httpx.AsyncBaseTransport):
    """The real HTTP transport, counting answers by status."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def fetch_40(mock: MockExchange, budget: RestBudget | None) -> Counting:
    """40 back-fill pages, 4 at a time as the hub's limiter allows, for at most 3 s.

    The exchange counts weight per clock minute, so the run starts well inside one: a minute
    turning mid-run would refill the weight and open a second, legitimate round of refusals.
    """
    left_in_minute = 60 - time.time() % 60
    if left_in_minute < 5:
        await asyncio.sleep(left_in_minute + 0.1)
    counting = Counting()
    policy = RetryPolicy(attempts=2, sleep=lambda _: asyncio.sleep(0))
    async with BinanceRest(mock.rest_url, retry=policy, transport=counting, budget=budget) as rest:
        slots = asyncio.Semaphore(4)

        async def page(k: int) -> None:
            async with slots:
                with contextlib.suppress(RestError):
                    await rest.historical_trades("ETHUSDT", k * 10, 10)

        tasks = [asyncio.create_task(page(k)) for k in range(40)]
        await asyncio.wait(tasks, timeout=3.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return counting


async def test_concurrent_back_fills_share_one_cool_down_instead_of_each_meeting_a_429() -> None:
    """Against a 300-weight limit (12 pages), the pages beyond it wait; few ever see a 429."""
    limits = Limits(request_weight=300)
    async with MockExchange(MockConfig(port=0, speed=1000.0, limits=limits)) as mock:
        counting = await fetch_40(mock, RestBudget(6_000))
    refused = counting.statuses.count(429)
    assert 1 <= refused <= 4


async def test_a_budget_set_to_the_exchange_limit_never_meets_a_429() -> None:
    """A budget that knows the limit holds the 13th page back until the minute turns."""
    limits = Limits(request_weight=300)
    async with MockExchange(MockConfig(port=0, speed=1000.0, limits=limits)) as mock:
        counting = await fetch_40(mock, RestBudget(300))
    assert 429 not in counting.statuses
