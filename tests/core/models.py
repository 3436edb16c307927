"""Entities of the core tests (every table name starts with ``core_``)."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKeyConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from viveka_db import DbRepo, VivekaDbBase, entity, repository, table


@entity
@table("core_items")
class Item(VivekaDbBase):
    """Classic ``Column`` style."""

    id = Column(Integer, primary_key=True)
    tag = Column(String(50), nullable=False, index=True)
    n = Column(Integer, nullable=False, default=0)


@table("core_codes")
@entity
class Code(VivekaDbBase):
    """``Mapped[...]`` style, decorators in reversed order; ``code`` is unique."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    label: Mapped[str | None] = mapped_column("label_text", default=None)


@entity
@table("core_parents")
class Parent(VivekaDbBase):
    id = Column(Integer, primary_key=True)


@entity
@table("core_children")
class Child(VivekaDbBase):
    """Its foreign key is checked at COMMIT (PostgreSQL, SQLite), not at flush."""

    __table_args__ = (
        # MariaDB has no deferred constraints (its tests force the commit failure otherwise)
        ForeignKeyConstraint(
            ["parent_id"], ["core_parents.id"], deferrable=True, initially="DEFERRED"
        ).ddl_if(dialect=("postgresql", "sqlite")),
    )

    id = Column(Integer, primary_key=True)
    parent_id = Column(Integer, nullable=False)


@repository
class ItemRepo(DbRepo[Item]):
    """A shared repository instance, as real services hold them."""


def tags(items: list[Item]) -> list[str]:
    return sorted(str(item.tag) for item in items)
