"""``get_or_create_all``: one entity per input row, in order, race-free on every database."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import delete

from tests.repository.models import Item, ItemRepo
from tests.repository.rel_models import Tag, TagRepo
from tests.sql import statements
from viveka_db import DatabaseSessionFactory, UnknownFieldError, current_session, transactional

tags = TagRepo()
items = ItemRepo()


async def test_returns_existing_and_new_in_input_order(db: DatabaseSessionFactory) -> None:
    existing = await tags.insert_all([Tag(name="sql"), Tag(name="orm")])
    found = await tags.get_or_create_all(
        [{"name": "python"}, {"name": "sql"}, {"name": "python"}, Tag(name="orm")]
    )
    assert [t.name for t in found] == ["python", "sql", "python", "orm"]
    assert found[0] is found[2]  # equal keys: the same entity
    assert found[1].id == existing[0].id and found[3].id == existing[1].id
    assert await tags.count() == 3


async def test_all_existing_costs_one_select(db: DatabaseSessionFactory) -> None:
    await tags.insert_all([Tag(name=n) for n in ("a", "b", "c")])
    with statements(db.engine) as seen:
        found = await tags.get_or_create_all([{"name": "c"}, {"name": "a"}])
    assert [t.name for t in found] == ["c", "a"] and len(seen) == 1


async def test_composite_keys(db: DatabaseSessionFactory) -> None:
    first = await items.get_or_create_all(
        [{"sku": "x", "shop": "s1", "qty": 1}, {"sku": "x", "shop": "s2", "qty": 2}],
        key=("sku", "shop"),
    )
    again = await items.get_or_create_all(
        [{"sku": "x", "shop": "s2", "qty": 99}, {"sku": "y", "shop": "s1"}], key=("sku", "shop")
    )
    assert again[0].id == first[1].id and again[0].qty == 2  # existing rows are not updated
    assert await items.count() == 3
    assert isinstance(again[1], Item)


async def test_a_key_that_is_not_unique_is_refused_before_sql(
    db: DatabaseSessionFactory,
) -> None:
    with statements(db.engine) as seen:
        with pytest.raises(ValueError, match="not the primary key or a unique constraint"):
            await items.get_or_create_all([{"sku": "x", "shop": "s"}], key=("sku",))
        with pytest.raises(UnknownFieldError):
            await tags.get_or_create_all([{"name": "x"}], key="label")
    assert seen == []


CALLERS = 20


async def test_concurrent_callers_with_overlapping_keys_agree(
    db: DatabaseSessionFactory,
) -> None:
    """20 transactions at once, each asking for 6 of 10 tags in its own order."""
    names = [f"tag{i}" for i in range(10)]
    await tags.insert_all([Tag(name="tag0")])  # one exists beforehand
    rng = random.Random(7)
    wanted = [rng.sample(names, 6) for _ in range(CALLERS)]

    @transactional
    async def caller(keys: list[str]) -> list[tuple[str, int]]:
        found = await tags.get_or_create_all([{"name": k} for k in keys])
        await asyncio.sleep(0.01)  # keep the transaction open while others run
        return [(t.name, t.id) for t in found]

    results = await asyncio.gather(*(caller(keys) for keys in wanted))
    ids: dict[str, set[int]] = {}
    for keys, result in zip(wanted, results, strict=True):
        assert [name for name, _ in result] == keys  # input order
        for name, ident in result:
            ids.setdefault(name, set()).add(ident)
    assert all(len(found) == 1 for found in ids.values()), ids  # everyone got the same row
    stored = {t.name: t.id for t in await tags.all()}
    assert {name: next(iter(found)) for name, found in ids.items()} == {
        name: stored[name] for name in ids
    }  # and it is the committed one: no row lost
    assert len(stored) == len(ids)


@pytest.mark.parametrize("joined", [False, True], ids=["own_transaction", "joined"])
async def test_20_concurrent_callers_with_overlapping_keys_never_see_a_deadlock(
    db: DatabaseSessionFactory, joined: bool
) -> None:
    """Each round: 20 callers at once, each asking for 12 of 30 tags; none may fail.

    Before the fix about half of the MariaDB callers failed with ``DeadlockError``: the
    locking re-read scanned the unique index across rows other callers had just inserted.
    A call that owns its transaction retries a remaining deadlock itself; inside a longer
    transaction InnoDB rolls back the whole transaction, so its owner retries (``retry=``).
    """
    names = [f"tag{i:02d}" for i in range(30)]

    @transactional(retry=5)
    async def in_a_transaction(keys: list[str]) -> list[Tag]:
        found = await tags.get_or_create_all({"name": k} for k in keys)  # a generator
        await asyncio.sleep(0.005)  # the transaction stays open while others run
        return found

    async def on_its_own(keys: list[str]) -> list[Tag]:
        return await tags.get_or_create_all({"name": k} for k in keys)

    @transactional
    async def clear_tags() -> None:
        await current_session().execute(delete(Tag))

    call = in_a_transaction if joined else on_its_own
    for round_number in range(3):
        await clear_tags()
        rng = random.Random(round_number)
        wanted = [rng.sample(names, 12) for _ in range(CALLERS)]
        results = await asyncio.gather(*(call(keys) for keys in wanted), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == [], failures[:3]
        stored = {t.name: t.id for t in await tags.all()}
        for keys, result in zip(wanted, results, strict=True):
            assert isinstance(result, list)
            assert [(t.name, t.id) for t in result] == [(k, stored[k]) for k in keys]
        assert sorted(stored) == sorted({k for keys in wanted for k in keys})
