"""The original repository methods (same names and semantics as the seed's ``DbRepo``).

Each runs under ``@transactional``: called from a transactional method or a request it
joins that transaction; called directly it runs in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import exists as sa_exists
from sqlalchemy import func, select

from viveka_db.decorator.transactional import transactional
from viveka_db.repository.base import RepositoryBase, T

__all__ = ["CrudRepository"]


class CrudRepository(RepositoryBase[T]):
    """``insert_all``, ``get_by_id``, ``get_all``, ``update``, ``delete``, ``exists``, ..."""

    @transactional
    async def insert_all(self, entities: Iterable[T]) -> list[T]:
        """Add ``entities`` and flush; returns them with generated keys filled in."""
        items = list(entities)
        if items:
            self.db.add_all(items)
            await self.db.flush()
        return items

    @transactional
    async def get_by_id(self, id: Any) -> T | None:
        """The entity with primary key ``id``, or ``None``."""
        return await self.db.get(self.model, id)

    @transactional
    async def get_all(self, skip: int = 0, limit: int = 100) -> Sequence[T]:
        """Up to ``limit`` entities after skipping ``skip``, in primary-key order."""
        if skip < 0 or limit < 0:
            raise ValueError(f"skip and limit must be >= 0, got skip={skip!r}, limit={limit!r}")
        stmt = select(self.model).order_by(*self.mapper.primary_key).offset(skip).limit(limit)
        return list((await self.db.scalars(stmt)).all())

    @transactional
    async def update(self, entity: T) -> T:
        """Merge ``entity`` into the session and flush; returns the persistent instance."""
        merged = await self.db.merge(entity)
        await self.db.flush()
        return merged

    @transactional
    async def delete(self, id: Any) -> bool:
        """Delete the entity with primary key ``id``; ``False`` if there was none."""
        instance = await self.db.get(self.model, id)
        if instance is None:
            return False
        await self.db.delete(instance)
        await self.db.flush()
        return True

    @transactional
    async def delete_entity(self, entity: T) -> None:
        """Delete a loaded (or detached) entity instance."""
        session = self.db
        if entity not in session:
            entity = await session.merge(entity)
        await session.delete(entity)
        await session.flush()

    @transactional
    async def exists(self, id: Any) -> bool:
        """Whether an entity with primary key ``id`` exists (no row is loaded)."""
        stmt = select(sa_exists().where(*self.primary_key_criteria(id)))
        return bool(await self.db.scalar(stmt))

    @transactional
    async def count(self) -> int:
        """The number of rows of the entity's table."""
        stmt = select(func.count()).select_from(self.model)
        return int(await self.db.scalar(stmt) or 0)

    @transactional
    async def find_by_field(self, field: Any, value: Any) -> T | None:
        """The first entity whose ``field`` equals ``value`` (``field``: name or attribute)."""
        column = self.column_for(field)
        stmt = select(self.model).where(column == value).order_by(*self.mapper.primary_key).limit(1)
        return (await self.db.scalars(stmt)).first()

    @transactional
    async def find_all_by_field(self, field: Any, value: Any) -> list[T]:
        """Every entity whose ``field`` equals ``value``, in primary-key order."""
        column = self.column_for(field)
        stmt = select(self.model).where(column == value).order_by(*self.mapper.primary_key)
        return list((await self.db.scalars(stmt)).all())
