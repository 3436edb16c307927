"""Optimistic locking with VersionMixin: a stale update raises and writes nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.orm.exc import StaleDataError

from tests.repository.models import Account, AccountRepo, Doc, DocRepo
from viveka_db import DatabaseSessionFactory, OptimisticLockError, VivekaDbError, transactional


def test_error_hierarchy() -> None:
    assert issubclass(OptimisticLockError, VivekaDbError)
    assert issubclass(OptimisticLockError, StaleDataError)


async def test_version_starts_at_one_and_increments(db: DatabaseSessionFactory) -> None:
    repo = AccountRepo()
    account = await repo.save(Account(owner="o", balance=1))
    assert account.version == 1
    account.balance = 2
    account = await repo.save(account)
    assert account.version == 2
    assert (await repo.get_by_id(account.id)).version == 2


async def test_stale_detached_copy_is_refused(db: DatabaseSessionFactory) -> None:
    """Two users edit the same row; the second save loses, naming entity and id."""
    repo = AccountRepo()
    created = await repo.save(Account(owner="o", balance=100))
    first, second = await asyncio.gather(repo.get_by_id(created.id), repo.get_by_id(created.id))
    assert first is not second and first.version == second.version == 1

    first.balance = 150
    await repo.save(first)
    second.balance = 50
    with pytest.raises(OptimisticLockError) as info:
        await repo.save(second)
    assert info.value.entity is Account and info.value.ident == created.id
    assert "Account" in str(info.value) and str(created.id) in str(info.value)

    stored = await repo.get_by_id(created.id)
    assert stored.balance == 150 and stored.version == 2

    stale = await repo.get_by_id(created.id)
    fresh = await repo.get_by_id(created.id)
    fresh.balance = 175
    await repo.update(fresh)
    stale.balance = 7
    with pytest.raises(OptimisticLockError):
        await repo.update(stale)  # the original merge-based update checks too
    assert (await repo.get_by_id(created.id)).balance == 175


async def test_concurrent_transactions_update_check(db: DatabaseSessionFactory) -> None:
    """Both transactions read version 1; the one that writes second gets the error.

    On SQLite too: reads before a transaction's first write take no lock, so the winner
    can write and commit while the loser holds its stale copy.
    """
    repo = AccountRepo()
    created = await repo.save(Account(owner="o", balance=100))
    loaded = asyncio.Event()
    winner_done = asyncio.Event()

    @transactional
    async def loser() -> None:
        account = await repo.get_by_id(created.id)
        assert account is not None and account.version == 1
        loaded.set()
        await winner_done.wait()
        account.balance = 1
        await repo.save(account)

    @transactional
    async def winner() -> None:
        await loaded.wait()
        account = await repo.get_by_id(created.id)
        assert account is not None
        account.balance = 999
        await repo.save(account)

    async def run_winner() -> None:
        try:
            await winner()
        finally:
            winner_done.set()

    results = await asyncio.gather(loser(), run_winner(), return_exceptions=True)
    assert isinstance(results[0], OptimisticLockError), results
    assert results[1] is None
    stored = await repo.get_by_id(created.id)
    assert stored.balance == 999 and stored.version == 2


async def test_stale_delete_is_refused(db: DatabaseSessionFactory) -> None:
    repo = DocRepo()
    doc = await repo.save(Doc(title="v1"))
    stale = await repo.get_by_id(doc.id)
    doc.title = "v2"
    await repo.save(doc)
    with pytest.raises(OptimisticLockError):
        await repo.delete_entity(stale)
    assert (await repo.get_by_id(doc.id)).title == "v2"


async def test_soft_delete_bumps_version(db: DatabaseSessionFactory) -> None:
    repo = AccountRepo()
    account = await repo.save(Account(owner="o"))
    assert await repo.soft_delete(account.id)
    assert (await repo.with_deleted().get_by_id(account.id)).version == 2
    account.balance = 5  # edited a copy loaded before the soft delete
    with pytest.raises(OptimisticLockError):
        await repo.save(account)
