"""The cache on a real Redis Cluster, on Sentinel, and on a Redis of our own that we freeze."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.topology import servers
from viveka_db import cache_evict, cacheable, use_cache
from viveka_db.cache.redis_cache import RedisCache
from viveka_db.cache.registry import cache_from_url
from viveka_db.errors import ConfigurationError

pytestmark = [pytest.mark.topology, pytest.mark.redis]


class Database:
    """The source of truth, counting its loads."""

    def __init__(self) -> None:
        self.rows: dict[int, str] = {1: "v1", 2: "w1"}
        self.loads = 0
        self.delay = 0.0

    async def load(self, row: int) -> str:
        self.loads += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.rows[row]


def service(database: Database) -> tuple[Any, Any, Any]:
    @cacheable("topo_row", ttl=600)
    async def get(row: int) -> str:
        return await database.load(row)

    @cache_evict("topo_row")
    async def put_all(row: int, value: str) -> None:
        database.rows[row] = value

    @cache_evict("topo_row", key=lambda row, value: row)
    async def put_one(row: int, value: str) -> None:
        database.rows[row] = value

    return get, put_all, put_one


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 15.0) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > limit:
            pytest.fail(f"condition not met within {limit}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def exercise(cache: RedisCache) -> None:
    """Cacheable, key eviction and prefix eviction behave on ``cache``."""
    use_cache(cache)
    database = Database()
    get, put_all, put_one = service(database)
    assert [await get(1), await get(2)] == ["v1", "w1"]
    assert [await get(1), await get(2)] == ["v1", "w1"]
    assert database.loads == 2  # the second round were hits
    await put_one(1, "v2")
    assert [await get(1), await get(2)] == ["v2", "w1"]
    assert database.loads == 3  # only the evicted key reloaded
    await put_all(2, "w2")
    assert [await get(1), await get(2)] == ["v2", "w2"]
    assert database.loads == 5  # the whole prefix reloaded
    stats = cache.stats()
    assert stats.errors == 0 and stats.hits == 3 and stats.writes == 5


async def test_cacheable_and_evictions_on_a_redis_cluster(
    redis_cluster: servers.RedisProcesses, restore_cache: None
) -> None:
    # 2 s: these assert hits and misses, and a loaded machine can starve a 0.25 s timeout
    cache = cache_from_url(
        redis_cluster.cluster_url, namespace=f"c{time.time_ns()}", socket_timeout=2.0
    )
    assert isinstance(cache, RedisCache)
    try:
        await exercise(cache)
        # one prefix, one slot: the generation and the entries share the hash tag
        slots = {
            await cache.client.cluster_keyslot(cache.generation_key("topo_row")),  # type: ignore[union-attr]
            await cache.client.cluster_keyslot(cache.key_for("topo_row", "1")),  # type: ignore[union-attr]
        }
        assert len(slots) == 1
    finally:
        await cache.close()


async def test_a_cluster_failover_needs_no_help(
    redis_cluster: servers.RedisProcesses, restore_cache: None
) -> None:
    url = redis_cluster.cluster_url
    cache = RedisCache(url, namespace=f"f{time.time_ns()}", socket_timeout=1.0)
    use_cache(cache)
    database = Database()
    get, put_all, _ = service(database)
    try:
        assert await get(1) == "v1"
        slot = await cache.client.cluster_keyslot(cache.key_for("topo_row", "1"))  # type: ignore[union-attr]
        replica_port = _replica_serving(redis_cluster, slot)
        assert servers.redis_cli(replica_port, "cluster", "failover") == "OK"
        await put_all(1, "v2")

        async def caching_again() -> bool:
            before = database.loads
            value = await get(1)
            assert value == database.rows[1]  # every call correct, no exception
            return await get(1) == "v2" and database.loads == before

        await eventually(caching_again)
    finally:
        await cache.close()


async def test_the_near_cache_on_a_redis_cluster(
    redis_cluster: servers.RedisProcesses, restore_cache: None
) -> None:
    """Evictions published on any master reach the near-cache subscribed on one node, over
    the cluster bus; a lost subscription drops it until it is subscribed again, on the next
    node."""
    namespace = f"n{time.time_ns()}"
    url = redis_cluster.cluster_url
    near = RedisCache(url, namespace=namespace, near=True, socket_timeout=1.0)
    other = RedisCache(url, namespace=namespace)  # another process, no near-cache
    listener, store = near.listener, near.near
    assert listener is not None and store is not None
    try:
        assert await listener.wait_subscribed(10) and listener.node is not None
        prefixes = [f"p{i}" for i in range(12)]
        masters = {await master_of(near, near.key_for(prefix, "1")) for prefix in prefixes}
        assert len(masters) == 3  # published on every master, subscribed on one node only
        for prefix in prefixes:
            _, stamp = await near.read(prefix, "1")
            assert await near.write(prefix, "1", prefix.encode(), 60, stamp)
        for prefix in prefixes:
            assert (await near.read(prefix, "1"))[0] == prefix.encode()
        assert store.hits == len(prefixes)
        for number, prefix in enumerate(prefixes):
            if number % 2:
                await other.evict_prefix(prefix)
            else:
                await other.evict_key(prefix, "1")

        async def all_invalidated() -> bool:
            return store.invalidations >= len(prefixes)

        await eventually(all_invalidated, 5)
        for prefix in prefixes:
            assert (await near.read(prefix, "1"))[0] is None
        first_node, client_id = listener.node, listener.client_id
        port = int(first_node.rsplit(":", 1)[1])
        assert servers.redis_cli(port, "client", "kill", "id", str(client_id)) == "1"

        async def dropped() -> bool:
            return not store.trusted

        await eventually(dropped, 5)
        assert len(store) == 0
        assert await listener.wait_subscribed(10) and listener.node != first_node
    finally:
        await other.close()
        await near.close()


async def master_of(cache: RedisCache, key: str) -> str:
    slot = await cache.client.cluster_keyslot(key)  # type: ignore[union-attr]
    node = cache.client.get_node_from_key(key)  # type: ignore[union-attr]
    assert node is not None, slot
    return str(node.name)


def _replica_serving(cluster: servers.RedisProcesses, slot: int) -> int:
    """The port of a replica of the master that owns ``slot``."""
    nodes = servers.redis_cli(cluster.ports[0], "cluster", "nodes").splitlines()
    master_id = None
    for line in nodes:
        fields = line.split()
        if "master" in fields[2]:
            for part in fields[8:]:
                low, _, high = part.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    master_id = fields[0]
    for line in nodes:
        fields = line.split()
        if fields[3] == master_id:
            return int(fields[1].split(":")[1].split("@")[0])
    raise AssertionError("no replica for the slot")


async def test_a_plain_url_at_a_cluster_node_fails_at_start_up(
    redis_cluster: servers.RedisProcesses,
) -> None:
    with pytest.raises(ConfigurationError, match=r"redis\+cluster://"):
        cache_from_url(redis_cluster.url)


async def test_cacheable_and_evictions_through_sentinel_survive_a_failover(
    redis_sentinels: servers.RedisProcesses, restore_cache: None
) -> None:
    cache = cache_from_url(
        redis_sentinels.sentinel_url, namespace=f"s{time.time_ns()}", socket_timeout=2.0
    )
    assert isinstance(cache, RedisCache)
    try:
        await exercise(cache)
        database = Database()
        database.rows = {1: "v2", 2: "w2"}  # what exercise() left
        get, put_all, _ = service(database)
        assert await get(1) == "v2" and database.loads == 0
        before = _sentinel_master(redis_sentinels)
        servers.redis_cli(redis_sentinels.sentinel_ports[0], "sentinel", "failover", "viveka")

        async def switched() -> bool:
            return _sentinel_master(redis_sentinels) != before

        await eventually(switched)
        await put_all(1, "v3")

        async def caching_again() -> bool:
            loads = database.loads
            assert await get(1) == database.rows[1]  # every call correct, no exception
            return await get(1) == "v3" and database.loads == loads

        await eventually(caching_again)
    finally:
        await cache.close()


def _sentinel_master(sentinels: servers.RedisProcesses) -> str:
    port = sentinels.sentinel_ports[0]
    return servers.redis_cli(port, "sentinel", "get-master-addr-by-name", "viveka").split()[-1]


# -- a Redis of our own, frozen and thawed -------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[servers.RedisProcesses]:
    try:
        procs = servers.redis_standalone()
    except servers.TopologyUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield procs
    finally:
        procs.stop()


@pytest.fixture
async def two_processes(
    own_redis: servers.RedisProcesses, restore_cache: None
) -> AsyncIterator[tuple[RedisCache, RedisCache]]:
    """Two caches on one Redis, like two worker processes (separate clients and state)."""
    url = own_redis.url
    first = RedisCache(url, socket_timeout=0.2, recovery_time=0.5, eviction_retry_interval=0.2)
    second = RedisCache(url, socket_timeout=0.2, recovery_time=0.5)
    yield first, second
    await first.close()
    await second.close()


async def test_an_eviction_made_while_redis_is_frozen_reaches_every_process(
    own_redis: servers.RedisProcesses, two_processes: tuple[RedisCache, RedisCache]
) -> None:
    first, second = two_processes
    database = Database()
    get, put_all, _ = service(database)
    use_cache(second)
    assert await get(1) == "v1"  # cached in Redis by the second process
    use_cache(first)
    own_redis.pause(own_redis.ports[0])
    try:
        await put_all(1, "v2")  # the eviction cannot reach Redis
        assert first.pending_evictions == 1
        assert await get(1) == "v2"  # the first process never serves the old entry
    finally:
        own_redis.resume(own_redis.ports[0])
    # no further call in the first process: its background task delivers the eviction
    await eventually(lambda: _no_pending(first), limit=5)
    assert _read_in_another_process(own_redis.url, "topo_row", "1") == "miss"
    use_cache(second)
    loads = database.loads
    assert await get(1) == "v2"  # the other process does not serve the stale entry
    assert database.loads == loads + 1


_READER = """
import asyncio, sys
from viveka_db.cache.redis_cache import RedisCache

