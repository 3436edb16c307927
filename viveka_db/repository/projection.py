"""DTO projections: dataclasses, ``NamedTuple`` s and Pydantic models built from rows.

A projection class whose field names are all columns of the entity is read with a
``SELECT`` of exactly those columns (no entity, no identity map, no unloaded attribute to
trip over). One that also names relationships (``author: AuthorRead``) is built from the
loaded entities instead, with those relationships loaded.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Mapper

from viveka_db.decorator.transactional import transactional
from viveka_db.errors import UnknownFieldError
from viveka_db.repository.base import T
from viveka_db.repository.loading import LoadSpec
from viveka_db.repository.query import Query, QueryRepository
from viveka_db.repository.row_locks import LockMode, lock_rows, lockable

__all__ = [
    "Projection",
    "ProjectionRepository",
    "projection_for",
    "projection_target",
    "returned_class",
]

X = TypeVar("X")


def projection_fields(cls: type[Any]) -> tuple[str, ...] | None:
    """The field names of a dataclass, ``NamedTuple`` or Pydantic model; ``None`` otherwise."""
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)
    fields: object = getattr(cls, "_fields", None)
    if issubclass(cls, tuple) and isinstance(fields, tuple):
        return tuple(str(name) for name in typing.cast("tuple[object, ...]", fields))
    if issubclass(cls, BaseModel):
        return tuple(cls.model_fields)
    return None


@dataclass(frozen=True, slots=True)
class Projection:
    """How to read ``cls`` from an entity: its column fields and its relationship fields."""

    cls: type[Any]
    columns: tuple[str, ...]
    relationships: tuple[str, ...]

    def select(self, model: type[Any], query: Select[Any]) -> Select[Any]:
        """``query`` reduced to the projected columns (its WHERE/ORDER/LIMIT kept)."""
        columns: list[Any] = [getattr(model, name) for name in self.columns]
        return typing.cast("Select[Any]", query.with_only_columns(*columns))

    def from_mapping(self, values: typing.Mapping[Any, Any]) -> Any:
        """An instance of ``cls`` from a row of the projected columns."""
        return self.cls(**{name: values[name] for name in self.columns})

    def from_entity(self, entity: object) -> Any:
        if issubclass(self.cls, BaseModel):
            return self.cls.model_validate(entity, from_attributes=True)
        names = self.columns + self.relationships
        return self.cls(**{name: getattr(entity, name) for name in names})


def projection_for(mapper: Mapper[Any], cls: type[Any]) -> Projection:
    """The projection of ``cls`` over ``mapper``'s entity; unknown fields are refused."""
    fields = projection_fields(cls)
    if fields is None:
        raise TypeError(f"project() takes a dataclass, NamedTuple or Pydantic model, got {cls!r}")
    columns = tuple(name for name in fields if name in mapper.column_attrs)
    relationships = tuple(name for name in fields if name in mapper.relationships)
    unknown = [name for name in fields if name not in columns and name not in relationships]
    if unknown:
        valid = [*mapper.column_attrs.keys(), *mapper.relationships.keys()]
        raise UnknownFieldError(mapper.class_, unknown[0], valid)
    return Projection(cls, columns, relationships)


def returned_class(annotation: object) -> type[Any] | None:
    """``X`` of a return annotation ``list[X]``, ``Sequence[X]``, ``X | None`` or ``X``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, Sequence) and len(args) == 1:
        return returned_class(args[0])
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        return returned_class(present[0]) if len(present) == 1 else None
    return annotation if isinstance(annotation, type) else None


def projection_target(annotation: object, model: type[Any]) -> type[Any] | None:
    """The DTO class a derived method's return annotation asks for, or ``None``."""
    cls = returned_class(annotation)
    if cls is None or issubclass(cls, model) or projection_fields(cls) is None:
        return None
    return cls


def _as_list(load: LoadSpec) -> list[Any]:
    if load is None:
        return []
    return list(load) if isinstance(load, list | tuple) else [load]


class ProjectionRepository(QueryRepository[T]):
    """``project``: query results as dataclasses, ``NamedTuple`` s or Pydantic models."""

    @lockable
    @transactional
    async def project(
        self,
        cls: type[X],
        query: Query | None = None,
        load: LoadSpec = None,
        *,
        lock: LockMode | None = None,
    ) -> list[X]:
        """Instances of ``cls`` for the entities ``query`` selects (default: all, key order).

        Fields that are columns are selected alone; fields named like relationships
        (``author: AuthorRead``) make it load the entities, those relationships and
        ``load``, and build ``cls`` from them.
        """
        projection = projection_for(self._mapper, cls)
        stmt = self._statement_for(query, ordered=True)
        found = await self._project_statement(projection, stmt, load, lock)
        return typing.cast("list[X]", found)

    async def _project_statement(
        self,
        projection: Projection,
        stmt: Select[Any],
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> list[Any]:
        """Instances of ``projection`` for the rows of entity statement ``stmt``."""
        if not projection.relationships and load is None:
            columns = lock_rows(projection.select(self.model, stmt), lock, self.model)
            rows = await self.db.execute(columns)
            return [projection.from_mapping(mapping) for mapping in rows.mappings()]
        wanted = [*_as_list(load), *projection.relationships]
        entities = await self._fetch_entities(stmt, wanted, lock)
        return [projection.from_entity(entity) for entity in entities]
