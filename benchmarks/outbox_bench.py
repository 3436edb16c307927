"""Issue 22: outbox relay throughput (one and two relays) and delivery lag.

1. Throughput: ``EVENTS`` events over ``KEYS`` keys are published (100 per transaction),
   then one relay process, or two at once, drain the outbox with a no-op ``deliver``
   (batches of 100); events/s = events / time until none is pending.
2. Lag: while one relay runs, events are published at ``RATE`` per second for a few
   seconds; the lag of each is ``deliver``'s clock minus the event's ``created_at``
   (p50/p99). PostgreSQL wakes the relay with NOTIFY; MariaDB polls (``poll_interval``).

Each backend gets a database of its own (``viveka_bench_outbox``), dropped at the end.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version
from typing import Any

import sqlalchemy
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from backends import MARIADB_URL, PG_URL, server_up
from viveka_db import DatabaseSessionFactory, OutboxEvent, OutboxRelay, publish, transactional
from viveka_db.base.types import utc_now
from viveka_db.outbox.table import OutboxRecord

EVENTS = int(os.environ.get("VIVEKA_BENCH_OUTBOX_EVENTS", "5000"))
KEYS = int(os.environ.get("VIVEKA_BENCH_OUTBOX_KEYS", "10000"))
RATE = 200
LAG_SECONDS = 5
DATABASE = "viveka_bench_outbox"


def _admin_sql(url: str, statements: list[str]) -> None:
    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


def _private(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        admin = parsed.set(database="postgres").render_as_string(hide_password=False)
        _admin_sql(admin, [f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)',
                           f'CREATE DATABASE "{DATABASE}"'])  # fmt: skip
    else:
        _admin_sql(url, [f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}"])
    return parsed.set(database=DATABASE).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        admin = parsed.set(database="postgres").render_as_string(hide_password=False)
        _admin_sql(admin, [f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'])
    else:
        _admin_sql(url, [f"DROP DATABASE IF EXISTS {DATABASE}"])


def _config(url: str) -> dict[str, Any]:
    return {"database": {"url": url, "pool_size": 5}, "cache": {"enabled": False}}


async def _noop(event: OutboxEvent) -> None:
    return None


def _relay_process(url: str, ready: Any, go: Any) -> None:
    async def main() -> None:
        DatabaseSessionFactory(_config(url))
        relay = OutboxRelay(_noop, batch_size=100, delete_delivered_after=None, poll_interval=0.05)
        ready.set()
        await asyncio.to_thread(go.wait)
        await relay.run()

    asyncio.run(main())


async def _publish(count: int, per_transaction: int = 100) -> None:
    @transactional
    async def chunk(start: int) -> None:
        for i in range(start, min(start + per_transaction, count)):
            publish({"n": i}, event_type="Bench", key=i % KEYS)

    for start in range(0, count, per_transaction):
        await chunk(start)


async def _pending(factory: DatabaseSessionFactory) -> int:
    async with factory.engine.connect() as conn:
        query = select(func.count()).where(OutboxRecord.status == "pending")
        return int(await conn.scalar(query) or 0)


async def _throughput(url: str, relays: int) -> float:
    factory = DatabaseSessionFactory(_config(url))
    await factory.drop_all([OutboxRecord])
    await factory.create_all([OutboxRecord])
    await _publish(EVENTS)
    spawn = mp.get_context("spawn")
    go = spawn.Event()
    readies = [spawn.Event() for _ in range(relays)]
    processes = [spawn.Process(target=_relay_process, args=(url, r, go)) for r in readies]
    for process in processes:
        process.start()
    try:
        for ready in readies:
            await asyncio.to_thread(ready.wait)
        started = time.perf_counter()
        go.set()
        while await _pending(factory):  # noqa: ASYNC110 (polling the database)
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
            process.join()
        await DatabaseSessionFactory.close_all()
    return EVENTS / elapsed


async def _lag(url: str) -> list[float]:
    factory = DatabaseSessionFactory(_config(url))
    await factory.drop_all([OutboxRecord])
    await factory.create_all([OutboxRecord])
    lags: list[float] = []
    total = RATE * LAG_SECONDS
    all_delivered = asyncio.Event()

    async def deliver(event: OutboxEvent) -> None:
        lags.append((utc_now() - event.created_at).total_seconds())
        if len(lags) >= total:
            all_delivered.set()

    async with OutboxRelay(deliver, poll_interval=0.1, delete_delivered_after=None):
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        for i in range(total):
            await _publish(1)
            delay = started + (i + 1) / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await all_delivered.wait()
    await DatabaseSessionFactory.close_all()
    return lags


async def _server_version(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return str(await conn.scalar(text("SELECT version()"))).split(" on ")[0]
    finally:
        await engine.dispose()


def main() -> None:
    drivers = ", ".join(f"{name} {version(name)}" for name in ("asyncpg", "aiomysql"))
    print(f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, {drivers}; "
          f"{EVENTS} events over {KEYS} keys, batches of 100, no-op deliver")  # fmt: skip
    print()
    print("| backend | server | 1 relay (events/s) | 2 relays (events/s) | ratio "
          "| lag p50 | lag p99 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, base in (("PostgreSQL", PG_URL), ("MariaDB", MARIADB_URL)):
        if not server_up(base):
            print(f"| {name} | down: skipped | | | | | |")
            continue
        url = _private(base)
        try:
            server = asyncio.run(_server_version(url))
            one = asyncio.run(_throughput(url, 1))
            two = asyncio.run(_throughput(url, 2))
            lags = sorted(asyncio.run(_lag(url)))
            p50 = statistics.median(lags) * 1000
            p99 = lags[int(len(lags) * 0.99) - 1] * 1000
            print(f"| {name} | {server} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x "
                  f"| {p50:.1f} ms | {p99:.1f} ms |")  # fmt: skip
        finally:
            _drop(base)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
