"""Reads keep their connections between commands; a connection the server closed is replaced."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from tests.cache.conftest import delete_namespace, unique_namespace
from viveka_db.cache.redis_cache import RedisCache

pytestmark = [pytest.mark.redis]


async def _kill_named(redis_url: str, name: str) -> int:
    admin: Redis = Redis.from_url(redis_url)
    try:
        killed = 0
        for entry in await admin.client_list():
            if entry.get("name") == name:
                killed += await admin.client_kill_filter(_id=entry["id"])
        return killed
    finally:
        await admin.aclose()


async def test_a_read_survives_the_server_closing_its_idle_connection(redis_url: str) -> None:
    name = f"vtest-held-{uuid.uuid4().hex[:8]}"
    cache = RedisCache(redis_url, namespace=unique_namespace(), client_name=name)
    try:
        _, stamp = await cache.read("p", "k")
        assert await cache.write("p", "k", b"v", 60, stamp)
        assert (await cache.read("p", "k"))[0] == b"v"
        assert await _kill_named(redis_url, name) >= 1  # the held read connection among them
        assert (await cache.read("p", "k"))[0] == b"v"
        assert cache.stats().errors == 0 and cache.available
    finally:
        await delete_namespace(cache)
        await cache.close()


async def test_concurrent_reads_hold_no_more_connections_than_ran_at_once(redis_url: str) -> None:
    cache = RedisCache(redis_url, namespace=unique_namespace(), max_connections=4)
    try:
        results = await asyncio.gather(*(cache.read("p", str(i)) for i in range(40)))
        assert all(stamp is not None for _, stamp in results)
        assert cache.stats().errors == 0 and cache.stats().pool_timeouts == 0
        held = cache._gate._held  # pyright: ignore[reportPrivateUsage]
        assert held is not None and 1 <= len(held) <= 4
    finally:
        await cache.close()
