"""Serialization failures and deadlocks arrive as ``RetryableTransactionError``s.

Each is provoked for real: two SERIALIZABLE transactions that read what the other writes
(PostgreSQL 40001), two transactions locking two rows in opposite order (PostgreSQL 40P01,
MariaDB 1213 through aiomysql and asyncmy), and a write while another connection holds
SQLite's write lock ("database is locked"). Also: asyncmy's errors map like aiomysql's.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.core.error_models import Note, NoteRepo
from viveka_db import (
    DatabaseSessionFactory,
    DeadlockError,
    DuplicateKeyError,
    Isolation,
    NotNullViolationError,
    RetryableTransactionError,
    SerializationFailureError,
    current_session,
    transactional,
)

notes = NoteRepo()


def only(backend: str, *wanted: str) -> None:
    if backend not in wanted:
        pytest.skip(f"provokes a {'/'.join(wanted)} failure")


def single_failure(results: list[object]) -> BaseException:
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1, results
    return failures[0]


async def test_postgresql_serialization_failure(db: DatabaseSessionFactory, backend: str) -> None:
    only(backend, "postgresql")
    both_read = asyncio.Barrier(2)

    @transactional(isolation=Isolation.SERIALIZABLE)
    async def add_if_counted(title: str) -> None:
        session = current_session()
        await session.scalar(select(func.count()).select_from(Note))
        await both_read.wait()  # each has read what the other is about to write
        session.add(Note(title=title))
        await session.flush()

    results = await asyncio.gather(add_if_counted("a"), add_if_counted("b"), return_exceptions=True)
    error = single_failure(results)
    assert isinstance(error, SerializationFailureError), repr(error)
    assert isinstance(error, RetryableTransactionError)
    assert isinstance(error, DBAPIError)  # the class asyncpg's error arrived as
    assert isinstance(error, OperationalError)
    assert "40001" in str(error)
    assert error.__cause__ is error.orig


async def deadlock(ids: tuple[int, int]) -> BaseException:
    """Two transactions updating the same two rows in opposite order; one is the victim."""
    both_locked = asyncio.Barrier(2)

    @transactional
    async def update_in_order(first: int, second: int) -> None:
        session = current_session()
        statement = text("UPDATE core_err_docs SET title = :title WHERE id = :id")
        await session.execute(statement, {"title": f"by {first}", "id": first})
        await both_locked.wait()
        await session.execute(statement, {"title": f"by {first}", "id": second})

    a, b = ids
    results = await asyncio.wait_for(
        asyncio.gather(update_in_order(a, b), update_in_order(b, a), return_exceptions=True),
        timeout=30,
    )
    return single_failure(results)


async def two_notes() -> tuple[int, int]:
    first, second = await notes.insert_all([Note(title="one"), Note(title="two")])
    return first.id, second.id


async def test_deadlock_is_mapped(db: DatabaseSessionFactory, backend: str) -> None:
    only(backend, "postgresql", "mariadb")
    error = await deadlock(await two_notes())
    assert isinstance(error, DeadlockError), repr(error)
    assert isinstance(error, RetryableTransactionError)
    assert isinstance(error, OperationalError)  # `except OperationalError` still catches it
    assert ("40P01" if backend == "postgresql" else "1213") in str(error)


async def test_mariadb_snapshot_isolation_conflict(
    db: DatabaseSessionFactory, backend: str
) -> None:
    only(backend, "mariadb")
    (note,) = await notes.insert_all([Note(title="first")])
    read = asyncio.Event()
    written = asyncio.Event()

    @transactional(isolation=Isolation.REPEATABLE_READ)
    async def stale_writer() -> None:
        session = current_session()
        await session.execute(text("SET SESSION innodb_snapshot_isolation = ON"))
        await session.execute(
            text("SELECT title FROM core_err_docs WHERE id = :id"), {"id": note.id}
        )
        read.set()
        await written.wait()  # another transaction changes the row and commits
        await session.execute(
            text("UPDATE core_err_docs SET title = 'mine' WHERE id = :id"), {"id": note.id}
        )

    @transactional
    async def other_writer() -> None:
        await read.wait()
        await current_session().execute(
            text("UPDATE core_err_docs SET title = 'theirs' WHERE id = :id"), {"id": note.id}
        )

    async def then_signal() -> None:
        await other_writer()
        written.set()

    results = await asyncio.gather(stale_writer(), then_signal(), return_exceptions=True)
    error = single_failure(results)
    assert isinstance(error, SerializationFailureError), repr(error)
    assert "1020" in str(error)


@pytest.fixture
async def asyncmy_factory(
    db: DatabaseSessionFactory, backend: str, backend_url: str
) -> AsyncIterator[DatabaseSessionFactory]:
    only(backend, "mariadb")
    pytest.importorskip("asyncmy")
    await DatabaseSessionFactory.close_all()
    url = make_url(backend_url).set(drivername="mysql+asyncmy")
    yield DatabaseSessionFactory({"database": {"url": url.render_as_string(hide_password=False)}})
    await DatabaseSessionFactory.close_all()
    DatabaseSessionFactory({"database": {"url": backend_url}})  # for the db fixture's cleanup


async def test_deadlock_is_mapped_on_asyncmy(asyncmy_factory: DatabaseSessionFactory) -> None:
    error = await deadlock(await two_notes())
    assert isinstance(error, DeadlockError), repr(error)
    assert isinstance(error, OperationalError)
    assert type(error.orig).__module__.startswith("asyncmy")


async def test_sqlite_database_is_locked(db: DatabaseSessionFactory, backend: str) -> None:
    only(backend, "sqlite")
    path = db.engine.url.database
    assert path and path != ":memory:"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:

        @transactional
        async def write() -> None:
            session = current_session()
            raw = await (await session.connection()).get_raw_connection()
            await raw.driver_connection.execute("PRAGMA busy_timeout = 50")  # fail fast
            session.add(Note(title="blocked"))
            await session.flush()

        with pytest.raises(SerializationFailureError) as caught:
            await write()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    error = caught.value
    assert isinstance(error, OperationalError)
    assert isinstance(error.orig, sqlite3.OperationalError)
    assert "locked" in str(error.orig)


async def test_constraint_violations_are_mapped_on_asyncmy(
    asyncmy_factory: DatabaseSessionFactory,
) -> None:
    """The same error numbers through asyncmy's exceptions (the suite's driver is aiomysql)."""
    from tests.core.error_models import Member, MemberRepo

    members = MemberRepo()
    await members.insert_all([Member(id=1, email="taken@example.com", name="first")])
    with pytest.raises(DuplicateKeyError) as duplicate:
        await members.insert_all([Member(id=2, email="taken@example.com", name="second")])
    assert duplicate.value.columns == ("email",)
    assert type(duplicate.value.orig).__module__.startswith("asyncmy")
    assert "taken@example.com" not in str(duplicate.value)
    with pytest.raises(NotNullViolationError) as missing:
        await members.insert_all([Member(id=3, email="x@example.com", name=None)])
    assert missing.value.columns == ("name",)
