"""@transactional options and forms: read_only, isolation, timeout, after-commit
hooks, bare/parametrised decorators, signatures, and ``self.db`` resolution."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any, assert_type

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import ArgumentError, DBAPIError

from tests.core.helpers import (
    add,
    checked_out,
    committed_tags,
    slow_sql,
    wait_until_released,
)
from tests.core.models import Item, ItemRepo
from viveka_db import (
    DatabaseSessionFactory,
    Isolation,
    NoSessionError,
    Propagation,
    ReadOnlyTransactionError,
    TransactionRequiredError,
    TransactionTimeoutError,
    after_commit,
    current_session,
    transactional,
)

repo = ItemRepo()


# -- read_only ------------------------------------------------------------------------------


async def test_read_only_reads_committed_data(db: DatabaseSessionFactory) -> None:
    await repo.insert_all([Item(tag="a"), Item(tag="b")])

    @transactional(read_only=True)
    async def read() -> list[str]:
        return sorted(str(i.tag) for i in await repo.get_all())

    assert await read() == ["a", "b"]


async def test_orm_write_in_read_only_raises_and_is_not_persisted(
    db: DatabaseSessionFactory,
) -> None:
    @transactional(read_only=True)
    async def write_via_flush() -> None:
        await add("ro")

    @transactional(read_only=True)
    async def write_via_repository() -> None:
        await repo.insert_all([Item(tag="ro-repo")])

    @transactional(read_only=True)
    async def write_via_core_insert() -> None:
        await current_session().execute(insert(Item).values(tag="ro-core", n=0))

    for work in (write_via_flush, write_via_repository, write_via_core_insert):
        with pytest.raises(ReadOnlyTransactionError):
            await work()
    assert await committed_tags(db.engine) == []


async def test_raw_sql_write_in_read_only_is_refused_by_the_database(
    db: DatabaseSessionFactory,
) -> None:
    @transactional(read_only=True)
    async def sneaky() -> None:
        await current_session().execute(text("INSERT INTO core_items (tag, n) VALUES ('raw', 0)"))

    with pytest.raises(DBAPIError):
        await sneaky()
    assert await committed_tags(db.engine) == []


async def test_read_only_with_isolation_still_refuses_writes(db: DatabaseSessionFactory) -> None:
    @transactional(read_only=True, isolation=Isolation.SERIALIZABLE)
    async def write() -> None:
        await add("ro-iso")

    with pytest.raises(ReadOnlyTransactionError):
        await write()
    assert await committed_tags(db.engine) == []


async def test_unflushed_changes_in_read_only_are_never_persisted(
    db: DatabaseSessionFactory,
) -> None:
    await repo.insert_all([Item(tag="orig")])

    @transactional(read_only=True)
    async def mutate() -> None:
        item = (await repo.get_all())[0]
        item.tag = "changed"  # never flushed: a read-only transaction does not commit

    await mutate()
    assert await committed_tags(db.engine) == ["orig"]


# -- isolation ------------------------------------------------------------------------------


def test_bad_isolation_is_rejected_at_decoration_time() -> None:
    with pytest.raises(ValueError, match=r"not a valid isolation level.*Isolation\.SERIALIZABLE"):
        transactional(isolation="SERIALIZABLE; DROP TABLE core_items")
    with pytest.raises(ValueError, match="valid isolation"):
        transactional(isolation="snapshot")
    # strings naming a real level are accepted in any spelling
    transactional(isolation="repeatable-read")
    transactional(isolation="read committed")


async def _isolation_seen(backend: str) -> str:
    session = current_session()
    if backend == "postgresql":
        return str((await session.execute(text("SHOW transaction_isolation"))).scalar_one())
    if backend == "mariadb":
        return str((await session.execute(text("SELECT @@session.tx_isolation"))).scalar_one())
    value = (await session.execute(text("PRAGMA read_uncommitted"))).scalar_one()
    return "read uncommitted" if value else "serializable"


async def test_isolation_level_applies_and_does_not_leak(
    db: DatabaseSessionFactory, backend: str
) -> None:
    level = Isolation.READ_UNCOMMITTED if backend == "sqlite" else Isolation.SERIALIZABLE
    expected = level.value.lower().replace(" ", "-" if backend == "mariadb" else " ")

    @transactional(isolation=level)
    async def isolated() -> str:
        await add("iso")
        return await _isolation_seen(backend)

    @transactional
    async def default() -> str:
        return await _isolation_seen(backend)

    before = await default()
    assert before.lower() != expected
    assert (await isolated()).lower() == expected
    assert await default() == before  # the pooled connection was reset
    assert await committed_tags(db.engine) == ["iso"]


async def test_repeatable_read(db: DatabaseSessionFactory, backend: str) -> None:
    @transactional(isolation="REPEATABLE READ")
    async def isolated() -> str:
        await add("never")
        return await _isolation_seen(backend)

    if backend == "sqlite":  # SQLite offers SERIALIZABLE and READ UNCOMMITTED only
        with pytest.raises(ArgumentError, match="Valid isolation levels for 'sqlite'"):
            await isolated()
        assert checked_out(db.engine) == 0
        assert await committed_tags(db.engine) == []
    else:
        assert (await isolated()).lower().replace("-", " ") == "repeatable read"


# -- timeout ------------------------------------------------------------------------------


async def test_timeout_cancels_and_rolls_back(db: DatabaseSessionFactory) -> None:
    reached_end = False

    @transactional(timeout=0.2)
    async def slow() -> None:
        nonlocal reached_end
        await add("slow")
        await asyncio.sleep(30)
        reached_end = True

    with pytest.raises(TransactionTimeoutError, match=r"timeout of 0\.2s"):
        await slow()
    assert isinstance(TransactionTimeoutError("x"), TimeoutError)
    assert not reached_end
    assert await wait_until_released(db.engine) == 0
    assert await committed_tags(db.engine) == []


async def test_timeout_of_a_slow_query_rolls_back_and_frees_the_connection(
    db: DatabaseSessionFactory, backend: str
) -> None:
    sleep_sql = slow_sql(backend)  # on SQLite the library interrupts it

    @transactional(timeout=0.3)
    async def slow() -> None:
        await add("slow-query")
        await current_session().execute(text(sleep_sql))

    with pytest.raises(TransactionTimeoutError):
        await slow()
    assert await committed_tags(db.engine) == []

    # The server stopped the statement and rolled back: its row lock is gone, so this DELETE
    # does not wait for the abandoned statement (30 s). (Without the KILL that viveka_db
    # sends, MariaDB only notices the dropped connection after several seconds.)
    @transactional
    async def delete_all() -> None:
        await current_session().execute(text("DELETE FROM core_items"))

    await asyncio.wait_for(delete_all(), timeout=2.5)
    assert await wait_until_released(db.engine) == 0
    # the pool still works afterwards
    await repo.insert_all([Item(tag="next")])
    assert await committed_tags(db.engine) == ["next"]


async def test_timeout_of_a_joined_call_rolls_back_the_outer(db: DatabaseSessionFactory) -> None:
    @transactional(timeout=0.1)
    async def inner() -> None:
        await asyncio.sleep(30)

    @transactional
    async def outer() -> None:
        await add("outer")
        await inner()

    with pytest.raises(TransactionTimeoutError):
        await outer()
    assert await committed_tags(db.engine) == []


async def test_fast_work_within_timeout_commits(db: DatabaseSessionFactory) -> None:
    @transactional(timeout=30)
    async def quick() -> None:
        await add("quick")

    await quick()
    assert await committed_tags(db.engine) == ["quick"]


async def test_outer_cancellation_is_not_reported_as_timeout(db: DatabaseSessionFactory) -> None:
    started = asyncio.Event()

    @transactional(timeout=30)
    async def waits() -> None:
        await add("cancelled")
        started.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(waits())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_until_released(db.engine) == 0
    assert await committed_tags(db.engine) == []


# -- after-commit hooks ------------------------------------------------------------------------


async def test_after_commit_runs_after_outermost_commit_only(db: DatabaseSessionFactory) -> None:
    events: list[str] = []

    async def async_hook() -> None:
        events.append(f"async hook sees {await committed_tags(db.engine)}")

    @transactional
    async def inner() -> None:
        await add("inner")
        after_commit(lambda: events.append("inner hook"))
        after_commit(async_hook)
        events.append("inner done")

    @transactional
    async def outer() -> None:
        after_commit(lambda: events.append("outer hook"))
        await inner()
        events.append("outer done")

    await outer()
    assert events == [
        "inner done",
        "outer done",
        "outer hook",
        "inner hook",
        "async hook sees ['inner']",
    ]


async def test_after_commit_discarded_on_rollback(db: DatabaseSessionFactory) -> None:
    events: list[str] = []

    @transactional
    async def failing() -> None:
        after_commit(lambda: events.append("hook"))
        raise RuntimeError

    with pytest.raises(RuntimeError):
        await failing()

    @transactional
    async def swallowed() -> None:
        with contextlib.suppress(RuntimeError):
            await failing()

    with pytest.raises(Exception, match="rollback-only"):
        await swallowed()
    assert events == []


async def test_after_commit_discarded_with_savepoint_rollback(db: DatabaseSessionFactory) -> None:
    events: list[str] = []

    @transactional(propagation=Propagation.NESTED)
    async def nested(fail: bool) -> None:
        after_commit(lambda: events.append(f"nested fail={fail}"))
        if fail:
            raise ValueError

    @transactional
    async def outer() -> None:
        after_commit(lambda: events.append("outer"))
        await nested(False)
        with pytest.raises(ValueError):
            await nested(True)

    await outer()
    assert events == ["outer", "nested fail=False"]


async def test_after_commit_of_requires_new_runs_at_its_own_commit(
    db: DatabaseSessionFactory,
) -> None:
    events: list[str] = []

    @transactional(propagation=Propagation.REQUIRES_NEW)
    async def inner() -> None:
        after_commit(lambda: events.append("inner committed"))

    @transactional
    async def outer() -> None:
        await inner()
        events.append("outer continues")
        raise RuntimeError

    with pytest.raises(RuntimeError):
        await outer()
    assert events == ["inner committed", "outer continues"]


async def test_failing_hook_does_not_undo_the_commit(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("hook broke")

    @transactional
    async def work() -> str:
        await add("kept")
        after_commit(broken)
        return "done"

    with caplog.at_level(logging.ERROR, logger="viveka_db"):
        assert await work() == "done"
    assert await committed_tags(db.engine) == ["kept"]
    assert "after-commit callback" in caplog.text


def test_after_commit_needs_a_transaction() -> None:
    with pytest.raises(TransactionRequiredError, match="active transaction"):
        after_commit(lambda: None)


# -- forms and signatures ------------------------------------------------------------------


class Service:
    @transactional
    async def bare(self, tag: str, *, n: int = 1) -> int:
        """Bare form on a method."""
        self.db.add(Item(tag=tag, n=n))
        await self.db.flush()
        return n

    @transactional(read_only=True)
    async def parametrised(self, tag: str) -> list[str]:
        return [str(i.tag) for i in await repo.find_all_by_field(Item.tag, tag)]

    @transactional()
    async def empty_parens(self) -> object:
        return self.db


@transactional
async def bare_function(tag: str) -> str:
    await add(tag)
    return tag


@transactional(propagation=Propagation.REQUIRED, timeout=10)
async def parametrised_function(tag: str, n: int = 0) -> tuple[str, int]:
    await add(tag)
    return tag, n


async def test_decorator_forms_on_methods_and_functions(db: DatabaseSessionFactory) -> None:
    service = Service()
    n = await service.bare("m1", n=3)
    assert_type(n, int)
    assert n == 3
    found = await service.parametrised("m1")
    assert_type(found, list[str])
    assert found == ["m1"]
    fn = await bare_function("f1")
    assert_type(fn, str)
    pair = await parametrised_function("f2", 5)
    assert_type(pair, tuple[str, int])
    assert pair == ("f2", 5)
    assert await service.empty_parens() is not None
    assert await committed_tags(db.engine) == ["f1", "f2", "m1"]
    assert "db" not in vars(service)


def test_signature_and_metadata_are_preserved() -> None:
    def plain(self, tag: str, *, n: int = 1) -> int: ...  # type: ignore[no-untyped-def]

    assert inspect.signature(Service.bare) == inspect.signature(plain)
    assert Service.bare.__name__ == "bare"
    assert Service.bare.__doc__ == "Bare form on a method."
    assert inspect.iscoroutinefunction(Service.bare)
    assert inspect.iscoroutinefunction(bare_function)
    assert (
        str(inspect.signature(parametrised_function))
        == "(tag: 'str', n: 'int' = 0) -> 'tuple[str, int]'"
    )


def test_only_async_functions_can_be_decorated() -> None:
    def sync(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="async def"):
        transactional(sync)  # type: ignore[arg-type]


# -- self.db ------------------------------------------------------------------------------------


async def test_self_db_is_resolved_per_task_and_never_stored(db: DatabaseSessionFactory) -> None:
    shared = ItemRepo()
    gate = asyncio.Barrier(2)

    class Svc:
        @transactional
        async def which(self) -> object:
            first = shared.db
            await gate.wait()  # both tasks are inside their transactions now
            assert shared.db is first
            return first

    svc = Svc()
    s1, s2 = await asyncio.gather(svc.which(), svc.which())
    assert s1 is not s2
    assert "db" not in vars(shared)
    assert "db" not in vars(svc)


async def test_self_db_outside_a_transaction_explains(db: DatabaseSessionFactory) -> None:
    with pytest.raises(NoSessionError, match="@transactional"):
        _ = repo.db


async def test_standalone_session_is_logged_once(
    db: DatabaseSessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    @transactional
    async def job() -> None:
        await add("job")

    with caplog.at_level(logging.DEBUG, logger="viveka_db.transaction"):
        for _ in range(3):
            await job()
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "standalone" in r.message]
    assert len(infos) == 1
    assert checked_out(db.engine) == 0


async def test_unflushed_changes_in_read_only_with_isolation_are_discarded_quietly(
    db: DatabaseSessionFactory,
) -> None:
    await repo.insert_all([Item(tag="orig")])
    hooks: list[str] = []

    @transactional(read_only=True, isolation=Isolation.SERIALIZABLE)
    async def mutate() -> str:
        item = (await repo.get_all())[0]
        item.tag = "changed"
        after_commit(lambda: hooks.append("ran"))
        return "read"

    assert await mutate() == "read"
    assert hooks == ["ran"]
    assert await committed_tags(db.engine) == ["orig"]


async def test_commit_failure_of_a_standalone_transaction(
    db: DatabaseSessionFactory, backend: str
) -> None:
    from sqlalchemy import event
    from sqlalchemy.exc import IntegrityError

    from tests.core.models import Child

    hooks: list[str] = []

    @transactional
    async def orphan() -> None:
        await add("with-orphan")
        current_session().add(Child(parent_id=777))
        await current_session().flush()
        after_commit(lambda: hooks.append("ran"))

    def failing_commit(conn: object) -> None:
        raise IntegrityError("COMMIT", {}, Exception("refused"))

    if backend == "mariadb":  # no deferred constraints: make the COMMIT itself fail
        event.listen(db.engine.sync_engine, "commit", failing_commit)
    try:
        with pytest.raises(IntegrityError):
            await orphan()
    finally:
        if backend == "mariadb":
            event.remove(db.engine.sync_engine, "commit", failing_commit)
    assert hooks == []
    assert await wait_until_released(db.engine) == 0
    assert await committed_tags(db.engine) == []


async def test_read_only_work_is_routed_to_the_configured_replica(
    db: DatabaseSessionFactory, backend_url: str, tmp_path: Any
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    replica_url = f"sqlite+aiosqlite:///{tmp_path / 'replica.db'}"
    seed = create_async_engine(replica_url)
    async with seed.begin() as conn:
        await conn.run_sync(lambda sync: Item.__table__.create(sync))  # type: ignore[attr-defined]
        await conn.execute(insert(Item).values(tag="on the replica", n=0))
    await seed.dispose()

    await DatabaseSessionFactory.close_all()  # the fixture's clean-up finds the new instance
    factory = DatabaseSessionFactory({"database": {"url": backend_url, "read_url": replica_url}})

    @transactional(read_only=True)
    async def read() -> list[str]:
        return [str(i.tag) for i in await repo.get_all()]

    @transactional
    async def read_write() -> list[str]:
        return [str(i.tag) for i in await repo.get_all()]

    # written by another task: this task's own writes would send its reads to the primary
    await asyncio.create_task(repo.insert_all([Item(tag="on the primary")]))
    assert await read() == ["on the replica"]
    assert await read_write() == ["on the primary"]
    assert "replica.db" in str(factory.read_engine.url)
