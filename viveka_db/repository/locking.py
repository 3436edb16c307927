"""Merging a detached entity, with a version conflict reported against that entity.

Conflicts found by a flush are mapped by the session itself
(:mod:`viveka_db.session.optimistic`); ``session.merge`` checks the version of the entity it
is given before any flush, so the repository names that entity here.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from viveka_db.errors import OptimisticLockError
from viveka_db.session.optimistic import lock_error
from viveka_db.tenancy.writes import check_entity_tenant

__all__ = ["lock_error", "merge_checked"]

E = TypeVar("E")


async def merge_checked(session: AsyncSession, entity: E) -> E:
    """``session.merge(entity)``; merging an outdated version raises OptimisticLockError,
    merging another tenant's row :class:`~viveka_db.TenantMismatchError`."""
    check_entity_tenant(entity)
    try:
        return await session.merge(entity)
    except OptimisticLockError:
        raise
    except StaleDataError as exc:
        raise lock_error(entity, exc) from exc
