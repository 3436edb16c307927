"""The original ``DbRepo`` methods, called directly and from @transactional code."""

from __future__ import annotations

import pytest

from tests.core.helpers import committed_tags
from tests.core.models import Code, Item, ItemRepo, Parent, tags
from tests.sql import statements
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    EntityDefinitionError,
    UnknownFieldError,
    current_session,
    transactional,
)

repo = ItemRepo()


async def test_insert_all_returns_entities_with_keys_and_commits(
    db: DatabaseSessionFactory,
) -> None:
    saved = await repo.insert_all([Item(tag="a", n=1), Item(tag="b", n=2)])
    assert [item.tag for item in saved] == ["a", "b"]
    assert all(isinstance(item.id, int) for item in saved)
    assert saved[0].n == 1  # expire_on_commit=False: readable after the commit
    assert await repo.insert_all([]) == []
    assert await committed_tags(db.engine) == ["a", "b"]


async def test_get_by_id_exists_count(db: DatabaseSessionFactory) -> None:
    a, b = await repo.insert_all([Item(tag="a"), Item(tag="b")])
    got = await repo.get_by_id(a.id)
    assert got is not None and got.tag == "a"
    assert await repo.get_by_id(10_000) is None
    assert await repo.exists(b.id) is True
    assert await repo.exists(10_000) is False
    assert await repo.count() == 2


async def test_get_all_paginates_in_key_order(db: DatabaseSessionFactory) -> None:
    await repo.insert_all([Item(tag=f"t{i}") for i in range(5)])
    assert [i.tag for i in await repo.get_all()] == ["t0", "t1", "t2", "t3", "t4"]
    assert [i.tag for i in await repo.get_all(skip=1, limit=2)] == ["t1", "t2"]
    assert [i.tag for i in await repo.get_all(skip=4)] == ["t4"]
    assert await repo.get_all(skip=10) == []
    with pytest.raises(ValueError, match="skip must be an int"):  # a PaginationError
        await repo.get_all(skip=-1)


async def test_update_merges_a_detached_entity(db: DatabaseSessionFactory) -> None:
    (item,) = await repo.insert_all([Item(tag="old", n=1)])
    item.tag = "new"  # detached after its own transaction
    merged = await repo.update(item)
    assert merged.tag == "new"
    assert await committed_tags(db.engine) == ["new"]
    fresh = await repo.get_by_id(item.id)
    assert fresh is not None and fresh.tag == "new"


async def test_delete_and_delete_entity(db: DatabaseSessionFactory) -> None:
    a, b, c = await repo.insert_all([Item(tag="a"), Item(tag="b"), Item(tag="c")])
    assert await repo.delete(a.id) is True
    assert await repo.delete(a.id) is False
    await repo.delete_entity(b)  # detached instance

    @transactional
    async def load_and_delete() -> None:
        loaded = await repo.get_by_id(c.id)
        assert loaded is not None
        await repo.delete_entity(loaded)  # loaded in the same session

    await load_and_delete()
    assert await repo.count() == 0


async def test_find_by_field_and_find_all_by_field(db: DatabaseSessionFactory) -> None:
    await repo.insert_all([Item(tag="x", n=1), Item(tag="y", n=2), Item(tag="x", n=3)])
    first = await repo.find_by_field("tag", "x")
    assert first is not None and first.n == 1
    assert await repo.find_by_field("tag", "zzz") is None
    assert [i.n for i in await repo.find_all_by_field("tag", "x")] == [1, 3]
    assert [i.n for i in await repo.find_all_by_field(Item.tag, "x")] == [1, 3]  # attribute
    assert await repo.find_all_by_field("tag", "zzz") == []


async def test_find_by_column_name_that_differs_from_the_attribute(
    db: DatabaseSessionFactory,
) -> None:
    codes = DbRepo(Code)
    await codes.insert_all([Code(code="c1", label="first")])
    by_attribute = await codes.find_by_field("label", "first")
    by_column = await codes.find_by_field("label_text", "first")
    assert by_attribute is not None and by_column is not None
    assert by_attribute.code == by_column.code == "c1"


async def test_unknown_field_lists_valid_fields_and_sends_no_sql(
    db: DatabaseSessionFactory,
) -> None:
    with statements(db.engine) as seen:
        with pytest.raises(UnknownFieldError) as info:
            await repo.find_by_field("emali", "x")
        with pytest.raises(UnknownFieldError):
            await repo.find_all_by_field(Code.code, "x")  # an attribute of another entity
        with pytest.raises(ValueError):  # UnknownFieldError is also a ValueError
            await repo.find_all_by_field(42, "x")
    assert seen == []
    message = str(info.value)
    assert "'emali'" in message
    assert "valid fields are: id, n, tag" in message
    assert info.value.valid == ["id", "n", "tag"]


async def test_methods_join_the_callers_transaction(db: DatabaseSessionFactory) -> None:
    @transactional
    async def work() -> list[str]:
        session = current_session()
        (a,) = await repo.insert_all([Item(tag="a")])
        assert await repo.get_by_id(a.id) is a  # same session: same identity map
        assert await repo.count() == 1
        assert await repo.exists(a.id)
        a.tag = "a2"
        await repo.update(a)
        assert await repo.delete(a.id)
        await repo.insert_all([Item(tag="b")])
        assert current_session() is session
        found = await repo.find_all_by_field("tag", "b")
        raise RuntimeError(tags(found))

    with pytest.raises(RuntimeError, match=r"\['b'\]"):
        await work()
    assert await committed_tags(db.engine) == []  # all of it rolled back together


async def test_entity_is_read_from_the_generic_or_the_argument(db: DatabaseSessionFactory) -> None:
    class Parents(DbRepo[Parent]):
        pass

    assert Parents().model is Parent
    assert DbRepo(Parent).model is Parent
    with pytest.raises(EntityDefinitionError, match="does not know its entity"):
        DbRepo()
    with pytest.raises(EntityDefinitionError, match="not a mapped entity"):
        DbRepo(int)
