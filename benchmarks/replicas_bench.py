"""Failure modes and read-your-writes cost on real topologies (issue 12), on loopback.

Starts the PostgreSQL primary + streaming replica and a Redis of its own (the helpers of
``tests/topology/servers.py``), and prints, per failure mode, what a caller observes and
for how long, and what read-your-writes costs on a healthy replica.

    .venv/bin/python -m benchmarks.replicas_bench
"""

from __future__ import annotations

import asyncio
import contextvars
import signal
import statistics
import time
from typing import Any

import httpx
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.topology import servers
from tests.topology.models import Note

from viveka_db import DatabaseSessionFactory, DbMiddleware, cache_evict, cacheable, transactional
from viveka_db.cache.current import use_cache
from viveka_db.cache.redis_cache import RedisCache
from viveka_db.context.db_context import current_session


@transactional(read_only=True)
async def on_replica() -> bool:
    return bool(await current_session().scalar(text("SELECT pg_is_in_recovery()")))


@transactional(read_only=True)
async def body(note_id: int) -> str | None:
    return await current_session().scalar(select(Note.body).where(Note.id == note_id))


@transactional
async def write(note_id: int, value: str) -> None:
    note = await current_session().get(Note, note_id)
    if note is None:
        current_session().add(Note(id=note_id, body=value))
    else:
        note.body = value


def fresh(coro: Any) -> Any:
    return asyncio.create_task(coro, context=contextvars.Context())


def app() -> Starlette:
    async def get(request: Request) -> JSONResponse:
        return JSONResponse({"body": await body(1)})

    async def post(request: Request) -> JSONResponse:
        await write(1, (await request.json())["body"])
        return JSONResponse({})

    application = Starlette(
        routes=[Route("/n", get, methods=["GET"]), Route("/n", post, methods=["POST"])]
    )
    application.add_middleware(DbMiddleware, read_only_methods=["GET"])
    return application


async def factory_on(pair: servers.PostgresPair, window: float) -> DatabaseSessionFactory:
    await DatabaseSessionFactory.close_all()
    factory = DatabaseSessionFactory(
        {
            "database": {
                "url": pair.primary_url,
                "read_urls": pair.replica_url,
                "read_your_writes_window": window,
                "read_your_writes_secret": "bench",
            }
        }
    )
    await fresh(factory.create_all([Note]))
    await fresh(write(1, "x"))
    return factory


async def ryw_cost(pair: servers.PostgresPair) -> None:
    timings: dict[float, list[float]] = {0.0: [], 10.0: []}
    for _ in range(5):
        for window in timings:
            await factory_on(pair, window)
            transport = httpx.ASGITransport(app=app())
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for i in range(200):
                    started = time.perf_counter()
                    await client.post("/n", json={"body": str(i)})
                    timings[window].append(time.perf_counter() - started)
    off, on = (statistics.median(timings[w]) * 1e6 for w in (0.0, 10.0))
    print(
        f"write request (POST) median: {off:.0f} us without the token, {on:.0f} us with it "
        f"(+{on - off:.0f} us: one pg_current_wal_lsn() round trip)"
    )
    factory = await factory_on(pair, 10.0)
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.post("/n", json={"body": "caught-up"})
        started = time.monotonic()
        while (await client.get("/n")).json()["body"] != "caught-up" or not await on_replica():
            if time.monotonic() - started > 10:
                raise RuntimeError(f"not back on the replica: {factory.replica_states()}")
            await asyncio.sleep(0.01)
        back = time.monotonic() - started
        reads = []
        for _ in range(300):
            t = time.perf_counter()
            await client.get("/n")
            reads.append(time.perf_counter() - t)
    print(
        f"a later GET of the writing client: back on the replica after {back * 1000:.0f} ms "
        f"(probe interval {factory.settings.database.replica_probe_interval:g} s); "
        f"GET median {statistics.median(reads) * 1e6:.0f} us"
    )


async def replica_outage(pair: servers.PostgresPair) -> None:
    factory = await factory_on(pair, 10.0)
    assert await fresh(on_replica())
    pair.stop_replica()
    latencies, errors = [], 0
    for _ in range(50):
        t = time.perf_counter()
        try:
            await fresh(body(1))
        except Exception:
            errors += 1
        latencies.append(time.perf_counter() - t)
    print(
        f"replica stopped: {errors} errors in 50 reads; first read {latencies[0] * 1000:.1f} ms,"
        f" then median {statistics.median(latencies[1:]) * 1000:.2f} ms (on the primary)"
    )
    pair.start_replica()
    started = time.monotonic()
    while not await fresh(on_replica()):  # noqa: ASYNC110 - polling a server
        await asyncio.sleep(0.01)
    print(
        f"replica restarted: reads back on it after {time.monotonic() - started:.2f} s "
        f"(state {factory.replica_states()[0].healthy})"
    )


async def redis_outage() -> None:
    procs = servers.redis_standalone()
    port = procs.ports[0]
    url = procs.url
    first, second = RedisCache(url), RedisCache(url)
    rows = {1: "v1"}
    loads = 0

    @cacheable("bench", ttl=600)
    async def get(row: int) -> str:
        nonlocal loads
        loads += 1
        return rows[row]

    @cache_evict("bench")
    async def put(row: int, value: str) -> None:
        rows[row] = value

    try:
        use_cache(second)
        await get(1)
        use_cache(first)
        procs.pause(port)
        times = []
        for i in range(20):
            t = time.perf_counter()
            if i == 0:
                await put(1, "v2")
            await get(1)
            times.append(time.perf_counter() - t)
        print(
            f"Redis frozen: eviction + read {times[0] * 1000:.0f} ms, later reads max "
            f"{max(times[1:]) * 1000:.1f} ms; pending evictions {first.pending_evictions}"
        )
        procs.resume(port)
        started = time.monotonic()
        while first.pending_evictions:  # noqa: ASYNC110 - timing the background delivery
            await asyncio.sleep(0.005)
        delivered = time.monotonic() - started
        use_cache(second)
        print(
            f"Redis thawed: eviction delivered after {delivered * 1000:.0f} ms with no call in "
            f"that process; other process reads {await get(1)!r}"
        )
    finally:
        await first.close()
        await second.close()
        procs.stop()


async def main() -> None:
    pair = servers.postgres_pair()
    try:
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        await ryw_cost(pair)
        await replica_outage(pair)
    finally:
        await DatabaseSessionFactory.close_all()
        pair.stop()
    await redis_outage()


if __name__ == "__main__":
    asyncio.run(main())
