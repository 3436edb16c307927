"""save, find_by, fluent queries and soft delete."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.repository.models import Account, AccountRepo, Tier, User, UserRepo
from viveka_db import (
    DatabaseSessionFactory,
    EntityDefinitionError,
    UnknownFieldError,
    current_session,
    include_deleted,
    transactional,
)


async def _users(repo: UserRepo) -> list[User]:
    return await repo.save_all(
        [
            User(email="ann@x.io", name="Ann", age=31),
            User(email="bob@x.io", name="Bob", age=25, is_active=False),
            User(email="cid@x.io", name="Cid", age=None, tier=Tier.pro),
        ]
    )


async def test_save_inserts_then_updates(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    user = await repo.save(User(email="s@x.io", name="S"))
    assert user.id is not None
    user.name = "S2"  # detached after the first transaction: save updates it
    saved = await repo.save(user)
    assert saved.id == user.id
    assert await repo.count() == 1
    assert (await repo.get_by_id(user.id)).name == "S2"

    manual = User(id=user.id, email="s@x.io", name="S3")  # key set by hand: merged
    merged = await repo.save(manual)
    assert merged.id == user.id and await repo.count() == 1
    assert (await repo.get_by_id(user.id)).name == "S3"


async def test_save_rejects_other_types(db: DatabaseSessionFactory) -> None:
    with pytest.raises(TypeError, match="saves User instances"):
        await UserRepo().save(Account(owner="x"))  # type: ignore[arg-type]


async def test_find_by_and_find_all_by(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    await _users(repo)
    found = await repo.find_by(email="bob@x.io")
    assert found is not None and found.name == "Bob"
    assert await repo.find_by(email="nobody@x.io") is None
    assert [u.name for u in await repo.find_all_by(is_active=True)] == ["Ann", "Cid"]
    assert [u.name for u in await repo.find_all_by(age=None)] == ["Cid"]
    assert [u.name for u in await repo.find_all_by(tier=Tier.pro, is_active=True)] == ["Cid"]


async def test_unknown_fields_are_rejected_before_sql(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    with pytest.raises(UnknownFieldError) as info:
        await repo.find_by(emial="x")
    assert (
        "emial" in str(info.value) and "email" in str(info.value) and "is_active" in str(info.value)
    )
    with pytest.raises(UnknownFieldError):
        await repo.find_all_by(name="a", nope=1)
    with pytest.raises(TypeError):
        await repo.find_by()


async def test_fluent_queries(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    await _users(repo)
    query = repo.where(User.age > 20).order_by(User.age.desc())
    assert [u.name for u in await repo.all(query)] == ["Ann", "Bob"]
    assert [u.name for u in await repo.all(query, limit=1)] == ["Ann"]
    assert (await repo.first(query)).name == "Ann"
    assert await repo.first(repo.where(User.name == "Zed")) is None
    assert await repo.count(query) == 2
    assert await repo.count() == 3
    assert [u.name for u in await repo.all()] == ["Ann", "Bob", "Cid"]
    assert [u.name for u in await repo.all(repo.select().order_by(User.name.desc()))] == [
        "Cid",
        "Bob",
        "Ann",
    ]
    with pytest.raises(ValueError, match="limit"):
        await repo.all(limit=-1)


async def test_soft_deleted_rows_are_hidden_by_default(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    ann, bob, _cid = await _users(repo)
    assert await repo.soft_delete(bob.id) is True
    assert await repo.soft_delete(bob.id) is False  # already deleted

    assert await repo.get_by_id(bob.id) is None
    assert not await repo.exists(bob.id)
    assert await repo.count() == 2
    assert [u.name for u in await repo.all()] == ["Ann", "Cid"]
    assert [u.name for u in await repo.get_all()] == ["Ann", "Cid"]
    assert await repo.find_by(email="bob@x.io") is None
    assert await repo.find_by_field("email", "bob@x.io") is None
    assert await repo.find_all_by_field(User.is_active, False) == []
    assert await repo.count(repo.where(User.age > 0)) == 1
    page = await repo.get_page(1, 10)
    assert [u.name for u in page.items] == ["Ann", "Cid"] and page.total == 2

    everyone = repo.with_deleted()
    assert await everyone.count() == 3
    assert (await everyone.get_by_id(bob.id)).deleted_at is not None
    assert [u.name for u in await repo.only_deleted().all()] == ["Bob"]
    assert await repo.only_deleted().count() == 1
    assert repo._deleted_rows == "exclude"  # views never change the shared repository

    # the row is still there, with deleted_at set and updated_at moved; every ORM
    # statement hides it unless include_deleted() is active
    @transactional
    async def raw_count() -> int:
        with include_deleted():
            return int(await current_session().scalar(select(func.count()).select_from(User)))

    @transactional
    async def filtered_count() -> int:
        return int(await current_session().scalar(select(func.count()).select_from(User)))

    assert await filtered_count() == 2

    assert await raw_count() == 3

    assert await repo.restore(bob.id) is True
    assert await repo.restore(bob.id) is False
    assert await repo.count() == 3
    assert await repo.restore(ann.id) is False


async def test_soft_delete_needs_the_mixin(db: DatabaseSessionFactory) -> None:
    from tests.repository.models import ItemRepo

    with pytest.raises(EntityDefinitionError, match="SoftDeleteMixin"):
        await ItemRepo().soft_delete(1)
    with pytest.raises(EntityDefinitionError):
        ItemRepo().only_deleted()
    assert await ItemRepo().with_deleted().count() == 0


async def test_repository_calls_join_the_callers_transaction(db: DatabaseSessionFactory) -> None:
    repo = AccountRepo()

    @transactional
    async def transfer_then_fail() -> None:
        await repo.save(Account(owner="a", balance=10))
        await repo.insert_all([{"owner": "b"}])
        await repo.upsert_all([{"owner": "c"}])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await transfer_then_fail()
    assert await repo.with_deleted().count() == 0
