"""``DatabaseSessionFactory``: the singleton per data source, named data
sources side by side, ``create_all`` and shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, Enum, Integer, String, event

from tests.core.helpers import committed_tags
from tests.core.models import Item
from tests.sql import statements
from viveka_db import (
    ConfigurationError,
    DatabaseSessionFactory,
    DbRepo,
    NoSessionError,
    NotInitializedError,
    VivekaDbBase,
    current_session,
    entity,
    get_current_session,
    table,
    transactional,
)

PASSWORD = "Zq9-TopSecret-Pa55word"
PG_URL = f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:5432/app"


@entity
@table("core_scratch")
class Scratch(VivekaDbBase):
    id = Column(Integer, primary_key=True)
    note = Column(String(20))


GRADE = Enum("low", "high", name="core_grade", metadata=VivekaDbBase.metadata)
"""A type owned by the metadata (a named type on PostgreSQL), shared by two tables."""


@entity
@table("core_graded")
class Graded(VivekaDbBase):
    id = Column(Integer, primary_key=True)
    grade = Column(GRADE, nullable=False)


@entity
@table("core_graded_too")
class GradedToo(VivekaDbBase):
    id = Column(Integer, primary_key=True)
    grade = Column(GRADE, nullable=False)


@pytest.fixture
async def clean() -> AsyncIterator[None]:
    await DatabaseSessionFactory.close_all()
    yield
    await DatabaseSessionFactory.close_all()


async def test_get_instance_before_initialisation_explains_how(clean: None) -> None:
    with pytest.raises(NotInitializedError) as info:
        DatabaseSessionFactory.get_instance()
    message = str(info.value)
    assert "DatabaseSessionFactory(config_service=config)" in message
    assert "config.ini" in message
    with pytest.raises(NotInitializedError, match="data_source='reports'"):
        DatabaseSessionFactory.get_instance("reports")
    with pytest.raises(NotInitializedError):
        await DbRepo(Item).count()  # a repository call needs an initialised data source


async def test_same_config_returns_the_same_instance(clean: None) -> None:
    config = {"database": {"url": PG_URL, "pool_size": 3}}
    first = DatabaseSessionFactory(config)
    assert DatabaseSessionFactory({"database": {"url": PG_URL, "pool_size": "3"}}) is first
    assert DatabaseSessionFactory.get_instance() is first
    assert DatabaseSessionFactory.get_instance("default") is first
    assert first.engine.pool.size() == 3  # type: ignore[attr-defined]


async def test_different_config_raises_without_the_password(
    clean: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        factory = DatabaseSessionFactory({"database": {"url": PG_URL}})
        with pytest.raises(ConfigurationError) as info:
            DatabaseSessionFactory({"database": {"url": PG_URL.replace("/app", "/other")}})
    message = str(info.value)
    assert "already initialised" in message and "close_all" in message
    assert "/other" in message
    for text in (
        message,
        repr(info.value),
        repr(factory),
        str(factory.settings),
        repr(factory.settings),
        caplog.text,
    ):
        assert PASSWORD not in text
    assert factory.url.password == PASSWORD  # the real URL still carries it


async def test_close_all_disposes_and_forgets(clean: None) -> None:
    factory = DatabaseSessionFactory({"database": {"url": PG_URL}})
    other = DatabaseSessionFactory({"database": {"url": PG_URL}}, data_source="other")
    assert set(DatabaseSessionFactory.instances()) == {"default", "other"}
    await DatabaseSessionFactory.close_all()
    assert DatabaseSessionFactory.instances() == {}
    with pytest.raises(NotInitializedError):
        DatabaseSessionFactory.get_instance("other")
    # initialising again after close_all works, with another configuration too
    again = DatabaseSessionFactory({"database": {"url": PG_URL.replace("/app", "/other")}})
    assert again is not factory and again is not other


async def test_named_data_sources_side_by_side(
    db: DatabaseSessionFactory, backend: str, backend_url: str, tmp_path: Path
) -> None:
    # SQLite allows one writer per file, so the reports data source gets its own file there
    reports_url = (
        f"sqlite+aiosqlite:///{tmp_path / 'reports.db'}" if backend == "sqlite" else backend_url
    )
    reports = DatabaseSessionFactory(
        {"database": {"url": backend_url, "reports": {"url": reports_url}}}, data_source="reports"
    )
    assert DatabaseSessionFactory.get_instance("reports") is reports
    assert reports.engine is not db.engine
    if backend == "sqlite":
        assert await reports.create_all([Item]) == ["core_items"]
    default_repo = DbRepo(Item)
    reports_repo = DbRepo(Item, data_source="reports")
    assert reports_repo.data_source == "reports"

    @transactional(data_source="reports")
    async def in_reports() -> None:
        await reports_repo.insert_all([Item(tag="joined")])  # joins the reports transaction
        current_session("reports").add(Item(tag="direct"))
        assert current_session("reports") is not get_current_session()

    @transactional
    async def both() -> None:
        await default_repo.insert_all([Item(tag="default")])
        await in_reports()  # its own transaction on the reports data source: commits
        raise RuntimeError("the default transaction rolls back")

    @transactional(data_source="reports")
    async def reports_only() -> None:
        assert current_session("reports") is not None
        with pytest.raises(NoSessionError):
            current_session()  # the default data source has no transaction here

    await reports_only()

    checkouts = {"default": 0, "reports": 0}

    def counter(name: str) -> Callable[..., None]:
        def count(*args: object) -> None:
            checkouts[name] += 1

        return count

    listeners = [(db.engine, counter("default")), (reports.engine, counter("reports"))]
    for engine, listener in listeners:
        event.listen(engine.sync_engine, "checkout", listener)
    try:
        with pytest.raises(RuntimeError):
            await both()
    finally:
        for engine, listener in listeners:
            event.remove(engine.sync_engine, "checkout", listener)
    # one connection per transaction, each from its own data source's pool
    assert checkouts == {"default": 1, "reports": 1}
    assert await committed_tags(reports.engine) == ["direct", "joined"]
    same_database = backend != "sqlite"
    assert await committed_tags(db.engine) == (["direct", "joined"] if same_database else [])


async def test_create_all_never_drops(db: DatabaseSessionFactory) -> None:
    await db.drop_all([Scratch])
    assert await db.create_all([Scratch]) == ["core_scratch"]
    repo = DbRepo(Scratch)
    await repo.insert_all([Scratch(note="keep me")])
    with statements(db.engine) as seen:
        assert await db.create_all() == []
        assert await db.create_all([Scratch]) == []
    assert not [s for s in seen if "DROP" in s.upper() or "DELETE" in s.upper()]
    assert [s.note for s in await repo.get_all()] == ["keep me"]


async def test_dropping_some_tables_keeps_types_other_tables_use(
    db: DatabaseSessionFactory,
) -> None:
    await db.drop_all([Graded])
    assert await db.create_all([Graded]) == ["core_graded"]
    await DbRepo(GradedToo).insert_all([GradedToo(grade="high")])
    await DbRepo(Graded).insert_all([Graded(grade="low")])
    assert (await DbRepo(Graded).get_all())[0].grade == "low"


async def test_engine_options_win_over_the_config(clean: None) -> None:
    factory = DatabaseSessionFactory({"database": {"url": PG_URL, "pool_size": 3}}, pool_size=7)
    assert factory.engine.pool.size() == 7  # type: ignore[attr-defined]
    assert not factory.active or DatabaseSessionFactory.get_instance() is factory
    await factory.dispose()
    assert not factory.active
