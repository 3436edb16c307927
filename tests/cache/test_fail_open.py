"""Redis down, slow or refusing connections: calls stay correct, cost a bounded time each,
and caching resumes by itself. Uses Redis servers of its own on spare loopback ports."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from viveka_db import cache_evict, cacheable, use_cache
from viveka_db.cache.breaker import CircuitBreaker
from viveka_db.cache.redis_cache import RedisCache

BOUND = 1.0
"""Generous per-call bound for a 0.25 s socket timeout."""

pytestmark = pytest.mark.usefixtures("installed")


def spare_port() -> int:
    for _ in range(100):
        port = 6390 + random.randrange(2000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no spare loopback port")


class OwnRedis:
    """A throwaway ``redis-server`` on 127.0.0.1 that the test may stop, pause and restart."""

    def __init__(self) -> None:
        self.port = spare_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Database:
    """Stands in for the database: the source of truth and a count of reads."""

    def __init__(self) -> None:
        self.rows = {1: "v1"}
        self.reads = 0

    async def read(self, row: int) -> str:
        self.reads += 1
        return self.rows[row]


def decorated(database: Database) -> tuple[Any, Any]:
    @cacheable("row")
    async def get(row: int) -> str:
        return await database.read(row)

    @cache_evict("row")
    async def put(row: int, value: str) -> None:
        database.rows[row] = value

    return get, put


async def timed(call: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await call
    return result, time.perf_counter() - start


async def wait_for_caching(cache: RedisCache, get: Any, database: Database) -> None:
    """Call until a read is served from the cache again (bounded)."""
    async with asyncio.timeout(15):
        while True:
            await get(1)
            reads = database.reads
            await get(1)
            if database.reads == reads:
                return
            await asyncio.sleep(0.05)


@pytest.fixture(params=[False, True], ids=["plain", "near"])
async def client_cache(
    own_redis: OwnRedis, request: pytest.FixtureRequest
) -> AsyncIterator[RedisCache]:
    """A Redis backend on a server of its own, with and without the near-cache."""
    cache = RedisCache(
        own_redis.url,
        socket_timeout=0.25,
        failure_threshold=2,
        recovery_time=0.5,
        near=bool(request.param),
    )
    if cache.listener is not None:
        assert await cache.listener.wait_subscribed()
    use_cache(cache)
    yield cache
    await cache.close()


async def test_a_closed_port_costs_a_bounded_time_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{spare_port()}/0", socket_timeout=0.25, recovery_time=60)
    use_cache(cache)
    database = Database()
    get, put = decorated(database)
    with caplog.at_level(logging.WARNING, "viveka_db.cache"):
        for i in range(10):
            value, elapsed = await timed(get(1))
            assert value == database.rows[1] and elapsed < BOUND
            await put(1, f"v{i + 2}")
    assert database.reads == 10
    stats = cache.stats()
    # the failed eviction keeps the prefix off Redis in this process: no call waits on it
    assert 2 <= stats.errors <= 3 and stats.hits == 0
    assert cache.pending_evictions == 1
    opened = [
        r for r in caplog.records if "failed" in r.getMessage() and "skipping" in r.getMessage()
    ]
    pending = [r for r in caplog.records if "eviction of row" in r.getMessage()]
    assert len(opened) <= 1 and len(pending) == 1
    await cache.close()


async def test_paused_redis_keeps_calls_correct_and_failed_evictions_are_replayed(
    own_redis: OwnRedis, client_cache: RedisCache
) -> None:
    database = Database()
    get, put = decorated(database)
    assert await get(1) == "v1"
    assert await get(1) == "v1" and database.reads == 1  # cached
    own_redis.signal(signal.SIGSTOP)  # Redis hangs: every command times out
    try:
        await put(1, "v2")  # the eviction fails and is remembered
        for _ in range(6):
            value, elapsed = await timed(get(1))
            assert value == "v2" and elapsed < BOUND
        assert client_cache.pending_evictions == 1
    finally:
        own_redis.signal(signal.SIGCONT)
    await wait_for_caching(client_cache, get, database)
    assert await get(1) == "v2"  # the old "v1" entry was never served again
    assert client_cache.available


async def test_stopped_redis_keeps_calls_correct_and_caching_resumes_after_restart(
    own_redis: OwnRedis, client_cache: RedisCache
) -> None:
    database = Database()
    get, _ = decorated(database)
    await get(1)
    own_redis.stop()
    near = client_cache.near
    if near is not None:  # the loss is noticed by the listener, at its next turn
        async with asyncio.timeout(2):
            while near.trusted:  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0.001)
        assert len(near) == 0
    for i in range(6):
        database.rows[1] = f"down{i}"
        value, elapsed = await timed(get(1))
        assert value == f"down{i}" and elapsed < BOUND
    stats = client_cache.stats()
    assert stats.errors >= 2 and stats.short_circuits >= 1
    own_redis.start()
    await wait_for_caching(client_cache, get, database)
    assert await get(1) == database.rows[1]


def test_circuit_breaker_opens_probes_once_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=5, clock=lambda: now[0])
    assert breaker.allow()
    assert not breaker.record_failure()
    assert breaker.record_failure()  # opened
    assert not breaker.allow()
    now[0] = 5.0
    assert breaker.allow()  # one probe
    assert not breaker.allow()
    assert not breaker.record_failure()  # the probe failed: open again
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()
    assert breaker.record_success()  # closed
    assert breaker.allow() and breaker.allow()


def test_a_probe_that_never_reports_back_does_not_keep_the_breaker_open() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=5, clock=lambda: now[0])
    breaker.record_failure()
    now[0] = 5.0
    assert breaker.allow()  # the probe's caller is cancelled: no success, no failure
    now[0] = 9.0
    assert not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()
    assert breaker.record_success()


def test_circuit_breaker_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(recovery_time=0)
