"""The private-internal fast paths of ``viveka_db.compat`` agree with their public fallbacks.

Each fast path is taken only on the SQLAlchemy releases this suite verifies; these tests
are what "verified" means: the public fallback gives the same answer and leaves the ORM
(instance state, identity map, new/dirty sets, flush and rollback) in the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import ForeignKey, String, event, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from viveka_db import VivekaDbBase, compat, entity, table
from viveka_db.dialects import sqlite_engine as engine_module
from viveka_db.session.db_session import DatabaseSessionFactory

BuildEntity = Callable[..., Any]
PATHS: dict[str, BuildEntity] = {
    "private": compat.detached_entity_private,
    "public": compat.detached_entity_public,
}


@entity
@table("core_compat_authors")
class CompatAuthor(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[CompatBook]] = relationship(back_populates="author")


@entity
@table("core_compat_books")
class CompatBook(VivekaDbBase):
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("core_compat_authors.id"))
    title: Mapped[str] = mapped_column(String(50))
    author: Mapped[CompatAuthor] = relationship(back_populates="books")


def test_the_fast_paths_are_taken_on_the_verified_releases() -> None:
    verified = sqlalchemy.__version__.startswith(("2.0.", "2.1."))
    assert compat.PRIVATE_FAST_PATHS is verified
    expected = "private" if verified else "public"
    assert compat.requests_row_lock.__name__.endswith(expected)
    assert compat.detached_entity.__name__.endswith(expected)


@pytest.mark.parametrize(
    "statement",
    [
        select(CompatAuthor),
        select(CompatAuthor).with_for_update(),
        select(CompatAuthor).with_for_update(nowait=True),
        select(CompatAuthor).with_for_update(skip_locked=True, of=CompatAuthor),
        select(CompatAuthor).with_for_update(read=True),
        select(CompatAuthor.name).where(CompatAuthor.id == 1).limit(3),
        select(CompatAuthor).join(CompatAuthor.books).with_for_update(key_share=True),
        select(CompatAuthor.id).union(select(CompatBook.id)),
        text("SELECT 1"),
    ],
    ids=lambda s: str(s).replace("\n", " ")[:60],
)
def test_row_lock_paths_agree(statement: Any) -> None:
    assert compat.requests_row_lock_private(statement) is compat.requests_row_lock_public(statement)


@pytest.fixture(params=["private", "public"])
def row_lock_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force the SQLite transaction start onto one of the two row-lock paths."""
    name = str(request.param)
    chosen = getattr(compat, f"requests_row_lock_{name}")
    monkeypatch.setattr(engine_module, "requests_row_lock", chosen)
    return name


@pytest.mark.sqlite
async def test_sqlite_takes_the_write_lock_for_for_update_on_either_path(
    row_lock_path: str, tmp_path: Path
) -> None:
    """A plain read stays outside the transaction; SELECT ... FOR UPDATE begins it."""
    await DatabaseSessionFactory.close_all()
    factory = DatabaseSessionFactory(
        {"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}"}}
    )
    try:
        await factory.create_all([CompatAuthor, CompatBook])
        async with factory.session_factory() as session, session.begin():
            await session.execute(select(CompatAuthor))
            assert not await _driver_in_transaction(session)
            await session.execute(select(CompatAuthor).with_for_update())
            assert await _driver_in_transaction(session)
    finally:
        await DatabaseSessionFactory.close_all()


async def _driver_in_transaction(session: AsyncSession) -> bool:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return bool(raw.driver_connection.in_transaction)  # type: ignore[union-attr]


# -- detached entities (cache hits) --------------------------------------------------------


async def _seed(factory: DatabaseSessionFactory) -> None:
    async with factory.session_factory() as session, session.begin():
        session.add(CompatAuthor(id=1, name="ada", books=[CompatBook(id=7, title="notes")]))


def _loaded_values() -> dict[str, Any]:
    return {"id": 1, "name": "ada"}


def _state_of(instance: Any) -> dict[str, Any]:
    state = inspect(instance)
    return {
        "key": state.key,
        "detached": state.detached,
        "transient": state.transient,
        "has_identity": state.has_identity,
        "modified": state.modified,
        "committed": dict(state.committed_state),
        "expired": set(state.expired_attributes),
        "unloaded": set(state.unloaded),
        "values": {k: v for k, v in state.dict.items() if not k.startswith("_")},
    }


