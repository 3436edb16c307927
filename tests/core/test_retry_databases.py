"""``@transactional(retry=N)`` against real conflicts: a PostgreSQL SERIALIZABLE
write skew (SQLSTATE 40001) and a MariaDB deadlock (error 1213), both resolved by retrying."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, update

from tests.core.helpers import committed_tags
from tests.core.models import Item
from viveka_db import (
    DatabaseSessionFactory,
    DeadlockError,
    Isolation,
    SerializationFailureError,
    after_commit,
    current_session,
    transactional,
)
from viveka_db.transaction import retry as retry_module


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_module, "BACKOFF_MULTIPLIER", 0.001)


@transactional
async def seed_two_items() -> None:
    current_session().add_all([Item(id=1, tag="one"), Item(id=2, tag="two")])


async def bump(first: int, second: int, both_locked: asyncio.Barrier | None) -> None:
    """Lock row ``first``, wait for the other transaction to lock its row, then ``second``."""
    session = current_session()
    await session.execute(update(Item).where(Item.id == first).values(n=Item.n + 1))
    if both_locked is not None:
        await asyncio.wait_for(both_locked.wait(), 10)
    await session.execute(update(Item).where(Item.id == second).values(n=Item.n + 1))


def write_skew(retry: int) -> tuple[dict[str, int], list[str], object]:
    """Two SERIALIZABLE transactions that each read the whole table, then insert."""
    attempts = {"a": 0, "b": 0}
    commits: list[str] = []
    both_read = asyncio.Barrier(2)

    @transactional(isolation=Isolation.SERIALIZABLE, retry=retry)
    async def book(name: str) -> None:
        attempts[name] += 1
        session = current_session()
        seen = (await session.execute(select(func.count()).select_from(Item))).scalar_one()
        if attempts[name] == 1:
            await asyncio.wait_for(both_read.wait(), 10)
        session.add(Item(tag=f"{name}-saw-{seen}"))
        await session.flush()
        after_commit(lambda: commits.append(name))

    return attempts, commits, book


async def test_postgresql_serialization_failures_are_retried(
    db: DatabaseSessionFactory, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SERIALIZABLE write skew is detected by PostgreSQL's SSI")
    attempts, commits, book = write_skew(retry=3)
    await asyncio.gather(book("a"), book("b"))  # type: ignore[operator]
    assert sorted(commits) == ["a", "b"]  # hooks ran once per success
    assert sum(attempts.values()) >= 3  # at least one of them had to run again
    tags = await committed_tags(db.engine)
    assert len(tags) == 2 and sorted(tag.split("-saw-")[1] for tag in tags) == ["0", "1"]


async def test_postgresql_serialization_failure_is_mapped_without_retry(
    db: DatabaseSessionFactory, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SERIALIZABLE write skew is detected by PostgreSQL's SSI")
    attempts, commits, book = write_skew(retry=0)
    results = await asyncio.gather(book("a"), book("b"), return_exceptions=True)  # type: ignore[operator]
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert isinstance(failures[0], SerializationFailureError)
    assert len(commits) == 1 and sum(attempts.values()) == 2


async def test_mariadb_deadlock_is_retried(db: DatabaseSessionFactory, backend: str) -> None:
    if backend != "mariadb":
        pytest.skip("a row-lock deadlock detected by InnoDB")

    await seed_two_items()
    attempts = {"forward": 0, "backward": 0}
    commits: list[str] = []
    both_locked = asyncio.Barrier(2)

    @transactional(retry=2)
    async def touch(name: str, first: int, second: int) -> None:
        attempts[name] += 1
        await bump(first, second, both_locked if attempts[name] == 1 else None)
        after_commit(lambda: commits.append(name))

    await asyncio.gather(touch("forward", 1, 2), touch("backward", 2, 1))
    assert sorted(commits) == ["backward", "forward"]
    assert sum(attempts.values()) >= 3  # the deadlock victim ran again
    async with db.engine.connect() as conn:
        totals = (await conn.execute(select(Item.n).order_by(Item.id))).scalars().all()
    assert totals == [2, 2]  # every successful attempt counted once, the victim's undone


async def test_mariadb_deadlock_is_mapped(db: DatabaseSessionFactory, backend: str) -> None:
    if backend != "mariadb":
        pytest.skip("a row-lock deadlock detected by InnoDB")

    await seed_two_items()
    both_locked = asyncio.Barrier(2)

    @transactional
    async def touch(first: int, second: int) -> None:
        await bump(first, second, both_locked)

    results = await asyncio.gather(touch(1, 2), touch(2, 1), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], DeadlockError), results
