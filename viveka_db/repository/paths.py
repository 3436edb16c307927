"""Attribute paths through relationships, for derived query names.

``find_all_by_author_username`` names the path ``author -> username``: the parser sees a flat
list of names (``username`` of the entity, ``author_username`` through a relationship, ...)
worked out once per entity to a bounded depth, shorter paths first, so an entity's own
``author_id`` column wins over ``author`` + ``id``. A condition on a path becomes a
correlated ``EXISTS`` (SQLAlchemy's ``has()`` for many-to-one, ``any()`` for one-to-many
and many-to-many): every entity appears at most once whatever the number of related rows,
``OR`` keeps its meaning when the related row is missing, and the same criterion works in
a ``DELETE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute, Mapper
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["MAX_PATH_DEPTH", "AttributePath", "attribute_paths", "path_criterion"]

MAX_PATH_DEPTH = 3
"""How many relationships a derived query name may walk (``a_b_c_column``)."""


@dataclass(frozen=True, slots=True)
class AttributePath:
    """Relationship keys from the entity, then the column compared."""

    relationships: tuple[str, ...]
    column: str


def attribute_paths(mapper: Mapper[Any], depth: int = MAX_PATH_DEPTH) -> dict[str, AttributePath]:
    """Every name a condition may use on ``mapper``'s entity, mapped to its path."""
    paths: dict[str, AttributePath] = {}
    level: list[tuple[str, tuple[str, ...], Mapper[Any]]] = [("", (), mapper)]
    for _ in range(depth + 1):
        following: list[tuple[str, tuple[str, ...], Mapper[Any]]] = []
        for prefix, relationships, current in level:
            for prop in current.column_attrs:
                paths.setdefault(prefix + prop.key, AttributePath(relationships, prop.key))
            for rel in current.relationships:
                following.append((f"{prefix}{rel.key}_", (*relationships, rel.key), rel.mapper))
        level = following
    return paths


def path_criterion(
    entity: Any,
    mapper: Mapper[Any],
    path: AttributePath,
    build: Callable[..., ColumnElement[bool]],
    operands: Sequence[Any],
) -> ColumnElement[bool]:
    """``build(column, *operands)`` for the column at the end of ``path`` from ``entity``."""
    if not path.relationships:
        return build(getattr(entity, path.column), *operands)
    first, *rest = path.relationships
    prop = mapper.relationships[first]
    inner = path_criterion(
        prop.mapper.class_, prop.mapper, AttributePath(tuple(rest), path.column), build, operands
    )
    attribute: InstrumentedAttribute[Any] = getattr(entity, first)
    return attribute.any(inner) if prop.uselist else attribute.has(inner)
