"""The backend contract, on MemoryCache, fakeredis and a real Redis."""

from __future__ import annotations

import asyncio
import logging
import pickle
import secrets
from typing import Any

import pytest

from tests.cache.test_serializer import Boom
from viveka_db import cacheable, get_cache
from viveka_db.cache.backend import CacheBackend
from viveka_db.cache.memory import MemoryCache
from viveka_db.cache.redis_cache import RedisCache


async def test_a_write_lands_only_if_nothing_moved_since_the_read(cache: CacheBackend) -> None:
    payload, stamp = await cache.read("p", "k")
    assert payload is None
    assert await cache.write("p", "k", b"1", 60, stamp)
    hit, hit_stamp = await cache.read("p", "k")
    assert hit == b"1"
    assert not await cache.write("p", "k", b"2", 60, stamp)  # someone wrote since that read
    assert (await cache.read("p", "k"))[0] == b"1"
    assert await cache.write("p", "k", b"3", 60, hit_stamp)
    assert (await cache.read("p", "k"))[0] == b"3"


async def test_prefix_eviction_hides_every_entry_and_refuses_older_reads(
    cache: CacheBackend,
) -> None:
    stamps = {}
    for key in ("1", "2"):
        _, stamp = await cache.read("p", key)
        assert await cache.write("p", key, key.encode(), 60, stamp)
        stamps[key] = (await cache.read("p", key))[1]
    _, before = await cache.read("other", "1")
    await cache.write("other", "1", b"x", 60, before)
    await cache.evict_prefix("p")
    assert (await cache.read("p", "1"))[0] is None
    assert (await cache.read("p", "2"))[0] is None
    assert (await cache.read("other", "1"))[0] == b"x"
    assert not await cache.write("p", "1", b"stale", 60, stamps["1"])
    payload, fresh = await cache.read("p", "1")
    assert payload is None and await cache.write("p", "1", b"new", 60, fresh)
    assert (await cache.read("p", "1"))[0] == b"new"


async def test_key_eviction_refuses_writes_read_before_it(cache: CacheBackend) -> None:
    _, empty = await cache.read("p", "k")
    await cache.evict_key("p", "k")
    assert not await cache.write("p", "k", b"stale", 60, empty)
    assert (await cache.read("p", "k"))[0] is None
    _, after = await cache.read("p", "k")
    assert await cache.write("p", "k", b"new", 60, after)
    assert (await cache.read("p", "k"))[0] == b"new"


async def test_entries_expire_after_their_ttl(cache: CacheBackend) -> None:
    _, stamp = await cache.read("p", "k")
    assert await cache.write("p", "k", b"v", 0.05, stamp)
    await asyncio.sleep(0.2)
    assert (await cache.read("p", "k"))[0] is None


def test_memory_cache_is_bounded() -> None:
    async def fill() -> MemoryCache:
        cache = MemoryCache(max_entries=3)
        for i in range(5):
            _, stamp = await cache.read("p", str(i))
            await cache.write("p", str(i), b"v", 60, stamp)
        return cache

    cache = asyncio.run(fill())
    assert len(cache) == 3
    assert cache.stats().capacity_evictions == 2


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=2)
    for key in ("a", "b"):
        await cache.write("p", key, b"v", 60, (await cache.read("p", key))[1])
    await cache.read("p", "a")  # a is now more recent than b
    await cache.write("p", "c", b"v", 60, (await cache.read("p", "c"))[1])
    assert (await cache.read("p", "a"))[0] == b"v"
    assert (await cache.read("p", "b"))[0] is None


async def test_stats_count_hits_misses_and_evictions(cache: CacheBackend) -> None:
    @cacheable("stats")
    async def load(x: int) -> int:
        return x * 2

    assert await load(1) == 2
    assert await load(1) == 2
    await get_cache().evict_prefix("stats")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.writes, stats.evictions) == (1, 1, 1, 1)


