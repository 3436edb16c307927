"""Dotted field paths (``"author.username"``) for specifications, filters and sorting.

A path is zero or more relationship names followed by one column attribute, starting
from an entity: ``"title"``, ``"author.username"``, ``"tags.name"``. It is checked against
the mappers before any SQL is built; a wrong step raises
:class:`~viveka_db.errors.UnknownFieldError` naming the entity where the step failed and
its valid names (relationships and columns), so a typo is fixed from the message.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import ColumnProperty, Mapper

from viveka_db.errors import UnknownFieldError
from viveka_db.repository.paths import AttributePath

__all__ = ["FieldPath", "python_type", "resolve_field_path"]


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A checked path: the relationship steps, the column at the end and what it leads through."""

    name: str
    """The path as written (``"author.username"``)."""
    path: AttributePath
    column: ColumnProperty[Any]
    """The column property at the end of the path."""
    to_many: bool
    """Whether a step is one-to-many or many-to-many (a row may match several times)."""
    nullable: bool
    """Whether the value can be ``NULL`` (a nullable column, or a step that may lead nowhere)."""

    @property
    def is_local(self) -> bool:
        return not self.path.relationships


def _names(mapper: Mapper[Any]) -> list[str]:
    return [*(p.key for p in mapper.column_attrs), *(r.key for r in mapper.relationships)]


_resolved: dict[tuple[type[Any], str], FieldPath] = {}
"""Paths already checked: filters and specifications resolve the same few on every request."""


def resolve_field_path(model: type[Any], name: str) -> FieldPath:
    """The path ``name`` walks from ``model``; :class:`UnknownFieldError` if it goes nowhere."""
    known = _resolved.get((model, name)) if isinstance(name, str) else None  # pyright: ignore[reportUnnecessaryIsInstance]
    if known is None:
        known = _resolve(model, name)
        if len(_resolved) < 4096:
            _resolved[(model, name)] = known
    return known


def _resolve(model: type[Any], name: str) -> FieldPath:
    mapper = typing.cast("Mapper[Any]", sa_inspect(model))
    steps = name.split(".") if isinstance(name, str) else []  # pyright: ignore[reportUnnecessaryIsInstance]
    if not steps or any(not step for step in steps):
        raise UnknownFieldError(model, name, _names(mapper))
    current = mapper
    relationships: list[str] = []
    to_many = False
    nullable = False
    for step in steps[:-1]:
        prop = current.relationships.get(step)
        if prop is None:
            raise UnknownFieldError(current.class_, step, (r.key for r in current.relationships))
        to_many = to_many or bool(prop.uselist)
        nullable = nullable or bool(prop.uselist) or _optional(prop)
        relationships.append(step)
        current = prop.mapper
    last = steps[-1]
    column = current.column_attrs.get(last)
    if column is None:
        raise UnknownFieldError(current.class_, last, (p.key for p in current.column_attrs))
    nullable = nullable or any(getattr(col, "nullable", True) for col in column.columns)
    return FieldPath(name, AttributePath(tuple(relationships), last), column, to_many, nullable)


def python_type(sa_type: Any) -> Any:
    """The Python type of a column type's values (``object`` when the type does not say).

    A ``TypeDecorator`` that does not say falls back to its ``impl``; SQLAlchemy 2.0 raises
    ``NotImplementedError`` where 2.1 answers ``object``, and both mean "unknown".
    """
    try:
        found: Any = sa_type.python_type
    except NotImplementedError:
        found = object
    if found is object and hasattr(sa_type, "impl"):
        return python_type(sa_type.impl)
    return found


def _optional(prop: Any) -> bool:
    """Whether a many-to-one step may find no row (a nullable foreign key)."""
    return any(getattr(col, "nullable", True) for col in prop.local_columns)
