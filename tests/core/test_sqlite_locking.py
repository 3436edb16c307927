"""SQLite's lazily taken write lock (``configure_sqlite``, ``viveka_db.dialects.sqlite_engine``).

Reads before a transaction's first write run in autocommit; ``BEGIN IMMEDIATE`` is sent just
before the first write, so read-then-write transactions queue for SQLite's single write lock
instead of failing, and a transaction that has only read blocks nobody. An explicit
``Isolation.SERIALIZABLE`` takes the lock at the start.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import func, select

from tests.core.helpers import add, committed_tags
from tests.core.models import Item
from viveka_db import (
    DatabaseSessionFactory,
    Isolation,
    Propagation,
    current_session,
    transactional,
)


@pytest.fixture(autouse=True)
def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("pins SQLite's write-lock semantics")


async def count_items() -> int:
    return int(await current_session().scalar(select(func.count()).select_from(Item)) or 0)


def _write_lock_free(path: str) -> bool:
    """Whether another process-level connection could take the write lock right now."""
    conn = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
    return True


async def write_lock_free(db: DatabaseSessionFactory) -> bool:
    path = db.engine.url.database
    assert path and path != ":memory:", "these tests need a file database"
    return await asyncio.to_thread(_write_lock_free, path)


async def test_concurrent_read_then_write_transactions_queue_for_the_lock(
    db: DatabaseSessionFactory,
) -> None:
    workers = 12  # within the default pool (5 + 10 overflow): all read before any writes
    have_read = 0
    all_read = asyncio.Event()

    @transactional
    async def read_then_write(i: int) -> int:
        nonlocal have_read
        seen = await count_items()
        have_read += 1
        if have_read == workers:
            all_read.set()
        await all_read.wait()  # every transaction has read; now they all write at once
        await add(f"w{i:02d}")
        return seen

    seen = await asyncio.wait_for(
        asyncio.gather(*(read_then_write(i) for i in range(workers))), timeout=60
    )
    assert seen == [0] * workers
    assert await committed_tags(db.engine) == [f"w{i:02d}" for i in range(workers)]


async def test_requires_new_writes_inside_a_transaction_that_has_only_read(
    db: DatabaseSessionFactory,
) -> None:
    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def record(tag: str) -> None:
        await add(tag)

    @transactional
    async def outer() -> list[str]:
        assert await count_items() == 0
        await asyncio.wait_for(record("inner"), timeout=10)
        committed_meanwhile = await committed_tags(db.engine)  # inner committed on its own
        await add("outer")
        return committed_meanwhile

    assert await outer() == ["inner"]
    assert await committed_tags(db.engine) == ["inner", "outer"]


async def test_requires_new_commit_survives_the_callers_rollback(
    db: DatabaseSessionFactory,
) -> None:
    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def record(tag: str) -> None:
        await add(tag)

    @transactional
    async def outer() -> None:
        await count_items()
        await record("audit")
        raise ValueError("caller fails")

    with pytest.raises(ValueError, match="caller fails"):
        await outer()
    assert await committed_tags(db.engine) == ["audit"]


async def test_a_reading_transaction_does_not_block_a_writer(db: DatabaseSessionFactory) -> None:
    reader_has_read = asyncio.Event()
    writer_done = asyncio.Event()

    @transactional
    async def reader() -> tuple[int, int]:
        before = await count_items()
        reader_has_read.set()
        await writer_done.wait()  # stays open, having only read
        return before, await count_items()

    @transactional
    async def writer() -> None:
        await add("written")

    reading = asyncio.create_task(reader())
    await reader_has_read.wait()
    assert await write_lock_free(db)  # the open reader holds no write lock
    await asyncio.wait_for(writer(), timeout=5)  # commits while the reader is open
    assert await committed_tags(db.engine) == ["written"]
    writer_done.set()
    # reads before the first write are READ COMMITTED: the reader sees the new row
    assert await asyncio.wait_for(reading, timeout=5) == (0, 1)


async def test_the_first_write_takes_the_lock_until_commit(db: DatabaseSessionFactory) -> None:
    written = asyncio.Event()
    release = asyncio.Event()

    @transactional
    async def writer() -> None:
        await count_items()
        await add("held")
        written.set()
        await release.wait()

    task = asyncio.create_task(writer())
    await written.wait()
    assert not await write_lock_free(db)
    release.set()
    await asyncio.wait_for(task, timeout=5)
    assert await write_lock_free(db)
    assert await committed_tags(db.engine) == ["held"]


async def test_serializable_takes_the_lock_at_the_start(db: DatabaseSessionFactory) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    @transactional(isolation=Isolation.SERIALIZABLE)
    async def serializable_reader() -> int:
        n = await count_items()
        started.set()
        await release.wait()
        return n

    task = asyncio.create_task(serializable_reader())
    await started.wait()
    assert not await write_lock_free(db)  # it has only read, yet holds the write lock
    release.set()
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert await write_lock_free(db)

    @transactional
    async def plain_reader() -> int:
        n = await count_items()
        assert await write_lock_free(db)  # the default isolation has not taken it
        return n

    assert await plain_reader() == 0
