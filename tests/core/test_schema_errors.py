"""A missing table or column is a ``SchemaError`` naming it and saying how to create it.

It stays an instance of the SQLAlchemy class it replaces (``ProgrammingError`` on
PostgreSQL and MariaDB, ``OperationalError`` on SQLite), like every mapped error.
"""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import String, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import (
    DatabaseError,
    DatabaseSessionFactory,
    DbRepo,
    IntPKMixin,
    SchemaError,
    VivekaDbBase,
    VivekaDbError,
    current_session,
    entity,
    table,
    transactional,
)

REPLACED = {"postgresql": ProgrammingError, "mariadb": ProgrammingError, "sqlite": OperationalError}
# the drivers' own classes for an unknown column (pymysql: OperationalError for errno 1054)
REPLACED_COLUMN = {**REPLACED, "mariadb": OperationalError}


@entity
@table("core_schema_widgets")
class Widget(VivekaDbBase, IntPKMixin):
    name: Mapped[str] = mapped_column(String(50))
    colour: Mapped[str | None] = mapped_column(String(20), default=None)


class WidgetRepo(DbRepo[Widget]):
    pass


widgets = WidgetRepo()


@pytest.fixture
async def no_widget_table(db: DatabaseSessionFactory) -> AsyncIterator[DatabaseSessionFactory]:
    """The entity is mapped, but its table was never created (migrations not applied)."""
    await db.drop_all([Widget])
    yield db
    await db.create_all([Widget])


@pytest.fixture
async def no_colour_column(db: DatabaseSessionFactory) -> AsyncIterator[DatabaseSessionFactory]:
    """The table exists without the ``colour`` column added by a later migration."""
    await db.drop_all([Widget])
    async with db.engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE core_schema_widgets (id INTEGER PRIMARY KEY, name VARCHAR(50))")
        )
    yield db
    await db.drop_all([Widget])
    await db.create_all([Widget])


async def test_a_missing_table_names_itself_and_the_fix(
    no_widget_table: DatabaseSessionFactory, backend: str
) -> None:
    with pytest.raises(SchemaError) as caught:
        await widgets.get_by_id(1)
    error = caught.value
    assert isinstance(error, VivekaDbError) and isinstance(error, DatabaseError)
    assert isinstance(error, REPLACED[backend])  # existing `except OperationalError` still works
    assert isinstance(error, ProgrammingError)  # PEP 249's class for it, on every database
    assert isinstance(error, DBAPIError) and error.orig is not None
    assert error.table == "core_schema_widgets"
    assert error.column is None
    assert "table core_schema_widgets does not exist" in str(error)
    assert "viveka-db db upgrade" in str(error)


async def test_a_missing_column_names_it_on_reads_and_writes(
    no_colour_column: DatabaseSessionFactory, backend: str
) -> None:
    with pytest.raises(SchemaError) as caught:
        await widgets.save(Widget(name="secret-widget-name", colour="red"))
    error = caught.value
    assert isinstance(error, REPLACED_COLUMN[backend])
    assert isinstance(error, ProgrammingError)  # PEP 249's class for it, on every database
    assert error.column == "colour"
    assert error.table == "core_schema_widgets"
    assert "column core_schema_widgets.colour does not exist" in str(error)
    assert "secret-widget-name" not in str(error)  # names only, never values
    with pytest.raises(SchemaError) as read:
        await widgets.get_all()
    assert read.value.column == "colour"
    assert isinstance(read.value, REPLACED_COLUMN[backend])


async def test_raw_sql_on_a_missing_table_is_mapped_too(no_widget_table: object) -> None:
    @transactional
    async def raw() -> None:
        await current_session().execute(text("SELECT name FROM core_schema_widgets"))

    with pytest.raises(SchemaError, match="table core_schema_widgets"):
        await raw()


async def test_a_schema_error_pickles_with_its_fields(no_colour_column: object) -> None:
    with pytest.raises(SchemaError) as caught:
        await widgets.get_all()
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is SchemaError
    assert (copy.table, copy.column) == ("core_schema_widgets", "colour")
    assert str(copy) == str(caught.value)
