"""Test data: ``factory_for(Entity)`` builds valid entities and persists them in batches.

.. code-block:: python

    users = factory_for(User, seed=7)
    ada = users.build(username="ada")          # not persisted
    rows = await users.create_batch(500)       # insert_all, in the current transaction

Values come from polyfactory, by column type and length. Columns the database or the
entity fills (autoincrement keys, ``default=`` / ``server_default=`` such as timestamps,
versions, ``deleted_at``) are left to them; unique string columns get a random suffix so
a batch never collides; timezone-aware timestamps are aware (UTC). Give a value for any
field as a keyword to override it.

Required parents: for every foreign key whose columns are ``NOT NULL`` (a many-to-one the
row cannot exist without), :meth:`EntityFactory.create_batch` first creates one parent
per row with the parent's own factory (recursively), unless you pass the relationship
(``author=ada``) or the key columns (``author_id=ada.id``). :meth:`EntityFactory.build`
attaches built parents through the relationship where there is one, so ``save`` inserts
both. Nullable foreign keys stay ``None``.

Rows are written with the repository's ``insert_all`` in the current transaction: inside
a test using the ``db_session`` fixture they are rolled back with everything else. The
same ``seed`` gives the same values, parents included.
"""

from __future__ import annotations

import random
import typing
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

try:
    from faker import Faker
    from polyfactory import Use
    from polyfactory.factories.sqlalchemy_factory import SQLAlchemyFactory
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'viveka_db.testing.factory_for needs polyfactory: pip install "viveka-db[testing]"'
    ) from exc
from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper

from viveka_db.base.db_repo import DbRepo
from viveka_db.repository.field_paths import python_type

__all__ = ["EntityFactory", "factory_for"]

T = TypeVar("T")

_UNIQUE_SUFFIX_BITS = 64


def _filled_elsewhere(column: Column[Any]) -> bool:
    """Whether the database or the entity fills ``column`` when it is not given."""
    if column.default is not None or column.server_default is not None:
        return True
    table: Any = column.table
    return column is table.autoincrement_column


def _required_parents(mapper: Mapper[Any]) -> list[ForeignKeyConstraint]:
    """Foreign keys every row needs: all their columns ``NOT NULL`` and without a default."""
    table: Any = mapper.local_table
    return [
        fk
        for fk in sorted(
            table.foreign_key_constraints, key=lambda c: [col.key for col in c.columns]
        )
        if all(not col.nullable and not _filled_elsewhere(col) for col in fk.columns)
    ]


def _entity_of(mapper: Mapper[Any], table: Any) -> type[Any]:
    for candidate in mapper.registry.mappers:
        if candidate.local_table is table:
            return candidate.class_
    raise TypeError(
        f"{mapper.class_.__name__} references table {table.name!r}, which no mapped entity of "
        "this registry maps; pass the key columns yourself"
    )


