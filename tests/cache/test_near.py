"""The near-cache: hits from process memory, never trusted without Redis.

The transaction promises (deferred writes and evictions, no stale refill, read-your-writes)
run with the near-cache on through the ``redis-near`` kind of the ``cache`` fixture
(``tests/cache/conftest.py``). Here: what only the near-cache can get wrong, against a
real Redis under a unique namespace (never flushed), and across two real processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cache.conftest import dispose_cache, unique_namespace, until
from viveka_db import CacheSettings, cache_evict, cacheable, get_cache
from viveka_db.cache import current, setup
from viveka_db.cache.invalidation import InvalidationListener, channel_for, parse_invalidation
from viveka_db.cache.near import PREFIX_SLACK, NearCache
from viveka_db.cache.redis_cache import RedisCache

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("installed")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def near(redis_url: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_url, namespace=unique_namespace(), near=True, socket_timeout=1.0)
    assert cache.listener is not None and await cache.listener.wait_subscribed()
    current.use_cache(cache)
    try:
        yield cache
    finally:
        await dispose_cache(cache)


async def fill(cache: RedisCache, prefix: str, key: str, payload: bytes) -> None:
    _, stamp = await cache.read(prefix, key)
    assert await cache.write(prefix, key, payload, 60, stamp)


async def test_a_near_hit_sends_nothing_to_redis(
    near: RedisCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(near, "p", "1", b"one")
    sent: list[object] = []
    original = near.client.execute_command

    async def counting(*args: object, **kwargs: object) -> object:
        sent.append(args[0])
        return await original(*args, **kwargs)

    monkeypatch.setattr(near.client, "execute_command", counting)
    assert (await near.read("p", "1"))[0] == b"one"
    assert sent == []
    assert near.near is not None and near.near.hits == 1


async def test_an_eviction_by_another_client_reaches_this_near_cache(
    near: RedisCache, redis_url: str
) -> None:
    """Another process's eviction arrives through Redis: prefix and single key alike."""
    other = RedisCache(redis_url, namespace=near.namespace)  # no near-cache: still publishes
    try:
        await fill(near, "p", "1", b"one")
        await fill(near, "q", "1", b"uno")
        assert (await near.read("p", "1"))[0] == b"one"
        await other.evict_prefix("p")
        await until(lambda: near.near is not None and near.near.invalidations >= 1, 5)
        assert (await near.read("p", "1"))[0] is None
        assert (await near.read("q", "1"))[0] == b"uno"  # another prefix is untouched
        await other.evict_key("q", "1")
        await until(lambda: near.near is not None and near.near.invalidations >= 2, 5)
        assert (await near.read("q", "1"))[0] is None
    finally:
        await other.close()


async def test_a_value_read_across_an_invalidation_is_not_kept(near: RedisCache) -> None:
    """The Redis reply and the invalidation travel on different connections: a fill whose
    read started before an invalidation of its prefix was handled is not trusted."""
    store = near.near
    assert store is not None
    mark = store.mark("p")
    store.invalidate_prefix("p")  # the listener handled an eviction while the read was out
    assert not store.put("p", "1", b"old", (b"1", b"t"), mark)
    assert store.get("p", "1") is None and store.stale_fills == 1
    mark = store.mark("p")
    store.invalidate_key("p", "2")
    assert not store.put("p", "1", b"old", (b"1", b"t"), mark)


async def test_a_lost_connection_drops_the_near_cache_until_resubscribed(
    near: RedisCache, redis_url: str
) -> None:
    listener, store = near.listener, near.near
    assert listener is not None and store is not None and listener.client_id is not None
    await fill(near, "p", "1", b"one")
    assert (await near.read("p", "1"))[0] == b"one" and len(store) == 1
    killed = await near.client.execute_command("CLIENT", "KILL", "ID", listener.client_id)
    assert killed == 1  # only this test's own listening connection
    await until(lambda: not store.trusted, 5)
    assert len(store) == 0
    # an eviction published while nobody listens is lost: nothing cached before may survive
    other = RedisCache(redis_url, namespace=near.namespace)
    try:
        await other.evict_prefix("p")
    finally:
        await other.close()
    assert await listener.wait_subscribed(10) and listener.subscriptions == 2
    assert (await near.read("p", "1"))[0] is None


async def test_reads_while_untrusted_go_to_redis_and_are_not_kept(near: RedisCache) -> None:
    store, listener = near.near, near.listener
    assert store is not None and listener is not None
    await fill(near, "p", "1", b"one")
    store.drop()
    assert (await near.read("p", "1"))[0] == b"one"  # from Redis
    assert len(store) == 0 and store.hits == 0
    store.trust()
    assert (await near.read("p", "1"))[0] == b"one" and len(store) == 1


