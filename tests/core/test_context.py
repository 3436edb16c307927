"""Sessions and the task-local context: isolation between tasks, child tasks,
``run_concurrently``, background calls, lazy connections."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from tests.core.helpers import checked_out, committed_tags
from tests.core.models import Item, ItemRepo
from viveka_db import (
    DatabaseSessionFactory,
    NoSessionError,
    Propagation,
    bind_session,
    current_session,
    get_current_session,
    in_transaction,
    run_concurrently,
    transactional,
)

repo = ItemRepo()


async def add(tag: str) -> AsyncSession:
    session = current_session()
    session.add(Item(tag=tag))
    await session.flush()
    return session


async def test_concurrent_tasks_never_share_a_session(db: DatabaseSessionFactory) -> None:
    barrier = asyncio.Barrier(5)

    @transactional
    async def work(i: int) -> AsyncSession:
        first = current_session()
        await barrier.wait()
        await add(f"t{i}")
        assert current_session() is first
        return first

    sessions = await asyncio.gather(*(work(i) for i in range(5)))
    assert len({id(s) for s in sessions}) == 5
    assert await committed_tags(db.engine) == [f"t{i}" for i in range(5)]


async def test_child_task_does_not_use_the_parents_session(db: DatabaseSessionFactory) -> None:
    @transactional
    async def child_plain() -> None:
        pass

    async def child_asks() -> str:
        with pytest.raises(NoSessionError) as info:
            current_session()
        assert get_current_session() is None
        assert not in_transaction()
        return str(info.value)

    @transactional
    async def child_transactional() -> AsyncSession:
        return await add("child")

    @transactional
    async def parent() -> tuple[str, AsyncSession, AsyncSession]:
        mine = current_session()
        message = await asyncio.create_task(child_asks())
        childs = await asyncio.create_task(child_transactional())
        await add("parent")
        raise_after = (message, mine, childs)
        raise RuntimeError(raise_after)

    with pytest.raises(RuntimeError) as info:
        await parent()
    message, mine, childs = info.value.args[0]
    assert "belongs to another task" in message
    assert "run_concurrently" in message
    assert childs is not mine
    # the child committed on its own; the parent's rollback did not touch it
    assert await committed_tags(db.engine) == ["child"]


async def test_no_session_message_outside_any_transaction(db: DatabaseSessionFactory) -> None:
    with pytest.raises(NoSessionError, match=r"no database session is active.*@transactional"):
        current_session()
    with pytest.raises(NoSessionError, match="'reports'"):
        current_session("reports")


async def test_run_concurrently_gives_each_its_own_transaction(
    db: DatabaseSessionFactory,
) -> None:
    async def ok(tag: str) -> AsyncSession:
        return await add(tag)

    async def fails(tag: str) -> AsyncSession:
        await add(tag)
        raise ValueError(tag)

    @transactional
    async def caller() -> list[object]:
        mine = current_session()
        results = await run_concurrently(
            ok("a"), fails("b"), ok("c"), fails("d"), return_exceptions=True
        )
        assert current_session() is mine
        return results

    results = await caller()
    assert isinstance(results[1], ValueError) and isinstance(results[3], ValueError)
    assert isinstance(results[0], AsyncSession) and isinstance(results[2], AsyncSession)
    assert results[0] is not results[2]
    assert await committed_tags(db.engine) == ["a", "c"]


async def test_run_concurrently_raises_the_first_failure_after_all_finished(
    db: DatabaseSessionFactory,
) -> None:
    async def ok(tag: str) -> str:
        await asyncio.sleep(0.01)
        await add(tag)
        return tag

    async def fails() -> str:
        await add("failed")
        raise KeyError("first failure")

    with pytest.raises(KeyError, match="first failure"):
        await run_concurrently(fails(), ok("x"), ok("y"))
    assert await committed_tags(db.engine) == ["x", "y"]
    assert await run_concurrently(ok("z")) == ["z"]


async def test_fifty_concurrent_background_calls_each_in_their_own_session(
    db: DatabaseSessionFactory,
) -> None:
    class Worker:
        @transactional
        async def handle(self, i: int) -> AsyncSession:
            session = self.db
            await repo.insert_all([Item(tag=f"job{i:02d}", n=i)])
            await asyncio.sleep(0)
            mine = await repo.find_all_by_field("tag", f"job{i:02d}")
            assert [m.n for m in mine] == [i]
            assert self.db is session
            return session

    worker = Worker()
    sessions = await asyncio.gather(*(worker.handle(i) for i in range(50)))
    assert len({id(s) for s in sessions}) == 50
    assert await committed_tags(db.engine) == [f"job{i:02d}" for i in range(50)]
    assert checked_out(db.engine) == 0


async def test_connections_are_acquired_lazily(db: DatabaseSessionFactory) -> None:
    checkouts = 0

    def on_checkout(*args: object) -> None:
        nonlocal checkouts
        checkouts += 1

    event.listen(db.engine.sync_engine, "checkout", on_checkout)
    try:

        @transactional
        async def untouched() -> None:
            assert in_transaction()
            _ = current_session()  # a session object, but no connection yet
            assert checked_out(db.engine) == 0

        await untouched()
        assert checkouts == 0

        @transactional
        async def touched() -> None:
            await repo.count()
            assert checked_out(db.engine) == 1

        await touched()
        assert checkouts == 1
        assert checked_out(db.engine) == 0
    finally:
        event.remove(db.engine.sync_engine, "checkout", on_checkout)


async def test_bind_session_is_joined_and_left_to_its_owner(db: DatabaseSessionFactory) -> None:
    async with db.session_factory() as session:
        with bind_session(session):
            await repo.insert_all([Item(tag="bound")])  # joins, does not commit
            assert current_session() is session
        with pytest.raises(NoSessionError):
            current_session()
        # (the read engine: on SQLite a write-engine transaction would wait for the writer)
        assert await committed_tags(db.read_engine) == []
        await session.commit()
    assert await committed_tags(db.engine) == ["bound"]


async def test_a_child_task_that_cannot_join_is_warned_about(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    class Jobs:
        @transactional
        async def child(self) -> None:
            await add("child")

        @transactional(propagation=Propagation.REQUIRES_NEW)
        async def independent(self) -> None:
            await add("independent")

    jobs = Jobs()

    @transactional
    async def parent() -> None:
        await asyncio.gather(jobs.child(), jobs.child(), jobs.independent())

    with caplog.at_level(logging.INFO, logger="viveka_db"):
        await parent()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per function; REQUIRES_NEW asked for its own
    assert "Jobs.child" in warnings[0] and "run_concurrently" in warnings[0]
    assert await committed_tags(db.engine) == ["child", "child", "independent"]
