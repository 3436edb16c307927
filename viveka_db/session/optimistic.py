"""Turning SQLAlchemy's anonymous ``StaleDataError`` into :class:`OptimisticLockError`.

SQLAlchemy reports a version conflict as "UPDATE statement on table 'x' expected to update
1 row(s); 0 were matched", naming no entity. Every flush of our sessions (explicit, auto,
or the one inside COMMIT) goes through :meth:`VivekaSession.flush
<viveka_db.session.engine.VivekaSession.flush>`, which notes the versioned entities it is
about to write and, on a conflict, raises an error naming the one on that table. The
repository, which knows exactly which entity it merges, uses :func:`lock_error` directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from viveka_db.errors import OptimisticLockError

__all__ = ["lock_error", "stale_write_error", "versioned_pending"]

_TABLE = re.compile(r"on table '([^']+)'")


def lock_error(entity: object, cause: StaleDataError) -> OptimisticLockError:
    """An :class:`OptimisticLockError` naming ``entity``'s class and primary key."""
    return OptimisticLockError(type(entity), _identity(entity), str(cause))


def versioned_pending(session: Session) -> list[object]:
    """The versioned entities the next flush updates or deletes (cheap when there are none)."""
    return [
        obj
        for group in (session.dirty, session.deleted)
        for obj in group
        if sa_inspect(obj).mapper.version_id_col is not None
    ]


def stale_write_error(
    candidates: Iterable[object], cause: StaleDataError
) -> OptimisticLockError | None:
    """The error naming the entity on the table ``cause`` names; ``None`` if none is known.

    With several candidates on that table the entity class is still certain but the row is
    not, so ``ident`` is ``None`` rather than a guess.
    """
    match = _TABLE.search(str(cause))
    table = match.group(1) if match else None
    on_table = [obj for obj in candidates if table is None or table in _tables_of(obj)]
    if not on_table:
        return None
    if len(on_table) == 1:
        return lock_error(on_table[0], cause)
    return OptimisticLockError(type(on_table[0]), None, str(cause))


def _tables_of(entity: object) -> set[str]:
    return {getattr(t, "name", "") for t in sa_inspect(entity).mapper.tables}


def _identity(entity: object) -> Any:
    state: Any = sa_inspect(entity, raiseerr=False)
    if state is None:
        return None
    ident = state.identity
    if ident is None:
        ident = tuple(state.dict.get(col.key) for col in state.mapper.primary_key)
    parts: list[Any] = list(ident)
    return parts[0] if len(parts) == 1 else tuple(parts)
