"""``VivekaDbBase``: the one declarative base (one ``MetaData``) every entity derives from.

A subclass without a table name is abstract (an intermediary class or a mixin-like base)
and is never mapped on its own; ``@table(name)`` later sets the name and maps it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import MetaData, String, Table, inspect
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase

__all__ = ["LIBRARY_TABLE", "NAMING_CONVENTION", "VivekaDbBase", "application_tables"]

#: Deterministic constraint names, so Alembic migrations are stable across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


LIBRARY_TABLE = "viveka_db.library_table"
"""``Table.info`` key marking a table viveka_db itself defines (the outbox): it is created
and migrated with the application's tables, but :meth:`DatabaseSessionFactory.drop_all`
without arguments keeps it, and an autogenerate that finds no entity refuses to run."""


def application_tables(metadata: MetaData) -> list[Table]:
    """The tables of ``metadata`` in dependency order, without viveka_db's own tables."""
    return [table for table in metadata.sorted_tables if not table.info.get(LIBRARY_TABLE)]


def _declares_table(cls: type) -> bool:
    namespace = cls.__dict__
    return (
        "__tablename__" in namespace
        or "__table__" in namespace
        or "__mapper_args__" in namespace  # single-table inheritance of a mapped parent
    )


class VivekaDbBase(AsyncAttrs, DeclarativeBase):
    """Shared declarative base: classic ``Column`` attributes and ``Mapped[...]`` both work.

    ``Mapped[str]`` without a length becomes ``VARCHAR`` on PostgreSQL and SQLite and
    ``VARCHAR(255)`` on MySQL/MariaDB (which require a length), so one model runs on all three.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: String().with_variant(String(255), "mysql", "mariadb"),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "__abstract__" not in cls.__dict__ and not _declares_table(cls):
            cls.__abstract__ = True
        super().__init_subclass__(**kwargs)

    def __repr__(self) -> str:
        """``User(id=1)``: the primary key only, so a repr never triggers a lazy load."""
        state = inspect(self, raiseerr=False)
        mapper = getattr(state, "mapper", None)
        if mapper is None:
            return object.__repr__(self)
        values = ", ".join(
            f"{col.key}={state.dict.get(col.key)!r}" for col in mapper.primary_key if col.key
        )
        return f"{type(self).__name__}({values})"
