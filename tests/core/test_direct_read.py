"""A read-only ``get_by_id`` without a session (``viveka_db.session.direct_read``).

It must be indistinguishable from the session's read: the same types and values, the same
detached state, the same instance for a second read of the key in one transaction; it must
not open a session at all (that is the point); it must not bypass an event a user added;
writes are still refused; cancelled reads leave no connection checked out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import enum

import pytest
from sqlalchemy import Boolean, Date, DateTime, Enum, Numeric, String, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from tests.core.helpers import checked_out, wait_until_released
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    ReadOnlyTransactionError,
    VivekaDbBase,
    current_session,
    entity,
    table,
    transactional,
)
from viveka_db.context.db_context import active_scope
from viveka_db.session import direct_read


class Mood(enum.Enum):
    calm = "calm"
    busy = "busy"


@entity
@table("core_direct_rows")
class Row(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column("note_text", String(40), default=None)
    price: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime)
    born: Mapped[dt.date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean)
    mood: Mapped[Mood] = mapped_column(Enum(Mood))


class RowRepo(DbRepo[Row]):
    pass


repo = RowRepo()


def sample(row_id: int) -> Row:
    return Row(
        id=row_id,
        name=f"row {row_id}",
        price=decimal.Decimal("12.50"),
        seen_at=dt.datetime(2024, 5, 6, 7, 8, 9),
        born=dt.date(1999, 12, 31),
        active=True,
        mood=Mood.busy,
    )


@transactional(read_only=True)
async def read_only_get(row_id: int) -> tuple[Row | None, bool]:
    """The entity, and whether the transaction had to build a session for it."""
    found = await repo.get_by_id(row_id)
    scope = active_scope()
    assert scope is not None
    return found, scope.has_session


@transactional
async def session_get(row_id: int) -> Row | None:
    return await repo.get_by_id(row_id)


@pytest.fixture
def direct_driver(db: DatabaseSessionFactory) -> None:
    """Skip where the direct read does not apply: it covers asyncpg, aiomysql and aiosqlite
    (psycopg, in its own CI run, reads through the session: nothing to see here)."""
    driver = db.engine.dialect.driver
    if driver not in direct_read._FETCH:  # pyright: ignore[reportPrivateUsage]
        pytest.skip(f"the direct read does not cover {driver}: it reads through the session")


def column_values(row: Row) -> dict[str, object]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(Row).column_attrs}


async def test_returns_what_the_session_returns_without_a_session(
    db: DatabaseSessionFactory,
    direct_driver: None,
) -> None:
    await repo.insert_all([sample(1), sample(2)])
    direct, had_session = await read_only_get(1)
    assert not had_session  # the read ran on the driver
    orm = await session_get(1)
    assert direct is not None and orm is not None
    assert type(direct) is Row
    assert column_values(direct) == column_values(orm)
    assert {k: type(v) for k, v in column_values(direct).items()} == {
        k: type(v) for k, v in column_values(orm).items()
    }
    direct_state, orm_state = inspect(direct), inspect(orm)
    assert direct_state.detached and orm_state.detached
    assert direct_state.key == orm_state.key
    assert not direct_state.expired_attributes and not direct_state.unloaded
    assert await read_only_get(3) == (None, False)
    assert await read_only_get("not a number") == (None, False)


async def test_a_second_read_of_the_key_is_the_same_instance(db: DatabaseSessionFactory) -> None:
    await repo.insert_all([sample(1)])

    @transactional(read_only=True)
    async def twice() -> bool:
        return await repo.get_by_id(1) is await repo.get_by_id(1)

    assert await twice()


async def test_writes_are_still_refused(db: DatabaseSessionFactory) -> None:
    await repo.insert_all([sample(1)])

    @transactional(read_only=True)
    async def read_then_write() -> None:
        found = await repo.get_by_id(1)
        assert found is not None
        found.name = "changed"
        await repo.update(found)

    with pytest.raises(ReadOnlyTransactionError):
        await read_then_write()
    orm = await session_get(1)
    assert orm is not None and orm.name == "row 1"


async def test_an_event_listener_of_the_engine_is_never_bypassed(
    db: DatabaseSessionFactory,
    direct_driver: None,
) -> None:
    await repo.insert_all([sample(1)])
    assert (await read_only_get(1))[1] is False
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append(str(args[2]))

    engine = db.primary_read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        found, had_session = await read_only_get(1)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert found is not None and had_session
    assert any("core_direct_rows" in sql for sql in seen)
    assert (await read_only_get(1))[1] is False  # removed: the direct read is back


async def test_a_failed_statement_is_read_again_through_the_session(
    db: DatabaseSessionFactory, direct_driver: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await repo.insert_all([sample(1)])
    plan = direct_read.plan_for(db.primary_read_engine, inspect(Row))
    assert plan is not None
    monkeypatch.setattr(plan, "sql", plan.sql.replace("core_direct_rows", "core_no_such"))
    found, had_session = await read_only_get(1)
    assert found is not None and found.name == "row 1" and had_session


async def test_a_thousand_cancelled_reads_leave_no_connection_checked_out(
    db: DatabaseSessionFactory,
    direct_driver: None,
) -> None:
    await repo.insert_all([sample(n) for n in range(1, 11)])
    await read_only_get(1)
    cancelled = 0
    for n in range(1000):
        task = asyncio.ensure_future(read_only_get(n % 10 + 1))
        for _ in range(n % 4):  # cut at checkout, in the statement, or after it
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
    assert cancelled > 100
    assert await wait_until_released(db.primary_read_engine) == 0
    found, had_session = await read_only_get(5)
    assert found is not None and found.id == 5 and not had_session


@transactional
async def write_transaction_read(row_id: int) -> tuple[Row | None, int, bool]:
    """``get_by_id`` as a write transaction's first read: the entity, how many write-engine
    connections the transaction holds after it, and whether the entity is in its session."""
    found = await repo.get_by_id(row_id)
    factory = DatabaseSessionFactory.get_instance()
    held = checked_out(factory.engine)
    in_session = found is not None and found in current_session()
    assert found is None or await repo.get_by_id(row_id) is found  # the identity map
    return found, held, in_session


async def test_a_write_transaction_reads_before_it_begins_where_that_is_the_same(
    db: DatabaseSessionFactory, direct_driver: None, backend: str
) -> None:
    await repo.insert_all([sample(1)])
    await session_get(1)  # the write engine has connected: the server's level is known
    found, held, in_session = await write_transaction_read(1)
    assert found is not None and in_session
    # MariaDB's REPEATABLE READ takes its snapshot at the first read: it must be inside
    assert held == (1 if backend == "mariadb" else 0)
    assert inspect(found).detached and column_values(found) == column_values(sample(1))
    assert await write_transaction_read(2) == (None, int(backend == "mariadb"), False)


async def test_an_entity_read_before_begin_is_written_by_the_transaction(
    db: DatabaseSessionFactory,
) -> None:
    await repo.insert_all([sample(1)])

    @transactional
    async def rename() -> None:
        found = await repo.get_by_id(1)
        assert found is not None
        found.name = "renamed"  # flushed at commit, as for an entity the session loaded

    await rename()
    orm = await session_get(1)
    assert orm is not None and orm.name == "renamed"


async def test_serializable_reads_inside_the_transaction(
    db: DatabaseSessionFactory, backend: str
) -> None:
    await repo.insert_all([sample(1)])
    await DatabaseSessionFactory.close_all()
    url = db.url.render_as_string(hide_password=False)
    DatabaseSessionFactory({"database": {"url": url, "isolation_level": "SERIALIZABLE"}})
    await session_get(1)
    found, held, in_session = await write_transaction_read(1)
    assert found is not None and in_session and held == 1


async def test_a_write_transaction_before_the_engine_ever_connected_reads_inside(
    db: DatabaseSessionFactory, direct_driver: None, backend: str
) -> None:
    await repo.insert_all([sample(1)])
    await DatabaseSessionFactory.close_all()
    DatabaseSessionFactory({"database": {"url": db.url.render_as_string(hide_password=False)}})
    found, held, in_session = await write_transaction_read(1)  # the server's level unknown
    assert found is not None and in_session
    assert held == (0 if backend == "sqlite" else 1)
    found, held, in_session = await write_transaction_read(1)  # known now
    assert found is not None and in_session and held == int(backend == "mariadb")


async def test_a_listener_of_the_write_engine_sees_the_write_transactions_reads(
    db: DatabaseSessionFactory, direct_driver: None, backend: str
) -> None:
    await repo.insert_all([sample(1)])
    await session_get(1)
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        found, held, in_session = await write_transaction_read(1)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert found is not None and in_session and held == 1
    assert any("core_direct_rows" in sql for sql in seen)
    assert (await write_transaction_read(1))[1] == int(backend == "mariadb")  # back