class EntityFactory(Generic[T]):
    """Builds and persists valid ``T`` entities; get one with :func:`factory_for`."""

    def __init__(self, entity: type[T], *, seed: int | None = None, _stack: tuple[type, ...] = ()):
        self.entity = entity
        self.mapper = typing.cast("Mapper[Any]", sa_inspect(entity))
        self._stack = (*_stack, entity)
        self._seed = seed
        self._random = random.Random(seed)
        self._faker = Faker()
        self._faker.seed_instance(seed)
        self._inner = self._polyfactory()
        self._parents: dict[ForeignKeyConstraint, EntityFactory[Any]] = {}
        self._repo: DbRepo[T] = DbRepo(entity)

    def seed(self, seed: int) -> None:
        """Start over from ``seed``: the same calls then give the same values again."""
        self._seed = seed
        self._random.seed(seed)
        self._faker.seed_instance(seed)
        for fk, parent in self._parents.items():
            parent.seed(_derived_seed(seed, fk))

    def seed_random(self, seed: int) -> None:
        """:meth:`seed` under polyfactory's name for it."""
        self.seed(seed)

    # -- building -----------------------------------------------------------------
    def build(self, **values: Any) -> T:
        """One entity, not persisted; required parents attached through their relationships."""
        entity = self._inner.build(**values)
        for fk in _required_parents(self.mapper):
            relationship = self._relationship_for(fk)
            given = relationship in values or all(col.key in values for col in fk.columns)
            if relationship is not None and not given:
                setattr(entity, relationship, self._parent_factory(fk).build())
        return entity

    def build_batch(self, size: int, **values: Any) -> list[T]:
        """``size`` entities, not persisted."""
        return [self.build(**values) for _ in range(size)]

    # -- persisting ---------------------------------------------------------------
    async def create(self, **values: Any) -> T:
        """One entity, inserted with its required parents in the current transaction."""
        (created,) = await self.create_batch(1, **values)
        return created

    async def create_batch(self, size: int, **values: Any) -> list[T]:
        """``size`` entities inserted with ``insert_all`` (parents first, one per row).

        Runs in the current transaction (the test's, under ``db_session``), or in one of
        its own when there is none.
        """
        asked: object = size  # checked at run time: it may come from anywhere
        if type(asked) is not int or size < 0:
            raise ValueError(f"create_batch needs a size >= 0, got {size!r}")
        keys: list[dict[str, Any]] = [{} for _ in range(size)]
        fields = dict(values)
        for fk in _required_parents(self.mapper):
            relationship = self._relationship_for(fk)
            if all(col.key in fields for col in fk.columns):
                continue
            if relationship is not None and relationship in fields:
                parent = fields.pop(relationship)
                for row in keys:
                    row.update(_key_values(fk, parent))
                continue
            parents = await self._parent_factory(fk).create_batch(size)
            for row, parent in zip(keys, parents, strict=True):
                row.update(_key_values(fk, parent))
        items = [self._inner.build(**{**fields, **row}) for row in keys]
        return await self._repo.insert_all(items)

    # -- internals -------------------------------------------------------------------
    def _relationship_for(self, fk: ForeignKeyConstraint) -> str | None:
        local = set(fk.columns)
        for rel in self.mapper.relationships:
            if (
                not rel.uselist
                and set(rel.local_columns) == local
                and rel.direction.name == "MANYTOONE"
            ):
                return rel.key
        return None

    def _parent_factory(self, fk: ForeignKeyConstraint) -> EntityFactory[Any]:
        known = self._parents.get(fk)
        if known is None:
            parent = _entity_of(self.mapper, fk.referred_table)
            if parent in self._stack:
                chain = " -> ".join(e.__name__ for e in (*self._stack, parent))
                raise TypeError(
                    f"required parents form a cycle ({chain}); pass "
                    f"{', '.join(col.key for col in fk.columns)}= yourself"
                )
            seed = self._parent_seed(fk)
            known = self._parents[fk] = EntityFactory(parent, seed=seed, _stack=self._stack)
        return known

    def _parent_seed(self, fk: ForeignKeyConstraint) -> int | None:
        """The seed of a parent's factory: fixed by this one's seed and the key, not by order."""
        return None if self._seed is None else _derived_seed(self._seed, fk)

    def _polyfactory(self) -> type[SQLAlchemyFactory[T]]:
        table: Any = self.mapper.local_table
        skipped = {
            prop.key
            for prop in self.mapper.column_attrs
            for col in prop.columns
            if isinstance(col, Column) and (_filled_elsewhere(col) or col.foreign_keys)
        }
        overrides: dict[str, Any] = {}
        for prop in self.mapper.column_attrs:
            col = prop.columns[0]
            if prop.key in skipped or not isinstance(col, Column) or col.table is not table:
                continue
            generate = self._generator(col)
            if generate is not None:
                overrides[prop.key] = Use(generate)
        skipped_columns = {self.mapper.column_attrs[key].columns[0].key for key in skipped}

        def should_column_be_set(cls: type, column: Any) -> bool:
            return isinstance(column, Column) and column.key not in skipped_columns

        namespace: dict[str, Any] = {
            "__model__": self.entity,
            "__set_relationships__": False,
            "__set_association_proxy__": False,
            "__random__": self._random,
            "__faker__": self._faker,
            "should_column_be_set": classmethod(should_column_be_set),
            **overrides,
        }
        factory = type(f"{self.entity.__name__}Factory", (SQLAlchemyFactory,), namespace)
        return typing.cast("type[SQLAlchemyFactory[T]]", factory)

    def _generator(self, column: Column[Any]) -> Any:
        sa_type: Any = column.type
        if isinstance(sa_type, String) and _is_unique(column):
            length = sa_type.length or 255
            return lambda: _unique_text(column.key, length, self._random)
        if getattr(sa_type, "timezone", False) and python_type(sa_type) is datetime:
            return lambda: self._faker.date_time(tzinfo=UTC).replace(microsecond=0)
        return None


def _derived_seed(seed: int, fk: ForeignKeyConstraint) -> int:
    columns = ",".join(col.key for col in fk.columns)
    return zlib.crc32(f"{seed}:{columns}".encode())


def _is_unique(column: Column[Any]) -> bool:
    if column.unique or (column.primary_key and len(column.table.primary_key.columns) == 1):
        return True
    table: Any = column.table
    return any(
        list(c.columns) == [column]
        for c in (*table.constraints, *table.indexes)
        if isinstance(c, UniqueConstraint | PrimaryKeyConstraint)
        or (isinstance(c, Index) and c.unique)
    )


def _unique_text(key: str, length: int, rng: random.Random) -> str:
    suffix = f"{rng.getrandbits(_UNIQUE_SUFFIX_BITS):016x}"
    if length <= len(suffix):
        return suffix[:length]
    return f"{key[: length - len(suffix) - 1]}-{suffix}"


def _key_values(fk: ForeignKeyConstraint, parent: object) -> Mapping[str, Any]:
    parent_mapper = typing.cast("Mapper[Any]", sa_inspect(type(parent)))
    values: dict[str, Any] = {}
    for element in fk.elements:
        prop = parent_mapper.get_property_by_column(element.column)
        values[element.parent.key] = getattr(parent, prop.key)
    return values


def factory_for(entity: type[T], *, seed: int | None = None) -> EntityFactory[T]:
    """A factory of valid ``entity`` instances (``seed``: the same values on every run)."""
    return EntityFactory(entity, seed=seed)
