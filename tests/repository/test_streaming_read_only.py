"""``stream`` inside read-only work, and streams that fail, on every database.

Read-only work runs in autocommit on the read engine, where PostgreSQL has no server-side
cursors: the stream opens a read-only transaction block for the cursor's lifetime. A
stream that fails, is abandoned or is cancelled never leaves a connection checked out or a
transaction open (a later DDL on the table would wait for its locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc

import pytest
from sqlalchemy import String, literal_column, select, text
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    IntPKMixin,
    VivekaDbBase,
    entity,
    table,
    transactional,
)


@entity
@table("repo_stream_rows")
class StreamRow(IntPKMixin, VivekaDbBase):
    name: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(100), default="")


rows = DbRepo(StreamRow)
ROWS = 20_000


@transactional(read_only=True)
async def names(query: object = None, chunk_size: int = 500) -> list[str]:
    stream = rows.stream(None if query is None else rows.where(query), chunk_size=chunk_size)
    return [row.name async for row in stream]


def checked_out(factory: DatabaseSessionFactory) -> int:
    engines = {id(factory.engine): factory.engine, id(factory.read_engine): factory.read_engine}
    return sum(int(engine.pool.checkedout()) for engine in engines.values())  # type: ignore[attr-defined]


async def ddl_completes_quickly(factory: DatabaseSessionFactory) -> None:
    """ALTER TABLE needs every lock on the table: no stream may still hold one."""
    for sql in (
        "ALTER TABLE repo_stream_rows ADD COLUMN extra INTEGER",
        "ALTER TABLE repo_stream_rows DROP COLUMN extra",
    ):
        started = time.perf_counter()

        async def alter(sql: str = sql) -> None:
            async with factory.engine.begin() as conn:
                await conn.execute(text(sql))

        await asyncio.wait_for(alter(), timeout=5)
        assert time.perf_counter() - started < 1.0, sql


async def seed(count: int) -> None:
    await rows.insert_all([{"name": f"n{i:05d}", "note": "x" * 60} for i in range(count)])


async def test_stream_and_stream_of_a_query_inside_read_only_work(
    db: DatabaseSessionFactory,
) -> None:
    await seed(50)
    assert await names(chunk_size=7) == [f"n{i:05d}" for i in range(50)]
    assert await names(StreamRow.name.like("n0001%"), chunk_size=3) == [
        f"n{i:05d}" for i in range(10, 20)
    ]
    assert checked_out(db) == 0


async def test_a_read_only_stream_keeps_memory_bounded(db: DatabaseSessionFactory) -> None:
    await seed(ROWS)

    @transactional(read_only=True)
    async def walk() -> tuple[int, int]:
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            count = 0
            async for _row in rows.stream(chunk_size=500):
                count += 1
            return count, tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()

    count, peak = await walk()
    assert count == ROWS
    # 20,000 entities held at once take far more; the stream holds one chunk of 500
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("read_only", [True, False], ids=["read_only", "no_transaction"])
async def test_a_stream_that_fails_while_opening_leaves_nothing_behind(
    db: DatabaseSessionFactory, read_only: bool
) -> None:
    await seed(10)
    broken = select(StreamRow).where(literal_column("no_such_column") == 1)

    async def consume() -> None:
        async for _row in rows.stream(broken):
            pass

    work = transactional(read_only=True)(consume) if read_only else consume
    for _ in range(3):
        with pytest.raises(Exception, match="no_such_column"):
            await work()
    assert checked_out(db) == 0
    await ddl_completes_quickly(db)


async def test_a_read_only_stream_abandoned_midway_leaves_nothing_behind(
    db: DatabaseSessionFactory,
) -> None:
    await seed(100)

    @transactional(read_only=True)
    async def fail_midway() -> None:
        async for row in rows.stream(chunk_size=10):
            if row.name == "n00042":
                raise LookupError("the consumer failed")

    with pytest.raises(LookupError):
        await fail_midway()

    @transactional(read_only=True)
    async def stop_early() -> str:
        async with contextlib.aclosing(rows.stream(chunk_size=10)) as stream:
            async for row in stream:
                return row.name
        return ""

    assert await stop_early() == "n00000"

    reading = asyncio.Event()

    @transactional(read_only=True)
    async def slow_consumer() -> None:
        async for _row in rows.stream(chunk_size=10):
            reading.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_consumer())
    await reading.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(db) == 0
    await ddl_completes_quickly(db)
    assert len(await names()) == 100  # the pooled connections still work
