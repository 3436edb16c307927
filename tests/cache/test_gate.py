"""The command gate on its own: deadlines, turns and the breaker, without a Redis server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from viveka_db.cache.backend import CacheCounters
from viveka_db.cache.redis_gate import FAILED, CommandGate


def gate(**options: Any) -> CommandGate:
    settings: dict[str, Any] = {
        "timeout": 0.05,
        "max_in_flight": 4,
        "pool_timeout": 0.05,
        "failure_threshold": 2,
        "recovery_time": 60.0,
        **options,
    }
    return CommandGate(object(), "gate under test", CacheCounters(), **settings)  # type: ignore[arg-type]


async def hang() -> None:
    await asyncio.sleep(3600)


async def answer(value: object = "ok", delay: float = 0.0) -> object:
    await asyncio.sleep(delay)
    return value


async def test_a_command_past_its_deadline_is_a_counted_failure_not_a_hang() -> None:
    under_test = gate()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await under_test.run("read", "GET", hang) is FAILED
    elapsed = loop.time() - started
    assert 0.05 <= elapsed < 1.0
    assert under_test.counters.errors == 1
    assert await under_test.run("read", "GET", answer) == "ok"  # the gate is usable again
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # its own cancellation is withdrawn


async def test_repeated_timeouts_open_the_breaker() -> None:
    under_test = gate()
    for _ in range(2):
        assert await under_test.run("read", "GET", hang) is FAILED
    assert under_test.breaker.is_open
    assert not under_test.allow()
    assert under_test.counters.short_circuits == 1


async def test_a_cancellation_from_outside_is_not_taken_for_a_timeout() -> None:
    under_test = gate(timeout=5.0)
    call = asyncio.ensure_future(under_test.run("read", "GET", hang))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert under_test.counters.errors == 0
    assert await under_test.run("read", "GET", answer) == "ok"  # its turn was given back


async def test_a_burst_beyond_the_bound_waits_for_a_turn_in_order() -> None:
    under_test = gate(max_in_flight=2, pool_timeout=5.0, timeout=5.0)
    running = 0
    most = 0
    finished: list[int] = []

    async def command(n: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        finished.append(n)
        return n

    results = await asyncio.gather(*(under_test.run("read", "GET", command, n) for n in range(8)))
    assert results == list(range(8))
    assert most == 2
    assert finished == list(range(8))  # turns are handed out oldest first
    assert under_test.counters.pool_timeouts == 0


async def test_no_turn_within_pool_timeout_is_a_miss_not_a_breaker_failure() -> None:
    under_test = gate(max_in_flight=1, pool_timeout=0.02, timeout=5.0)
    slow = asyncio.ensure_future(under_test.run("read", "GET", answer, "slow", 0.2))
    await asyncio.sleep(0)
    assert await under_test.run("read", "GET", answer) is FAILED
    assert under_test.counters.pool_timeouts == 1
    assert under_test.counters.errors == 0 and not under_test.breaker.is_open
    assert await slow == "slow"
    assert await under_test.run("read", "GET", answer) == "ok"  # the turn came back
