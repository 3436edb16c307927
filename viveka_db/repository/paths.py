"""Attribute paths through relationships, for derived query names.

``find_all_by_author_username`` names the path ``author -> username``: the parser sees a flat
list of names (``username`` of the entity, ``author_username`` through a relationship, ...)
worked out once per entity to a bounded depth, shorter paths first, so an entity's own
``author_id`` column wins over ``author`` + ``id``.

In a ``SELECT`` (finders, ``count_by``, ``exists_by``) the leading many-to-one steps of a
path become ``LEFT OUTER JOIN`` s (one aliased join per distinct prefix, shared by every
condition that uses it: a many-to-one join never multiplies rows, and an outer join keeps
``OR`` meaningful when the related row is missing). A one-to-many or many-to-many step
becomes a correlated ``EXISTS`` (SQLAlchemy's ``any()``), so an entity with several
matching related rows still appears once. In a ``DELETE`` (no portable join) every step is
an ``EXISTS`` (``has()`` / ``any()``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_
from sqlalchemy.orm import InstrumentedAttribute, Mapper, aliased
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.tenancy.filters import related_criteria

__all__ = ["MAX_PATH_DEPTH", "AttributePath", "JoinPlan", "attribute_paths", "path_criterion"]

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


class JoinPlan:
    """The outer joins that many-to-one path prefixes need, one alias per prefix."""

    def __init__(self, entity: Any, mapper: Mapper[Any]) -> None:
        self._root = (entity, mapper)
        self._aliases: dict[tuple[str, ...], tuple[Any, Mapper[Any]]] = {}
        self._joins: list[Any] = []

    def entity_for(self, prefix: tuple[str, ...]) -> tuple[Any, Mapper[Any]]:
        """The (aliased) entity that relationship ``prefix`` leads to, joined once."""
        if not prefix:
            return self._root
        known = self._aliases.get(prefix)
        if known is None:
            parent, parent_mapper = self.entity_for(prefix[:-1])
            prop = parent_mapper.relationships[prefix[-1]]
            alias = aliased(prop.mapper.class_)
            self._joins.append(getattr(parent, prefix[-1]).of_type(alias))
            known = self._aliases[prefix] = (alias, prop.mapper)
        return known

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` with the joins, in the order they were first needed."""
        for join in self._joins:
            stmt = stmt.outerjoin(join)
        return stmt


def path_criterion(
    entity: Any,
    mapper: Mapper[Any],
    path: AttributePath,
    build: Callable[..., ColumnElement[bool]],
    operands: Sequence[Any],
    joins: JoinPlan | None = None,
) -> ColumnElement[bool]:
    """``build(column, *operands)`` for the column at the end of ``path`` from ``entity``.

    With ``joins``, the leading many-to-one steps are joined rather than nested in EXISTS.
    """
    if joins is not None:
        steps = 0
        current = mapper
        for key in path.relationships:
            prop = current.relationships[key]
            if prop.uselist:
                break
            steps += 1
            current = prop.mapper
        entity, mapper = joins.entity_for(path.relationships[:steps])
        path = AttributePath(path.relationships[steps:], path.column)
    if not path.relationships:
        return build(getattr(entity, path.column), *operands)
    first, *rest = path.relationships
    prop = mapper.relationships[first]
    inner = path_criterion(
        prop.mapper.class_, prop.mapper, AttributePath(tuple(rest), path.column), build, operands
    )
    # The row filter's criteria, explicitly: SQLAlchemy 2.0 leaves loader criteria out of
    # the EXISTS of has()/any(), which would match other tenants' or deleted rows.
    scoped = related_criteria(prop.mapper.class_)
    if scoped:
        inner = and_(inner, *scoped)
    attribute: InstrumentedAttribute[Any] = getattr(entity, first)
    return attribute.any(inner) if prop.uselist else attribute.has(inner)