class _CommandCounter:
    """Counts the commands a redis-py client sends (wraps ``execute_command``)."""

    def __init__(self, cache: RedisCache, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commands: list[str] = []
        original = cache.client.execute_command

        async def counting(*args: Any, **options: Any) -> Any:
            self.commands.append(str(args[0]))
            return await original(*args, **options)

        monkeypatch.setattr(cache.client, "execute_command", counting)


async def _fill(cache: RedisCache, prefix: str, count: int) -> list[str]:
    """``count`` valid entries under ``prefix`` (MSET in batches; deleted by ``_unlink``)."""
    _, stamp = await cache.read(prefix, "seed")
    assert await cache.write(prefix, "seed", b"1", 600, stamp)
    generation = await cache.client.get(cache.generation_key(prefix))
    value = b"vk1:" + secrets.token_hex(8).encode() + generation.rjust(20, b"0") + b"1"
    keys = [cache.key_for(prefix, str(i)) for i in range(count)]
    for start in range(0, count, 5000):
        await cache.client.mset(dict.fromkeys(keys[start : start + 5000], value))
    return [str(i) for i in range(count)]


async def _unlink(cache: RedisCache, prefix: str, count: int) -> None:
    keys = [cache.key_for(prefix, str(i)) for i in range(count)]
    for start in range(0, count, 5000):
        await cache.client.unlink(*keys[start : start + 5000])


async def test_prefix_eviction_sends_the_same_few_commands_for_50000_entries(
    redis_cache: RedisCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = await _fill(redis_cache, "small", 1)
    large = await _fill(redis_cache, "large", 50_000)
    try:
        await _evict_and_count(redis_cache, monkeypatch, small, large)
    finally:
        await _unlink(redis_cache, "large", 50_000)


async def _evict_and_count(
    redis_cache: RedisCache, monkeypatch: pytest.MonkeyPatch, small: list[str], large: list[str]
) -> None:
    assert (await redis_cache.read("large", large[-1]))[0] == b"1"
    await redis_cache.evict_prefix("warm-up")  # loads the script once
    counter = _CommandCounter(redis_cache, monkeypatch)
    await redis_cache.evict_prefix("small")
    small_commands = list(counter.commands)
    counter.commands.clear()
    await redis_cache.evict_prefix("large")
    assert counter.commands == small_commands
    assert len(counter.commands) == 1
    assert not {"KEYS", "SCAN", "DEL", "UNLINK"} & {c.upper() for c in counter.commands}
    assert (await redis_cache.read("large", large[0]))[0] is None
    assert (await redis_cache.read("large", large[-1]))[0] is None
    assert (await redis_cache.read("small", small[0]))[0] is None


@pytest.mark.parametrize("framed", [False, True])
async def test_a_planted_pickle_payload_is_a_miss_never_executed(
    redis_cache: RedisCache, framed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    import builtins

    calls = 0

    @cacheable("planted")
    async def load(x: int) -> str:
        nonlocal calls
        calls += 1
        return "from the database"

    body = pickle.dumps(Boom())
    if framed:  # with this library's frame around it, as an attacker who read the code would
        await load(1)
        generation = await redis_cache.client.get(redis_cache.generation_key("planted"))
        body = b"vk1:" + b"0" * 16 + generation.rjust(20, b"0") + body
    await redis_cache.client.set(redis_cache.key_for("planted", "1"), body)
    with caplog.at_level(logging.WARNING, "viveka_db.cache"):
        assert await load(1) == "from the database"
    assert not hasattr(builtins, "VIVEKA_PWNED")
    assert calls == (2 if framed else 1)
    assert await load(1) == "from the database"  # the foreign value was replaced
    assert calls == (2 if framed else 1)


async def test_namespaces_do_not_see_each_other(redis_cache: RedisCache) -> None:
    other = RedisCache(client=redis_cache.client, namespace=redis_cache.namespace + "-other")
    _, stamp = await redis_cache.read("p", "k")
    await redis_cache.write("p", "k", b"mine", 60, stamp)
    assert (await other.read("p", "k"))[0] is None
    await other.evict_prefix("p")
    assert (await redis_cache.read("p", "k"))[0] == b"mine"
    await redis_cache.client.delete(other.generation_key("p"))
