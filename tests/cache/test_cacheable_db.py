"""``@cacheable`` / ``@cache_evict`` on a real database, each cache backend, each database.

Each test here would fail on one of the original product's defects: evicting before the
commit, caching rows of a rolled-back transaction, re-caching a stale row after an
eviction, or serving stale cache entries inside the transaction that evicted them.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.cache.models import CacheUser, UserRepo, column_values, gate
from tests.sql import statements
from viveka_db import DatabaseSessionFactory, Propagation, get_cache, transactional
from viveka_db.cache.backend import CacheBackend


async def seed(name: str = "ada") -> UserRepo:
    repo = UserRepo()
    await repo.insert_all([CacheUser(id=1, name=name, balance=Decimal("10.50"))])
    return repo


async def test_a_hit_issues_no_sql_and_returns_a_detached_equal_entity(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    first = await repo.get(1)
    assert first is not None
    with statements(db.engine) as sent:
        second = await repo.get(1)
    assert sent == []
    assert repo.loads == 1
    assert isinstance(second, CacheUser) and second is not first
    assert column_values(second) == column_values(first)
    from sqlalchemy import inspect

    assert inspect(second).detached
    assert get_cache().stats().hits == 1


async def test_a_cached_entity_can_be_modified_and_saved(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    await repo.get(1)
    cached = await repo.get(1)
    assert cached is not None
    cached.name = "changed"
    cached.balance = Decimal("99.99")
    await repo.update(cached)
    fresh = await repo.get_by_id(1)
    assert fresh is not None and (fresh.name, fresh.balance) == ("changed", Decimal("99.99"))


async def test_positional_and_keyword_calls_share_one_entry(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    await repo.get(1)
    with statements(db.engine) as sent:
        user = await repo.get(user_id=1)
    assert sent == [] and user is not None and user.name == "ada"
    assert repo.loads == 1


async def test_update_with_cache_evict_makes_the_next_read_see_the_new_row(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    await repo.get(1)
    await repo.rename(1, "grace")
    with statements(db.engine) as sent:
        user = await repo.get(1)
    assert user is not None and user.name == "grace"
    assert sent, "the evicted entry must be reloaded from the database"


async def test_single_key_eviction_leaves_other_entries(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    await repo.insert_all([CacheUser(id=2, name="bob")])
    await repo.get(1)
    await repo.get(2)
    await repo.rename_one(1, "grace")
    with statements(db.engine) as sent:
        other = await repo.get(2)
    assert sent == [] and other is not None and other.name == "bob"
    user = await repo.get(1)
    assert user is not None and user.name == "grace"


async def test_values_read_in_a_rolled_back_transaction_are_never_cached(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = UserRepo()

    @transactional
    async def create_read_and_fail() -> None:
        await repo.insert_all([CacheUser(id=7, name="phantom")])
        user = await repo.get(7)
        assert user is not None and user.name == "phantom"
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await create_read_and_fail()
    assert await repo.get(7) is None
    assert repo.loads == 2
    assert get_cache().stats().writes == 0


async def test_eviction_waits_for_the_commit(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    """A reader running between the writer's update and its commit must not leave the old
    row cached: the original evicted before commit, so that reader re-cached the old row."""
    repo = await seed()
    await repo.get(1)
    seen_during: list[str] = []

    @transactional
    async def write_then_let_a_reader_in() -> None:
        await repo.rename(1, "grace")
        assert get_cache().stats().evictions == 0  # deferred, not yet run
        reader = await asyncio.create_task(repo.get(1))  # another task, its own transaction
        assert reader is not None
        seen_during.append(reader.name)

    await write_then_let_a_reader_in()
    assert seen_during == ["ada"]  # the committed state at that time
    assert get_cache().stats().evictions == 1
    user = await repo.get(1)
    assert user is not None and user.name == "grace"


async def test_eviction_is_dropped_on_rollback(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    await repo.get(1)

    @transactional
    async def rename_and_fail() -> None:
        await repo.rename(1, "grace")
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        await rename_and_fail()
    assert get_cache().stats().evictions == 0
    with statements(db.engine) as sent:
        user = await repo.get(1)
    assert sent == [] and user is not None and user.name == "ada"


async def test_reads_after_an_eviction_in_the_transaction_bypass_the_cache(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    await repo.get(1)

    @transactional
    async def rename_then_read() -> str:
        await repo.rename(1, "grace")
        user = await repo.get(1)
        assert user is not None
        return user.name

    assert await rename_then_read() == "grace"
    assert get_cache().stats().bypasses == 1
    user = await repo.get(1)
    assert user is not None and user.name == "grace"


@pytest.mark.parametrize("evict", ["prefix", "key"])
@pytest.mark.parametrize("reader_kind", ["in_transaction", "after_transaction"])
async def test_stale_refill_never_leaves_the_old_row_cached(
    db: DatabaseSessionFactory, backend: str, cache: CacheBackend, evict: str, reader_kind: str
) -> None:
    """Reader loads the old row; writer commits and evicts; reader then tries to cache the
    old row. The cache must end with the new row or nothing, never the old one."""
    repo = await seed()
    reached, release, hook = await gate()
    repo.after_load = hook
    read = repo.get if reader_kind == "in_transaction" else repo.get_untransacted
    reader = asyncio.create_task(read(1))
    await reached.wait()
    repo.after_load = None
    if evict == "prefix":
        await repo.rename(1, "grace")
    else:
        await repo.rename_one(1, "grace")
    release.set()
    stale = await reader
    assert stale is not None and stale.name == "ada"  # it read before the update committed
    user = await repo.get(1)
    assert user is not None and user.name == "grace"
    assert get_cache().stats().rejected_writes >= 1


async def test_concurrent_misses_of_one_key_load_once(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    reached, release, hook = await gate()
    repo.after_load = hook
    with statements(db.engine) as sent:
        tasks = [asyncio.create_task(repo.get(1)) for _ in range(100)]
        await reached.wait()
        await asyncio.sleep(0.05)  # every other task is waiting for the leader by now
        assert get_cache().stats().misses == 1  # followers do not even read the cache
        release.set()
        users = await asyncio.gather(*tasks)
    assert repo.loads == 1
    assert len([s for s in sent if s.lstrip().upper().startswith("SELECT")]) == 1
    assert all(u is not None and u.name == "ada" for u in users)
    assert len({id(u) for u in users}) == 100  # every caller has its own instance


async def test_the_other_stacking_order_caches_after_commit(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()
    await repo.get_outer(1)
    with statements(db.engine) as sent:
        user = await repo.get_outer(1)
    assert sent == [] and user is not None and user.name == "ada"
    await repo.rename_outer(1, "grace")
    user = await repo.get_outer(1)
    assert user is not None and user.name == "grace"
    assert repo.loads == 2


async def test_none_is_not_cached_unless_asked(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = UserRepo()
    assert await repo.get(99) is None
    assert await repo.get(99) is None
    assert repo.loads == 2


async def test_puts_wait_for_the_commit(db: DatabaseSessionFactory, cache: CacheBackend) -> None:
    repo = await seed()

    @transactional
    async def read_twice() -> None:
        await repo.get(1)
        assert get_cache().stats().writes == 0  # deferred until the commit
        await repo.get(1)

    await read_twice()
    assert get_cache().stats().writes == 1
    with statements(db.engine) as sent:
        await repo.get(1)
    assert sent == []


async def test_a_put_made_in_a_rolled_back_savepoint_is_dropped(
    db: DatabaseSessionFactory, cache: CacheBackend
) -> None:
    repo = await seed()

    @transactional(propagation=Propagation.NESTED)
    async def read_in_savepoint_then_fail() -> None:
        await repo.update(CacheUser(id=1, name="savepoint", balance=Decimal("0.00")))
        user = await repo.get(1)
        assert user is not None and user.name == "savepoint"
        raise RuntimeError("roll back to the savepoint")

    @transactional
    async def outer() -> None:
        await repo.get_by_id(1)
        with pytest.raises(RuntimeError):
            await read_in_savepoint_then_fail()

    await outer()
    assert get_cache().stats().writes == 0
    user = await repo.get(1)
    assert user is not None and user.name == "ada"
