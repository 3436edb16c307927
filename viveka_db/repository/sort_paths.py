"""Sorting by a column of a related entity (``sort="author.name"``).

Only many-to-one (and one-to-one) steps are allowed: each becomes a ``LEFT OUTER JOIN`` of
an alias of the related entity, which never multiplies rows, and a row whose related
entity is missing sorts like a ``NULL``. A to-many step would give an entity several sort
values, so it is refused with a message saying why.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, aliased
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.errors import PaginationError
from viveka_db.repository.field_paths import resolve_field_path

__all__ = ["apply_joins", "path_column"]


def path_column(model: type[Any], name: str) -> tuple[ColumnElement[Any], tuple[Any, ...]]:
    """The aliased column at the end of ``name`` and the outer joins that reach it."""
    path = resolve_field_path(model, name)
    if path.to_many:
        raise PaginationError(
            f"cannot sort {model.__name__} by {name!r}: it goes through a one-to-many or "
            "many-to-many relationship, so an entity would have several sort values; sort by "
            "a column of the entity or of a many-to-one relationship"
        )
    entity: Any = model
    mapper = typing.cast("Mapper[Any]", sa_inspect(model))
    joins: list[Any] = []
    for key in path.path.relationships:
        prop = mapper.relationships[key]
        alias = aliased(prop.mapper.class_)
        joins.append(getattr(entity, key).of_type(alias))
        entity, mapper = alias, prop.mapper
    return getattr(entity, path.path.column), tuple(joins)


def apply_joins(stmt: Select[Any], joins: Sequence[Any]) -> Select[Any]:
    """``stmt`` with the outer joins the sort keys need (in order)."""
    for join in joins:
        stmt = stmt.outerjoin(join)
    return stmt
