"""CRUD by primary key and by field: ``insert_all``, ``get_by_id``, ``update``, ``delete``, ...

Each runs under ``@transactional``: called from a transactional method or a request it
joins that transaction; called directly it runs in a transaction of its own. Reads honour
the view's soft-delete visibility and take ``lock=`` (see
:mod:`~viveka_db.repository.row_locks`); version conflicts raise ``OptimisticLockError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import exists as sa_exists
from sqlalchemy import select

from viveka_db.decorator.transactional import transactional
from viveka_db.errors import EntityNotFoundError
from viveka_db.repository.base import T
from viveka_db.repository.column_types import equal_to
from viveka_db.repository.limits import MAX_OFFSET, check_int
from viveka_db.repository.loading import LoadSpec
from viveka_db.repository.locking import merge_checked
from viveka_db.repository.query import Query, QueryRepository
from viveka_db.repository.row_locks import LockMode, lockable

__all__ = ["CrudRepository"]


class CrudRepository(QueryRepository[T]):
    """``insert_all``, ``get_by_id``, ``get_or_raise``, ``get_all``, ``update``, ``delete``, ..."""

    @transactional
    async def insert_all(self, entities: Iterable[T]) -> list[T]:
        """Add ``entities`` and flush; returns them with generated keys filled in."""
        items = list(entities)
        if items:
            self.db.add_all(items)
            await self.db.flush()
        return items

    @lockable
    @transactional
    async def get_by_id(
        self, id: Any, *, load: LoadSpec = None, lock: LockMode | None = None
    ) -> T | None:
        """The entity with primary key ``id``, or ``None`` (also when this view hides it).

        Without relationships to load or a row lock, an entity already in the session
        costs no SQL. An ``id`` no row can have (outside the column's range, ``"abc"`` for an
        integer key) is ``None`` without any SQL; a string of digits is taken as the integer.
        """
        if lock is None and not self._loader_options(load):
            instance = await self._load_by_key(id, self._view_options())
        else:  # a SELECT, so the relationships load even for an entity already in the session
            stmt = self.select().where(*self._primary_key_criteria(id))
            found = await self._fetch_entities(stmt, load, lock)
            instance = found[0] if found else None
        if instance is None or not self._is_visible(instance):
            return None
        return instance

    @lockable
    @transactional
    async def get_or_raise(
        self, id: Any, *, load: LoadSpec = None, lock: LockMode | None = None
    ) -> T:
        """The entity with primary key ``id``; :class:`EntityNotFoundError` if there is none.

        For callers where a missing row is an error (a 404), so they need no ``None`` check;
        rows this view hides (soft-deleted) count as missing, as in :meth:`get_by_id`.
        """
        instance = await self.get_by_id(id, load=load, lock=lock)
        if instance is None:
            raise EntityNotFoundError(self.model, id)
        return instance

    @lockable
    @transactional
    async def get_all(
        self,
        skip: int = 0,
        limit: int = 100,
        query: Query | None = None,
        *,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> list[T]:
        """Up to ``limit`` entities after skipping ``skip``, in primary-key order.

        ``query`` (from :meth:`where`) narrows the rows (its order comes first). ``skip``
        runs from 0 to ``MAX_OFFSET`` and ``limit`` from 0 to ``max_page_size``; anything
        else raises :class:`~viveka_db.PaginationError` before any SQL.
        """
        check_int("skip", skip, 0, MAX_OFFSET)
        check_int("limit", limit, 0, self.max_page_size)
        base = self._statement_for(query)
        stmt = base.order_by(*self._mapper.primary_key).offset(skip).limit(limit)
        return await self._fetch_entities(stmt, load, lock)

    @transactional
    async def update(self, entity: T) -> T:
        """Merge ``entity`` into the session and flush; returns the persistent instance."""
        merged = await merge_checked(self.db, entity)
        await self.db.flush()
        return merged

    @transactional
    async def delete(self, id: Any) -> bool:
        """Delete the row with primary key ``id``; ``False`` if this view has no such row."""
        instance = await self.get_by_id(id)
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
            entity = await merge_checked(session, entity)
        await session.delete(entity)
        await session.flush()

    @transactional
    async def exists(self, id: Any) -> bool:
        """Whether this view has a row with primary key ``id`` (no row is loaded)."""
        if self._primary_key_values(id) is None:  # no row can have it: no SQL
            return False
        condition = sa_exists().where(*self._primary_key_criteria(id), *self._exists_criteria())
        return bool(await self.db.scalar(select(condition), execution_options=self._view_options()))

    @lockable
    @transactional
    async def find_by_field(
        self, field: Any, value: Any, *, load: LoadSpec = None, lock: LockMode | None = None
    ) -> T | None:
        """The first entity whose ``field`` equals ``value`` (``field``: name or attribute)."""
        column = self._column_for(field)
        match = equal_to(column, value, self._dialect())
        stmt = self.where(match).order_by(*self._mapper.primary_key).limit(1)
        found = await self._fetch_entities(stmt, load, lock)
        return found[0] if found else None

    @lockable
    @transactional
    async def find_all_by_field(
        self, field: Any, value: Any, *, load: LoadSpec = None, lock: LockMode | None = None
    ) -> list[T]:
        """Every entity whose ``field`` equals ``value``, in primary-key order."""
        column = self._column_for(field)
        stmt = self.where(equal_to(column, value, self._dialect())).order_by(
            *self._mapper.primary_key
        )
        return await self._fetch_entities(stmt, load, lock)
