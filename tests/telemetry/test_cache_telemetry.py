"""Cache telemetry: Redis CLIENT spans in the transaction's tree, hit/miss/error."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.engine import make_url

from tests.backends import REDIS_URL
from tests.cache.conftest import dispose_cache, make_cache, unique_namespace
from tests.telemetry.conftest import Telemetry
from viveka_db import DatabaseSessionFactory, RedisCache, cacheable, transactional
from viveka_db.cache import current
from viveka_db.cache.backend import CacheBackend
from viveka_db.cache.memory import MemoryCache

calls = 0


@cacheable("tel_square")
async def square(x: int) -> int:
    global calls
    calls += 1
    return x * x


@transactional
async def square_in_transaction(x: int) -> int:
    return await square(x)


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
async def redis_backend(
    request: pytest.FixtureRequest, restore_cache: None
) -> AsyncIterator[RedisCache]:
    backend = await make_cache(str(request.param), request)
    assert isinstance(backend, RedisCache)
    current.use_cache(backend)
    try:
        yield backend
    finally:
        await dispose_cache(backend)


def requests_by_result(telemetry: Telemetry) -> dict[str, int]:
    return {
        p.attributes["viveka_db.cache.result"]: p.value
        for p in telemetry.points("viveka_db.cache.requests")
    }


async def test_redis_spans_and_requests_by_result(
    redis_backend: RedisCache, telemetry: Telemetry, request: pytest.FixtureRequest
) -> None:
    assert await square(12) == 144
    assert await square(12) == 144
    assert [s.name for s in telemetry.spans()] == ["MGET", "EVALSHA", "MGET"]
    miss, write, hit = telemetry.spans()
    for span in (miss, write, hit):
        attributes = span.attributes or {}
        assert span.kind is SpanKind.CLIENT
        assert attributes["db.system.name"] == "redis"
        assert attributes["db.operation.name"] == span.name
        assert "144" not in str(attributes) and "tel_square" not in str(attributes)
        if request.node.callspec.id.startswith("redis"):
            expected = make_url(REDIS_URL.replace("redis://", "redis+x://", 1))
            assert attributes["server.address"] == expected.host
            assert attributes["server.port"] == (expected.port or 6379)
            assert attributes["db.namespace"] == (expected.database or "0")
    assert (miss.attributes or {})["viveka_db.cache.result"] == "miss"
    assert (hit.attributes or {})["viveka_db.cache.result"] == "hit"
    assert requests_by_result(telemetry) == {"miss": 1, "hit": 1}


async def test_cache_spans_nest_under_the_transaction(
    db: DatabaseSessionFactory, redis_backend: RedisCache, telemetry: Telemetry
) -> None:
    assert await square_in_transaction(3) == 9
    tx = telemetry.named("square_in_transaction")
    children = telemetry.children(tx)
    assert [s.name for s in children] == ["MGET", "EVALSHA"]  # the write runs after commit
    assert all(s.kind is SpanKind.CLIENT for s in children)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def unreachable_redis(restore_cache: None) -> AsyncIterator[CacheBackend]:
    backend = RedisCache(f"redis://127.0.0.1:{closed_port()}/0", namespace=unique_namespace())
    current.use_cache(backend)
    try:
        yield backend
    finally:
        await backend.close()


async def test_an_unreachable_redis_counts_errors(
    unreachable_redis: RedisCache, telemetry: Telemetry
) -> None:
    assert await square(5) == 25
    (span,) = telemetry.spans()  # no write: nothing may be written after a failed read
    assert span.name == "MGET"
    assert span.status.status_code is StatusCode.ERROR
    attributes = span.attributes or {}
    assert attributes["error.type"] and attributes["viveka_db.cache.result"] == "error"
    assert requests_by_result(telemetry) == {"error": 1}


async def test_in_process_cache_counts_requests_without_spans(
    restore_cache: None, telemetry: Telemetry
) -> None:
    current.use_cache(MemoryCache(namespace=unique_namespace()))
    await square(7)
    await square(7)
    await square(7)
    assert telemetry.spans() == []
    assert requests_by_result(telemetry) == {"miss": 1, "hit": 2}


async def test_coalesced_followers_are_counted_in_the_requests_metric(
    redis_backend: RedisCache, telemetry: Telemetry
) -> None:
    """The metric and ``stats()`` count the same calls: one request per call served."""
    keys = [f"k{n}" for n in range(10)]

    @cacheable("tel_burst")
    async def echo(key: str) -> str:
        return key

    for key in keys:
        await echo(key)
    warm = requests_by_result(telemetry)
    assert warm == {"miss": 10}
    results = await asyncio.gather(*(echo(keys[i % 10]) for i in range(100)))
    assert results == [keys[i % 10] for i in range(100)]
    counted = requests_by_result(telemetry)
    assert counted == {"miss": 10, "hit": 100}
    stats = redis_backend.stats()
    assert (stats.hits, stats.misses) == (counted["hit"], counted["miss"])