async def main():
    cache = RedisCache(sys.argv[1])
    payload, _ = await cache.read(sys.argv[2], sys.argv[3])
    print("miss" if payload is None else "hit")
    await cache.close()

asyncio.run(main())
"""


def _read_in_another_process(url: str, prefix: str, key: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _READER, url, prefix, key],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


async def _no_pending(cache: RedisCache) -> bool:
    return cache.pending_evictions == 0


async def test_one_database_load_per_key_while_redis_is_frozen(
    own_redis: servers.RedisProcesses, two_processes: tuple[RedisCache, RedisCache]
) -> None:
    cache, _ = two_processes
    use_cache(cache)
    database = Database()
    database.delay = 0.05
    get, _, _ = service(database)

    async def caller(i: int) -> str:
        await asyncio.sleep(i / 1000)  # arrivals spread over 0.1 s, like real traffic
        return str(await get(1))

    own_redis.pause(own_redis.ports[0])
    try:
        results = await asyncio.gather(*(caller(i) for i in range(100)))
        assert set(results) == {"v1"}
        assert database.loads == 1  # every caller overlapped the first one's read and load
    finally:
        own_redis.resume(own_redis.ports[0])


async def test_a_burst_bigger_than_the_pool_queues_without_opening_the_breaker(
    own_redis: servers.RedisProcesses, restore_cache: None
) -> None:
    # a generous timeout: this is about queueing, and on a loaded machine (a soak run beside
    # other suites saw 20 of 1,000 reads pass 1 s) a short one also measures CPU starvation
    cache = RedisCache(own_redis.url, socket_timeout=5.0, max_connections=20)
    use_cache(cache)
    database = Database()
    database.rows = {i: f"r{i}" for i in range(500)}
    get, _, _ = service(database)
    try:
        await get(0)  # the prefix's generation exists (the first fills of a new prefix race)
        results = await asyncio.gather(*(get(i) for i in range(500)))
        assert results == [f"r{i}" for i in range(500)]
        results = await asyncio.gather(*(get(i) for i in range(500)))
        stats = cache.stats()
        assert cache.available and stats.errors == 0 and stats.short_circuits == 0
        assert stats.hits >= 500 and stats.writes == 500
    finally:
        await cache.close()


async def test_a_journalled_eviction_survives_a_restart(
    own_redis: servers.RedisProcesses, restore_cache: None, tmp_path: Path
) -> None:
    journal = tmp_path / "evictions.jsonl"
    database = Database()
    get, put_all, _ = service(database)
    other = RedisCache(own_redis.url, socket_timeout=0.2)
    use_cache(other)
    assert await get(1) == "v1"  # cached in Redis
    crashing = RedisCache(
        own_redis.url, socket_timeout=0.2, eviction_journal=journal, eviction_retry_interval=60
    )
    use_cache(crashing)
    own_redis.pause(own_redis.ports[0])
    try:
        await put_all(1, "v2")
        assert crashing.pending_evictions == 1
        await crashing.close()  # the process goes away before Redis is back
    finally:
        own_redis.resume(own_redis.ports[0])
    restarted = RedisCache(own_redis.url, eviction_journal=journal, eviction_retry_interval=0.05)
    try:
        assert restarted.pending_evictions == 1
        use_cache(restarted)
        assert await get(1) == "v2"  # never the old entry, and the delivery starts
        await eventually(lambda: _no_pending(restarted), limit=5)
        assert journal.read_text() == ""
        use_cache(other)
        assert await get(1) == "v2"
    finally:
        await restarted.close()
        await other.close()


@pytest.mark.parametrize(("lease_wait", "loads"), [(2.0, 1), (0.0, 2)])
async def test_a_cross_process_lease_shares_one_load(
    own_redis: servers.RedisProcesses, restore_cache: None, lease_wait: float, loads: int
) -> None:
    namespace = f"lease{time.time_ns()}"
    first = RedisCache(own_redis.url, namespace=namespace, lease_wait=lease_wait)
    second = RedisCache(own_redis.url, namespace=namespace, lease_wait=lease_wait)
    database = Database()
    database.delay = 0.2
    get, _, _ = service(database)
    try:
        use_cache(first)  # a call takes the cache installed when it starts
        in_first = asyncio.create_task(get(1))
        await asyncio.sleep(0.05)
        use_cache(second)  # another process, a moment later
        in_second = asyncio.create_task(get(1))
        assert [await in_first, await in_second] == ["v1", "v1"]
        assert database.loads == loads
    finally:
        await first.close()
        await second.close()
