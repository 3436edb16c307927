"""Mixins: keys, timestamps on every write path, composition with both mapping styles."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text, update

from tests.repository.models import Doc, DocRepo, Item, Mixed, User, UserRepo
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    current_session,
    transactional,
)


def test_mixins_compose_with_entity_table_and_classic_columns() -> None:
    columns = list(Mixed.__table__.columns.keys())
    assert columns[0] == "id"  # keys first, bookkeeping last, whatever the order of bases
    assert set(columns) == {"id", "label", "extra", "created_at", "updated_at", "version"}
    assert Mixed.__mapper__.version_id_col is Mixed.__table__.c.version
    assert Doc.__table__.c.id.type.python_type is uuid.UUID
    assert Item.__table__.c.id.primary_key and Item.__table__.c.id.autoincrement is True


async def test_int_and_uuid_keys_are_generated(db: DatabaseSessionFactory) -> None:
    user = await UserRepo().save(User(email="a@x.io", name="A"))
    doc = await DocRepo().save(Doc(title="t"))
    assert isinstance(user.id, int) and user.id > 0
    assert isinstance(doc.id, uuid.UUID)
    assert (await DocRepo().get_by_id(doc.id)).title == "t"
    mixed = await DbRepo(Mixed).save(Mixed(label="m"))
    assert isinstance(mixed.id, uuid.UUID) and mixed.version == 1 and mixed.extra == 0
    assert mixed.created_at.tzinfo is not None


async def test_timestamps_on_orm_insert_and_update(db: DatabaseSessionFactory) -> None:
    repo = UserRepo()
    before = datetime.now(UTC)
    user = await repo.save(User(email="t@x.io", name="T"))
    assert user.created_at.tzinfo is not None and user.created_at.utcoffset() == timedelta(0)
    assert user.created_at == user.updated_at
    assert before <= user.created_at <= datetime.now(UTC)
    created = user.created_at
    await asyncio.sleep(0.002)
    user.name = "T2"
    user = await repo.save(user)
    assert user.updated_at > created
    loaded = await repo.get_by_id(user.id)
    assert loaded is not None
    assert loaded.created_at == created  # microseconds survive the round trip (DATETIME(6))
    assert loaded.updated_at == user.updated_at
    assert loaded.updated_at.tzinfo is not None


async def test_timestamps_on_core_insert_and_update(db: DatabaseSessionFactory) -> None:
    @transactional
    async def core_writes() -> tuple[datetime, datetime, datetime]:
        s = current_session()
        await s.execute(insert(User), [{"email": "c@x.io", "name": "C"}])
        row = (await s.execute(select(User.created_at, User.updated_at))).one()
        await asyncio.sleep(0.002)
        await s.execute(update(User).where(User.email == "c@x.io").values(name="C2"))
        moved = (
            await s.execute(select(User.updated_at).execution_options(populate_existing=True))
        ).scalar_one()
        return row.created_at, row.updated_at, moved

    created, updated, moved = await core_writes()
    assert created == updated and created.tzinfo is not None
    assert moved > updated


async def test_timestamps_on_bulk_insert(db: DatabaseSessionFactory) -> None:
    before = datetime.now(UTC)
    users = await UserRepo().insert_all([{"email": f"b{i}@x.io", "name": "B"} for i in range(600)])
    assert all(u.created_at == u.updated_at and u.created_at >= before for u in users)
    stored = await UserRepo().all()
    assert {u.created_at for u in stored} == {users[0].created_at}


async def test_naive_datetimes_are_refused(db: DatabaseSessionFactory) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await UserRepo().all(UserRepo().where(User.created_at > datetime(2020, 1, 1)))


async def test_stored_value_is_utc(db: DatabaseSessionFactory, backend: str) -> None:
    """A non-UTC aware datetime is stored as the same instant in UTC."""
    user = await UserRepo().save(User(email="z@x.io", name="Z"))
    plus_two = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    user.created_at = plus_two
    await UserRepo().save(user)

    @transactional
    async def raw() -> object:
        return (
            await current_session().execute(text("SELECT created_at FROM repo_users"))
        ).scalar_one()

    stored = await raw()
    as_text = stored.isoformat() if isinstance(stored, datetime) else str(stored)
    assert "12:00:00.123456" in as_text.replace("T", " ")
    loaded = await UserRepo().get_by_id(user.id)
    assert loaded is not None and loaded.created_at == plus_two