def _build(path: str) -> Any:
    mapper = inspect(CompatAuthor)
    return PATHS[path](mapper, ("id",), _loaded_values())


async def test_detached_entity_paths_build_the_state_of_a_loaded_then_detached_entity(
    db: DatabaseSessionFactory,
) -> None:
    await _seed(db)
    async with db.session_factory() as session:
        loaded = await session.get(CompatAuthor, 1)
        assert loaded is not None
        session.expunge(loaded)
    reference = _state_of(loaded)
    assert _state_of(_build("private")) == reference
    assert _state_of(_build("public")) == reference


async def _session_round_trip(factory: DatabaseSessionFactory, path: str) -> dict[str, Any]:
    """Attach a built entity, load its relationship, change it, flush, then roll back."""
    seen: dict[str, Any] = {}
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement.split()[0].upper())

    event.listen(factory.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with factory.session_factory() as session:
            author = _build(path)
            session.add(author)
            seen["in_identity_map"] = inspect(author).key in session.identity_map
            seen["new"], seen["dirty"] = list(session.new), list(session.dirty)
            seen["books"] = await session.run_sync(lambda _: [b.title for b in author.books])
            author.name = "grace"
            seen["dirty_after_change"] = [a.name for a in session.dirty]
            await session.flush()
            seen["flushed"] = (
                await session.execute(select(CompatAuthor.name).where(CompatAuthor.id == 1))
            ).scalar_one()
            await session.rollback()
            seen["after_rollback"] = (await session.get(CompatAuthor, 1)).name  # type: ignore[union-attr]
            seen["same_object"] = (await session.get(CompatAuthor, 1)) is author
    finally:
        event.remove(factory.engine.sync_engine, "before_cursor_execute", record)
    seen["statements"] = [s for s in sent if s in ("SELECT", "UPDATE", "INSERT", "DELETE")]
    return seen


async def test_detached_entity_paths_behave_the_same_in_a_session(
    db: DatabaseSessionFactory,
) -> None:
    await _seed(db)
    private = await _session_round_trip(db, "private")
    public = await _session_round_trip(db, "public")
    assert private == public
    assert private["in_identity_map"] and private["new"] == [] and private["dirty"] == []
    assert private["books"] == ["notes"] and private["dirty_after_change"] == ["grace"]
    assert private["flushed"] == "grace" and private["after_rollback"] == "ada"
    assert "UPDATE" in private["statements"]


async def test_a_pause_in_a_greenlet_leaves_the_event_loop_running() -> None:
    """``connect_wait``'s pause: inside SQLAlchemy's greenlet, other tasks keep running."""
    import asyncio
    import time

    from sqlalchemy.util import greenlet_spawn

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    background = asyncio.create_task(ticker())
    started = time.monotonic()
    await greenlet_spawn(compat.sleep_in_greenlet, 0.2)
    elapsed = time.monotonic() - started
    background.cancel()
    assert elapsed >= 0.19
    assert ticks >= 5  # the loop ran while the greenlet paused


def test_the_public_fallback_pauses_as_long(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(compat, "PRIVATE_FAST_PATHS", False)
    started = time.monotonic()
    compat.sleep_in_greenlet(0.1)
    assert time.monotonic() - started >= 0.09


@pytest.mark.parametrize(
    ("statement", "bounded"),
    [
        (select(CompatAuthor), False),
        (select(CompatAuthor).where(CompatAuthor.name == "LIMIT 3"), False),
        (select(CompatAuthor).order_by(CompatAuthor.name).limit(3), True),
        (select(CompatAuthor).offset(10), True),
        (select(CompatAuthor.id).limit(5).offset(5), True),
        (select(CompatAuthor).join(CompatAuthor.books).where(CompatBook.title != ""), False),
    ],
    ids=lambda s: str(s).replace("\n", " ")[:60],
)
def test_limit_paths_agree(statement: Any, bounded: bool) -> None:
    """Keyset streaming asks whether a SELECT is bounded already (``compat.has_limit``)."""
    assert compat.has_limit_private(statement) is bounded
    assert compat.has_limit_public(statement) is bounded
    expected = "private" if compat.PRIVATE_FAST_PATHS else "public"
    assert compat.has_limit.__name__.endswith(expected)
