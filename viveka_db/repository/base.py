"""What every repository operation stands on: the model, the session, field lookup.

Repositories are shared singletons in real services, so nothing request-specific is ever
stored on ``self``: ``self.db`` is looked up in the task's context on each access.
"""

from __future__ import annotations

import typing
from typing import Any, Generic, TypeVar

from sqlalchemy import false
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapper
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.context.data_source import DATA_SOURCE_ATTR
from viveka_db.context.db_context import active_scope
from viveka_db.decorator.transactional import SessionAccessor
from viveka_db.errors import EntityDefinitionError, UnknownFieldError
from viveka_db.repository.column_types import NO_MATCH, storable
from viveka_db.repository.direct_get import direct_get, reads_directly
from viveka_db.repository.lazy_guard import watch_entity

__all__ = ["RepositoryBase", "T", "model_from_generic"]

T = TypeVar("T")


def model_from_generic(cls: type) -> type[Any] | None:
    """``class UserRepo(DbRepo[User])`` -> ``User``."""
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            args = typing.get_args(base)
            origin = typing.get_origin(base)
            if args and isinstance(origin, type) and issubclass(origin, RepositoryBase):
                candidate = args[0]
                if isinstance(candidate, type):
                    return candidate
    return None


class RepositoryBase(Generic[T]):
    """The model, the current session and field resolution shared by all repository parts."""

    db = SessionAccessor()
    """The current task's ``AsyncSession`` (resolved from the context on each access)."""

    model: type[T]

    def __init__(self, model: type[T] | None = None, *, data_source: str = "default") -> None:
        resolved = model if model is not None else model_from_generic(type(self))
        if resolved is None:
            raise EntityDefinitionError(
                f"{type(self).__name__} does not know its entity; pass it as "
                f"super().__init__(Entity) or declare the class as DbRepo[Entity]"
            )
        mapper = sa_inspect(resolved, raiseerr=False)
        if not isinstance(mapper, Mapper):
            raise EntityDefinitionError(
                f"{getattr(resolved, '__name__', resolved)!r} is not a mapped entity; decorate it "
                "with @entity @table('name') (or give it a __tablename__) before using it in a "
                "repository"
            )
        self.model = typing.cast("type[T]", resolved)
        self._key_columns = tuple(mapper.primary_key)
        watch_entity(self._mapper)
        setattr(self, DATA_SOURCE_ATTR, data_source)

    @property
    def data_source(self) -> str:
        return typing.cast(str, getattr(self, DATA_SOURCE_ATTR))

    @property
    def _mapper(self) -> Mapper[Any]:
        return typing.cast("Mapper[Any]", sa_inspect(self.model))

    def _column_for(self, field: object) -> ColumnElement[Any]:
        """The mapped column attribute that ``field`` names.

        ``field`` may be an attribute name, a column name, or the mapped attribute itself
        (``User.email``). Anything else raises :class:`UnknownFieldError` listing the valid
        names, before any SQL is built.
        """
        mapper = self._mapper
        asked: object = field  # for the error message (not narrowed below)
        if isinstance(field, InstrumentedAttribute):
            owner: object = field.class_
            if isinstance(owner, type) and issubclass(self.model, owner):
                key = field.key
                if key in mapper.column_attrs:
                    return typing.cast("ColumnElement[Any]", getattr(self.model, key))
        elif isinstance(field, str):
            if field in mapper.column_attrs:
                return typing.cast("ColumnElement[Any]", getattr(self.model, field))
            for prop in mapper.column_attrs:
                if any(getattr(col, "name", None) == field for col in prop.columns):
                    return typing.cast("ColumnElement[Any]", getattr(self.model, prop.key))
        raise UnknownFieldError(self.model, asked, (prop.key for prop in mapper.column_attrs))

    def _dialect(self, session: AsyncSession | None = None) -> Dialect | None:
        """The database dialect of ``session`` (default: the current one; ``None`` if it has
        no engine)."""
        if session is None:
            session = self.db
        bind = session.bind
        if bind is not None:
            return bind.dialect
        try:
            return session.get_bind(self._mapper).dialect
        except UnboundExecutionError:
            return None

    def _primary_key_values(self, ident: Any, dialect: Dialect | None = None) -> list[Any] | None:
        """The primary key values ``ident`` (a value, tuple or dict) names, as the columns
        store them; ``None`` when no row can have them (an id outside the column's range,
        ``"abc"`` for an integer key: see :mod:`~viveka_db.repository.column_types`).
        ``dialect``: the current session's unless given."""
        columns = self._key_columns
        raw: Any = ident  # not narrowed below, so its items stay Any
        if dialect is None:
            dialect = self._dialect()
        if len(columns) == 1 and not isinstance(ident, dict | tuple | list):  # the usual case
            stored = storable(columns[0], raw, dialect)
            return None if stored is NO_MATCH else [stored]
        values: list[Any]
        if isinstance(ident, dict):
            values = [raw[col.key] for col in columns]
        elif isinstance(ident, tuple | list):
            values = list(raw)
        else:
            values = [ident]
        if len(values) != len(columns):
            raise ValueError(
                f"{self.model.__name__} has a {len(columns)}-column primary key "
                f"({', '.join(str(c.key) for c in columns)}); got {ident!r}"
            )
        stored = [storable(col, value, dialect) for col, value in zip(columns, values, strict=True)]
        return None if any(value is NO_MATCH for value in stored) else stored

    async def _load_by_key(
        self, ident: Any, execution_options: dict[str, Any] | None = None
    ) -> T | None:
        """``session.get`` of primary key ``ident`` (no view criteria; the identity map
        first); ``None`` without SQL when no row can have that key. ``execution_options``
        reach the session's row filter (a view that shows soft-deleted rows says so).

        In a read-only transaction that has no session yet, the read may skip the session
        (see :mod:`~viveka_db.repository.direct_get`)."""
        if not execution_options:
            scope = active_scope(self.data_source)
            if reads_directly(scope):
                assert scope is not None
                found = await direct_get(scope, self._mapper, ident, self._primary_key_values)
                if found is not NotImplemented:
                    return typing.cast("T | None", found)
        session = self.db
        key = self._primary_key_values(ident, self._dialect(session))
        if key is None:
            return None
        ident_key = key[0] if len(key) == 1 else tuple(key)
        return await session.get(self.model, ident_key, execution_options=execution_options or {})

    def _primary_key_criteria(self, ident: Any) -> list[ColumnElement[bool]]:
        """``WHERE`` criteria matching primary key ``ident`` (``FALSE`` if no row can)."""
        values = self._primary_key_values(ident)
        if values is None:
            return [false()]
        return [col == value for col, value in zip(self._key_columns, values, strict=True)]
