"""Cache statistics count every call served: coalesced followers included.

Hit-rate metrics under load must describe the load: 500 concurrent calls of 50 warm keys
are 500 hits whether each call read the cache itself or shared the read of a concurrent
call of the same key (single flight). Run on every cache kind (in-process, fakeredis, a
real Redis with and without the near-cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.cache.conftest import CACHE_KINDS, dispose_cache, make_cache
from viveka_db import cacheable
from viveka_db.cache import current
from viveka_db.cache.backend import CacheBackend

KEYS = 50
CALLS = 500


@pytest.fixture(params=CACHE_KINDS)
async def cache(request: pytest.FixtureRequest, installed: None) -> AsyncIterator[CacheBackend]:
    """Every cache kind, with a command timeout a loaded CI machine cannot reach: these tests
    count hits, and a read that timed out (failing open, as it should) would be a miss."""
    kind = str(request.param)
    options = {} if kind == "memory" else {"socket_timeout": 5.0}
    backend = await make_cache(kind, request, **options)
    current.use_cache(backend)
    try:
        yield backend
    finally:
        await dispose_cache(backend)


def _counting_loader(prefix: str) -> tuple[list[int], object]:
    loads: list[int] = []

    @cacheable(prefix, ttl=60)
    async def get(n: int) -> dict[str, int]:
        loads.append(n)
        await asyncio.sleep(0)  # let the other calls of the burst arrive meanwhile
        return {"n": n}

    return loads, get


async def test_500_concurrent_calls_of_50_warm_keys_count_500_hits(cache: CacheBackend) -> None:
    loads, get = _counting_loader("stats_warm")
    for n in range(KEYS):
        assert await get(n) == {"n": n}  # type: ignore[operator]
    assert len(loads) == KEYS
    before = cache.stats()

    results = await asyncio.gather(*(get(i % KEYS) for i in range(CALLS)))  # type: ignore[operator]

    after = cache.stats()
    assert results == [{"n": i % KEYS} for i in range(CALLS)]
    assert len(loads) == KEYS  # nothing loaded again
    assert after.hits - before.hits == CALLS
    assert after.misses == before.misses


async def test_a_cold_burst_counts_one_miss_per_load_and_hits_for_the_rest(
    cache: CacheBackend,
) -> None:
    loads, get = _counting_loader("stats_cold")
    before = cache.stats()

    results = await asyncio.gather(*(get(i % KEYS) for i in range(CALLS)))  # type: ignore[operator]

    after = cache.stats()
    assert results == [{"n": i % KEYS} for i in range(CALLS)]
    misses = after.misses - before.misses
    assert misses == len(loads)  # one miss per load: followers shared the leader's load
    assert (after.hits - before.hits) + misses == CALLS  # every call counted once
