"""``delete_by_*``: one ``DELETE ... WHERE`` (soft delete: one ``UPDATE``), no rows loaded.

Deleting through the ORM loads every row and deletes them one by one; two concurrent
identical deletes then warn ("expected to delete 2 rows, 0 were matched") and, for a
versioned entity, the second raises :class:`~viveka_db.OptimisticLockError`. A set-based
statement has none of that: it returns the number of rows it changed, rows already gone
simply do not count, and running it twice is harmless. ORM cascades and version checks do
not run, so related rows rely on the database's ``ON DELETE`` actions.

Entities of the class that are in the session are kept consistent: where the database
can return the affected keys (``RETURNING``) in the same statement, SQLAlchemy removes or
updates exactly those; elsewhere (MySQL, MariaDB's ``UPDATE``) every instance of the class
in the session is expired instead, so no extra ``SELECT`` is sent first. In async code read
an expired attribute with ``await obj.awaitable_attrs.<name>`` (or ``session.refresh``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.base.types import utc_now

__all__ = ["delete_where"]


async def delete_where(
    session: AsyncSession,
    mapper: Mapper[Any],
    criteria: Sequence[ColumnElement[bool]],
    *,
    soft: bool,
) -> int:
    """Delete (``soft``: mark ``deleted_at`` on) the rows matching ``criteria``; the count."""
    model = mapper.class_
    stmt: Any
    expired: list[str] | None = None  # None: every attribute
    if soft:
        deleted_at: Any = model.deleted_at
        values: dict[Any, Any] = {deleted_at: utc_now()}
        expired = ["deleted_at", "updated_at"]
        version = mapper.version_id_col
        if version is not None:
            values[version] = version + 1
            expired.append(mapper.get_property_by_column(version).key)
        stmt = update(model).where(*criteria, deleted_at.is_(None)).values(values)
    else:
        stmt = delete(model).where(*criteria)
    dialect = (await session.connection()).dialect
    returning = dialect.update_returning if soft else dialect.delete_returning
    result: Any = await session.execute(
        stmt, execution_options={"synchronize_session": "fetch" if returning else False}
    )
    if not returning:
        present = [obj for obj in session.identity_map.values() if isinstance(obj, model)]
        for obj in present:
            session.expire(obj, [a for a in expired if hasattr(obj, a)] if expired else None)
    return int(result.rowcount)
