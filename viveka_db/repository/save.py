"""``save`` / ``save_all``: insert or update, whatever state the entity is in.

Like Spring Data's ``save``: a new entity (no identity yet) is inserted; a detached one
(loaded in an earlier transaction) is re-attached and updated, with its version checked
against the one it was loaded with; one whose key is set by hand is merged (a ``SELECT``
decides between insert and update). Use the returned entity afterwards: for a merge it is
the session's instance, not the argument.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, object_session

from viveka_db.decorator.transactional import transactional
from viveka_db.repository.base import T
from viveka_db.repository.crud import CrudRepository
from viveka_db.repository.locking import merge_checked

__all__ = ["SaveRepository"]


class SaveRepository(CrudRepository[T]):
    """``save`` and ``save_all``."""

    @transactional
    async def save(self, entity: T) -> T:
        """Insert or update ``entity`` and flush; returns the persistent instance."""
        saved = await self._attach(self.db, entity)
        await self.db.flush()
        return saved

    @transactional
    async def save_all(self, entities: Iterable[T]) -> list[T]:
        """:meth:`save` for each entity, with one flush for all of them."""
        session = self.db
        saved = [await self._attach(session, entity) for entity in entities]
        if saved:
            await session.flush()
        return saved

    async def _attach(self, session: AsyncSession, entity: T) -> T:
        if not isinstance(entity, self.model):
            raise TypeError(
                f"{type(self).__name__} saves {self.model.__name__} instances, "
                f"got {type(entity).__name__}"
            )
        state: InstanceState[T] = sa_inspect(entity)
        owner = object_session(entity)
        if owner is session.sync_session:
            return entity
        if state.key is None:
            pk = self._mapper.primary_key_from_instance(entity)
            if all(value is None for value in pk):
                session.add(entity)
                return entity
            return await merge_checked(session, entity)
        if owner is None and state.key not in session.sync_session.identity_map:
            session.add(entity)  # re-attach: the UPDATE checks the version it was loaded with
            return entity
        return await merge_checked(session, entity)
