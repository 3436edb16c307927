"""``factory_for``: valid entities from polyfactory, persisted through ``insert_all`` in the
test's rolled-back session (``db_session``), required parents created, seeded values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import ForeignKey, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tests.repository.query_models import Note, Post, Writer
from viveka_db import (
    DatabaseSessionFactory,
    DbRepo,
    IntPKMixin,
    UTCDateTime,
    VivekaDbBase,
    entity,
    table,
)
from viveka_db.repository import bulk
from viveka_db.testing import EntityFactory, factory_for

TABLES = ("repo_q_notes", "repo_q_posts", "repo_q_writers")


async def _committed_rows(db: DatabaseSessionFactory) -> dict[str, int]:
    """Row counts seen from a connection of its own (only committed rows)."""
    async with db.engine.connect() as conn:
        return {
            t: int((await conn.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one())
            for t in TABLES
        }


@pytest.fixture
async def rolled_back(db: DatabaseSessionFactory) -> AsyncIterator[None]:
    """Set up before ``db_session`` and torn down after it: nothing may be left behind."""
    assert await _committed_rows(db) == dict.fromkeys(TABLES, 0)
    yield
    assert await _committed_rows(db) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize("round_", [1, 2])
async def test_create_batch_of_500_with_parents_in_the_test_session(
    db: DatabaseSessionFactory,
    rolled_back: None,
    db_session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    round_: int,
) -> None:
    calls: list[int] = []
    insert_all = bulk.BulkRepository.insert_all

    async def counting(self: bulk.BulkRepository[object], entities: object) -> object:
        items = list(entities)  # type: ignore[call-overload]
        calls.append(len(items))
        return await insert_all(self, items)

    monkeypatch.setattr(bulk.BulkRepository, "insert_all", counting)
    notes = await factory_for(Note, seed=round_).create_batch(500)
    assert calls == [500, 500, 500]  # writers, then posts, then notes: one insert_all each
    assert len({n.id for n in notes}) == 500 and all(n.id is not None for n in notes)
    counts = {
        t: int((await db_session.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one())
        for t in TABLES
    }
    assert counts == dict.fromkeys(TABLES, 500)  # one required parent per row, recursively
    orphans = select(func.count()).select_from(Note).where(~Note.post_id.in_(select(Post.id)))
    assert (await db_session.execute(orphans)).scalar_one() == 0
    posts = await DbRepo(Post).all()
    assert all(p.writer_id is not None and p.editor_id is None for p in posts)  # optional FK: None
    assert all(p.created_at.tzinfo is not None for p in posts)  # defaults left to the entity
    writers = await DbRepo(Writer).all()
    assert len({w.email for w in writers}) == 500  # unique columns never collide
    assert all(len(w.email) <= 120 for w in writers)
    assert all(w.joined is None or w.joined.tzinfo is not None for w in writers)


async def test_given_parents_and_fields_are_used(
    db: DatabaseSessionFactory, rolled_back: None, db_session: AsyncSession
) -> None:
    ada = await factory_for(Writer).create(name="ada")
    assert ada.name == "ada" and ada.id is not None
    posts = await factory_for(Post).create_batch(3, writer=ada, title="Fixed")
    assert {(p.writer_id, p.title) for p in posts} == {(ada.id, "Fixed")}
    more = await factory_for(Post).create_batch(2, writer_id=ada.id)
    assert {p.writer_id for p in more} == {ada.id}
    assert await DbRepo(Writer).count() == 1  # no parent made when one was given
    assert await factory_for(Post).create_batch(0) == []
    with pytest.raises(ValueError, match="size"):
        await factory_for(Post).create_batch(-1)


async def test_build_is_valid_and_unsaved_with_parents_attached(
    db: DatabaseSessionFactory, rolled_back: None, db_session: AsyncSession
) -> None:
    post = factory_for(Post, seed=5).build()
    assert post.id is None and isinstance(post.writer, Writer) and post.writer.id is None
    assert isinstance(post.title, str) and len(post.title) <= 120
    saved = await DbRepo(Post).save(post)  # the built parent is inserted with it
    assert saved.id is not None and saved.writer_id == post.writer.id is not None


def test_the_same_seed_gives_the_same_values() -> None:
    def titles(factory: EntityFactory[Post]) -> list[tuple[object, ...]]:
        return [
            (p.title, p.views, p.price, p.day, p.status, p.writer.email)
            for p in factory.build_batch(5)
        ]

    first = titles(factory_for(Post, seed=11))
    assert titles(factory_for(Post, seed=11)) == first
    assert titles(factory_for(Post, seed=12)) != first
    again = factory_for(Post, seed=1)
    again.seed(11)
    assert titles(again) == first
    again.seed_random(11)  # polyfactory's name
    assert titles(again) == first


@entity
@table("repo_q_cells")
class Cell(VivekaDbBase, IntPKMixin):
    """A row that cannot exist without another row of its own kind."""

    next_id: Mapped[int] = mapped_column(ForeignKey("repo_q_cells.id"))


async def test_a_cycle_of_required_parents_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match=r"cycle \(Cell -> Cell\); pass next_id= yourself"):
        await factory_for(Cell).create_batch(2)  # refused before any SQL
    assert factory_for(Cell).build(next_id=1).next_id == 1


def test_aware_timestamps() -> None:
    writer = factory_for(Writer, seed=3).build(joined=None)
    assert writer.joined is None
    joined = [w.joined for w in factory_for(Writer, seed=3).build_batch(20) if w.joined]
    assert joined and all(isinstance(j, datetime) and j.tzinfo is not None for j in joined)
    assert isinstance(Writer.__table__.c.joined.type, UTCDateTime)  # type: ignore[attr-defined]
