"""Cache backends for the cache tests: in-process, fakeredis and (in CI) a real Redis.

Each test gets its own namespace on the shared Redis and deletes only its own keys:
other engineers' test runs use the same server at the same time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import pytest

from viveka_db.cache import current
from viveka_db.cache.backend import CacheBackend
from viveka_db.cache.memory import MemoryCache
from viveka_db.cache.redis_cache import RedisCache

CACHE_KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("fakeredis", id="fakeredis"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis-near", id="redis-near", marks=pytest.mark.redis),
]
"""Every kind the cache promises are tested on; ``redis-near`` is Redis with the near-cache on."""


def unique_namespace() -> str:
    return f"vtest-{uuid.uuid4().hex[:12]}"


async def delete_namespace(cache: RedisCache) -> None:
    """Remove this test's keys (its namespace only; never FLUSHDB on a shared server)."""
    keys = [key async for key in cache.client.scan_iter(match=f"{cache.namespace}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await cache.client.unlink(*keys[start : start + 1000])


@pytest.fixture
def installed(restore_cache: None) -> None:
    """Restore whatever cache was installed before the test (see ``restore_cache``)."""


async def make_cache(kind: str, request: pytest.FixtureRequest, **options: Any) -> CacheBackend:
    namespace = unique_namespace()
    if kind == "memory":
        return MemoryCache(namespace=namespace, **options)
    if kind == "fakeredis":
        return RedisCache(client=fakeredis.FakeAsyncRedis(), namespace=namespace, **options)
    url = request.getfixturevalue("redis_url")
    if kind == "redis-near":
        near = RedisCache(url, namespace=namespace, near=True, **options)
        assert near.listener is not None and await near.listener.wait_subscribed()
        return near
    return RedisCache(url, namespace=namespace, **options)


async def dispose_cache(cache: CacheBackend) -> None:
    if isinstance(cache, RedisCache):
        await delete_namespace(cache)
        if cache.listener is not None:
            await cache.listener.stop()
        await cache.client.aclose()


@pytest.fixture(params=CACHE_KINDS)
async def cache(request: pytest.FixtureRequest, installed: None) -> AsyncIterator[CacheBackend]:
    """A fresh backend of each kind, installed as the process-wide cache."""
    backend = await make_cache(str(request.param), request)
    current.use_cache(backend)
    try:
        yield backend
    finally:
        await dispose_cache(backend)


@pytest.fixture(params=[p for p in CACHE_KINDS if p.id in ("fakeredis", "redis")])
async def redis_cache(request: pytest.FixtureRequest, installed: None) -> AsyncIterator[RedisCache]:
    """A fresh Redis-protocol backend (fakeredis, and a real Redis), installed."""
    backend = await make_cache(str(request.param), request)
    assert isinstance(backend, RedisCache)
    current.use_cache(backend)
    try:
        yield backend
    finally:
        await dispose_cache(backend)


async def until(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait (bounded) until ``predicate()`` holds; for counters that have no event to await."""
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polling a counter, there is no event
            await asyncio.sleep(0.005)
