"""Turning SQLAlchemy's anonymous ``StaleDataError`` into :class:`OptimisticLockError`.

SQLAlchemy reports a version conflict as "expected to update 1 row(s); 0 were matched",
without saying which entity. The repository knows which entity it was writing, so it
flushes and merges through these helpers and raises an error that names it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from viveka_db.errors import OptimisticLockError

__all__ = ["flush_checked", "lock_error", "merge_checked"]

E = TypeVar("E")


def lock_error(entity: object, cause: StaleDataError) -> OptimisticLockError:
    """An :class:`OptimisticLockError` naming ``entity``'s class and primary key."""
    state: Any = sa_inspect(entity, raiseerr=False)
    ident: Any = None
    if state is not None:
        ident = state.identity
        if ident is None:
            values: list[Any] = [state.dict.get(col.key) for col in state.mapper.primary_key]
            ident = tuple(values)
        parts: list[Any] = list(ident) if isinstance(ident, tuple) else [ident]  # pyright: ignore[reportUnknownArgumentType]
        ident = parts[0] if len(parts) == 1 else tuple(parts)
    return OptimisticLockError(type(entity), ident, str(cause))


async def flush_checked(session: AsyncSession, entity: object) -> None:
    """``session.flush()``; a version conflict is reported against ``entity``."""
    try:
        await session.flush()
    except OptimisticLockError:
        raise
    except StaleDataError as exc:
        raise lock_error(entity, exc) from exc


async def merge_checked(session: AsyncSession, entity: E) -> E:
    """``session.merge(entity)``; merging an outdated version raises OptimisticLockError."""
    try:
        return await session.merge(entity)
    except OptimisticLockError:
        raise
    except StaleDataError as exc:
        raise lock_error(entity, exc) from exc
