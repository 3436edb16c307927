"""Cancelled and timed-out statements behave the same on every database.

A statement cut by ``@transactional(timeout=...)`` raises ``TransactionTimeoutError``, one cut
by a cancelled task raises ``CancelledError``; either way the connection goes back (or is
replaced), and a write transaction that was cut keeps no lock: the next writer of the same
row succeeds at once. On SQLite the statement runs in aiosqlite's thread, out of reach of
the cancellation, so the library interrupts it and rolls its transaction back.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select, text, update

from tests.core.helpers import slow_sql, wait_until_released
from tests.core.models import Item
from viveka_db import DatabaseSessionFactory, current_session, transactional
from viveka_db.errors import TransactionTimeoutError


@transactional
async def add_item(tag: str) -> int:
    item = Item(tag=tag)
    current_session().add(item)
    await current_session().flush()
    return int(item.id)


async def test_30_cut_statements_each_raise_the_timeout_error(
    db: DatabaseSessionFactory, backend: str
) -> None:
    sql = slow_sql(backend)

    @transactional(timeout=0.05)
    async def slow_read() -> None:
        await current_session().execute(text(sql))

    for _ in range(30):
        started = time.perf_counter()
        with pytest.raises(TransactionTimeoutError):
            await slow_read()
        assert time.perf_counter() - started < 1.0  # the statement was stopped, not awaited
    assert await wait_until_released(db.engine, limit=1.0) == 0  # MariaDB: after the KILLs


async def test_a_writer_after_a_timed_out_write_transaction_succeeds_within_a_second(
    db: DatabaseSessionFactory, backend: str
) -> None:
    item_id = await add_item("before")
    sql = slow_sql(backend)

    @transactional(timeout=0.2)
    async def write_then_stall() -> None:
        session = current_session()
        await session.execute(update(Item).where(Item.id == item_id).values(tag="cut"))
        await session.execute(text(sql))  # holds the row (and on SQLite the write lock)

    with pytest.raises(TransactionTimeoutError):
        await write_then_stall()

    @transactional(timeout=5)
    async def next_writer() -> None:
        await current_session().execute(update(Item).where(Item.id == item_id).values(tag="after"))

    started = time.perf_counter()
    await next_writer()
    assert time.perf_counter() - started < 1.0

    @transactional(read_only=True)
    async def tags() -> list[str]:
        return list((await current_session().scalars(select(Item.tag))).all())

    assert await tags() == ["after"]  # the cut transaction was rolled back


async def test_a_cancelled_task_raises_cancelled_error_and_keeps_no_lock(
    db: DatabaseSessionFactory, backend: str
) -> None:
    sql = slow_sql(backend)
    started = asyncio.Event()

    @transactional
    async def write_then_stall() -> None:
        current_session().add(Item(tag="cancelled"))
        await current_session().flush()
        started.set()
        await current_session().execute(text(sql))

    task = asyncio.create_task(write_then_stall())
    await started.wait()
    await asyncio.sleep(0.05)  # the slow statement is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(add_item("next"), timeout=1.0)

    @transactional(read_only=True)
    async def count() -> int:
        return int(await current_session().scalar(select(func.count()).select_from(Item)) or 0)

    assert await count() == 1