async def test_memory_is_bounded_by_entries_and_ttl() -> None:
    now = [0.0]
    store = NearCache(max_entries=100, ttl=5.0, clock=lambda: now[0])
    store.trust()
    for i in range(1_000):
        assert store.put("p", str(i), b"x" * 100, (b"1", b"t"), store.mark("p"))
    assert len(store) == 100
    assert store.get("p", "0") is None and store.get("p", "999") is not None  # oldest went
    assert store.put("p", "short", b"x", (b"1", b"t"), store.mark("p"), ttl=1.0)
    now[0] = 1.5  # past the Redis entry's own TTL
    assert store.get("p", "short") is None
    assert store.get("p", "998") is not None
    now[0] = 5.5  # past near_ttl
    assert store.get("p", "998") is None
    for i in range(5_000):  # evictions of prefixes this process never reads
        store.invalidate_prefix(f"other{i}")
    assert len(store._generations) <= 100 + PREFIX_SLACK  # pyright: ignore[reportPrivateUsage]
    assert store.trusted


async def test_the_redis_ttl_bounds_a_near_entry(near: RedisCache) -> None:
    _, stamp = await near.read("p", "1")
    assert await near.write("p", "1", b"brief", 0.2, stamp)
    assert (await near.read("p", "1"))[0] == b"brief"
    await asyncio.sleep(0.3)
    assert (await near.read("p", "1"))[0] is None


async def test_own_evictions_apply_at_once(near: RedisCache) -> None:
    calls = 0

    @cacheable("near_own")
    async def load(x: int) -> int:
        nonlocal calls
        calls += 1
        return calls

    @cache_evict("near_own")
    async def change() -> None:
        return None

    assert await load(1) == 1 and await load(1) == 1
    await change()
    assert await load(1) == 2  # no waiting for our own message


def test_the_section_turns_the_near_cache_on() -> None:
    setup.install_from_settings(
        CacheSettings.model_validate(
            {"url": "redis://127.0.0.1:6379/15", "near": True, "near_max_entries": 7, "near_ttl": 2}
        )
    )
    cache = get_cache()
    assert isinstance(cache, RedisCache) and cache.near is not None
    assert cache.near.max_entries == 7 and cache.near.ttl == 2
    plain = setup.backend_from_settings(CacheSettings.model_validate({"url": "redis://x:1/0"}))
    assert isinstance(plain, RedisCache) and plain.near is None


def test_published_keys_parse_back_to_prefix_and_key() -> None:
    assert parse_invalidation("ns", b"ns:{user}:~g") == ("user", None)
    assert parse_invalidation("ns", b"ns:{user}:42") == ("user", "42")
    assert parse_invalidation("ns", b"ns:{a:b}:~sx%3Ay") == ("a:b", "~sx%3Ay")
    assert parse_invalidation("ns", b"other:{user}:42") is None
    assert channel_for("ns") == "ns:~invalidate"


async def test_a_listener_that_cannot_subscribe_for_other_reasons_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A network failure is retried quietly; anything else (here a broken client) would be
    retried forever without a word, so it is logged, by type only (no message: settings
    may hold a password), and the near-cache stays unused."""

    class Misconfigured:  # neither a plain client nor a working cluster client
        async def initialize(self) -> None:
            raise TypeError("password=hunter2 is not a valid setting")

    store = NearCache(max_entries=10, ttl=1.0)
    listener = InvalidationListener(Misconfigured(), "ns", store, retry_delay=0.01)  # type: ignore[arg-type]
    with caplog.at_level("ERROR", logger="viveka_db.cache"):
        listener.start()
        await until(lambda: bool(caplog.records), 5)
        await listener.stop()
    record = caplog.records[0]
    assert record.levelname == "ERROR" and "failed (TypeError)" in record.getMessage()
    assert "hunter2" not in caplog.text
    assert not store.trusted and listener.subscriptions == 0


# -- two processes ------------------------------------------------------------------------

READER = textwrap.dedent(
    """
    import asyncio, json, sys
    from viveka_db.cache.redis_cache import RedisCache

    async def main() -> None:
        url, namespace, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
        cache = RedisCache(url, namespace=namespace, near=True, socket_timeout=1.0)
        assert await cache.listener.wait_subscribed()
        for i in range(rounds):
            key = str(i)
            while (await cache.read("shared", key))[0] is None:  # the writer fills it
                await asyncio.sleep(0.001)
            print(json.dumps({"ready": i}), flush=True)
            hits_before = cache.near.hits
            while (await cache.read("shared", key))[0] is not None:
                await asyncio.sleep(0)
            near_hits = cache.near.hits - hits_before
            print(json.dumps({"gone": i, "near_hits": near_hits}), flush=True)
        await cache.close()

    asyncio.run(main())
    """
)


async def test_an_eviction_in_one_process_stops_near_hits_in_another(
    near: RedisCache, redis_url: str
) -> None:
    """Process B serves an entry from its near-cache; process A (this one) evicts it; B
    stops serving it within the bound (generous here: the benchmark measures it)."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        READER,
        redis_url,
        near.namespace,
        "5",
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    try:
        for i in range(5):
            await fill(near, "shared", str(i), b"v")
            line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
            assert line == {"ready": i}
            await asyncio.sleep(0.02)  # B is now serving near hits
            evicted_at = asyncio.get_running_loop().time()
            await near.evict_prefix("shared")
            line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 5))
            assert line["gone"] == i and line["near_hits"] > 0
            assert asyncio.get_running_loop().time() - evicted_at < 1.0
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
