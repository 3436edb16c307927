"""How ``insert_all`` sends plain rows, one small inserter per bulk protocol.

:mod:`~viveka_db.repository.bulk` decides *whether* rows take a fast path; the inserter
decides *how*. Which protocol a database takes is the dialect adapter's to say (its
``bulk_insert``, :class:`~viveka_db.dialects.DialectAdapter`); the adapters sit below the
repository layer, so they name the protocol and :func:`inserter_for` maps the name to the
inserter here: ``COPY`` on PostgreSQL
(:mod:`~viveka_db.repository.pg_copy`), driver-escaped multi-row ``INSERT`` on
MySQL/MariaDB (:mod:`~viveka_db.repository.mysql_bulk`), and SQLAlchemy's executemany with
``RETURNING`` elsewhere. The native paths talk to the driver directly, past SQLAlchemy's
error handling, so their errors are mapped here
(:func:`~viveka_db.dialects.translate.driver_errors`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from viveka_db.dialects import adapter_for
from viveka_db.dialects.translate import driver_errors
from viveka_db.repository.bulk_attach import attach_alongside, detach_attached
from viveka_db.repository.bulk_plan import BulkPlan
from viveka_db.repository.mysql_bulk import mysql_insert
from viveka_db.repository.pg_copy import copy_insert, copy_supported, start_key_draw
from viveka_db.repository.rows import ColumnBatch

__all__ = ["COPY_THRESHOLD", "BulkInserter", "by_column_name", "inserter_for"]

COPY_THRESHOLD = 500
"""Below this many rows a multi-row ``INSERT`` is as fast as ``COPY`` and simpler."""


class BulkInserter:
    """The generic inserter: SQLAlchemy's executemany, keys by ``RETURNING`` in row order."""

    async def start_key_draw(
        self, conn: AsyncConnection, plan: BulkPlan, items: list[Any]
    ) -> asyncio.Future[Any] | None:
        """Start drawing generated keys on the server while rows are prepared (or not)."""
        return None

    async def insert_native(
        self,
        conn: AsyncConnection,
        plan: BulkPlan,
        batch: ColumnBatch,
        drawn: Sequence[int] | None,
        *,
        session: AsyncSession | None = None,
    ) -> bool:
        """Insert with the driver's own bulk protocol; ``False`` if it does not apply.

        ``session``: the entities' session, where a path can attach them while it waits.
        """
        return False

    async def insert_generated(
        self, conn: AsyncConnection, plan: BulkPlan, batch: ColumnBatch
    ) -> bool:
        """Insert rows whose generated key is still to come and fill the keys in."""
        pk = plan.generated_pk
        assert pk is not None
        if not conn.dialect.insert_executemany_returning_sort_by_parameter_order:
            return False
        result = await conn.execute(
            insert(plan.table).returning(pk, sort_by_parameter_order=True),
            by_column_name(plan, batch, 0, len(batch)),
        )
        batch.fill_keys(plan, [ident for (ident,) in result.all()])
        return True


class PostgresqlInserter(BulkInserter):
    """``COPY`` from ``COPY_THRESHOLD`` rows up, keys drawn from the sequence beforehand."""

    async def start_key_draw(
        self, conn: AsyncConnection, plan: BulkPlan, items: list[Any]
    ) -> asyncio.Future[Any] | None:
        return await start_key_draw(conn, plan, items)

    async def insert_native(
        self,
        conn: AsyncConnection,
        plan: BulkPlan,
        batch: ColumnBatch,
        drawn: Sequence[int] | None,
        *,
        session: AsyncSession | None = None,
    ) -> bool:
        if len(batch) < COPY_THRESHOLD or not copy_supported(plan, conn.dialect):
            return False
        copying = copy_insert(
            conn,
            plan,
            batch,
            drawn,
            alongside=None if session is None else partial(attach_alongside, session, plan, batch),
            undo=None if session is None else partial(detach_attached, session, batch),
        )
        return await mapped(copying, conn.dialect, plan)


class MysqlInserter(BulkInserter):
    """Driver-escaped multi-row ``INSERT`` (``RETURNING`` on MariaDB)."""

    async def insert_native(
        self,
        conn: AsyncConnection,
        plan: BulkPlan,
        batch: ColumnBatch,
        drawn: Sequence[int] | None,
        *,
        session: AsyncSession | None = None,
    ) -> bool:
        return await mapped(mysql_insert(conn, plan, batch), conn.dialect, plan)


class SqliteInserter(BulkInserter):
    """Generated keys without ``RETURNING`` per row (SQLite cannot sort it by parameter)."""

    async def insert_generated(
        self, conn: AsyncConnection, plan: BulkPlan, batch: ColumnBatch
    ) -> bool:
        if plan.table.kwargs.get("sqlite_autoincrement"):
            return await super().insert_generated(conn, plan, batch)
        pk = plan.generated_pk
        assert pk is not None
        # SQLite cannot return keys in parameter order, so SQLAlchemy would insert row by
        # row. Insert the first row alone: from then on this transaction holds SQLite's
        # only write lock, and SQLite gives each new row max(key) + 1, so the others'
        # keys follow the first one's.
        stmt = insert(plan.table)
        count = len(batch)
        first: Any = await conn.scalar(stmt.returning(pk), by_column_name(plan, batch, 0, 1)[0])
        if count > 1:
            await conn.execute(stmt, by_column_name(plan, batch, 1, count))
        batch.fill_keys(plan, range(int(first), int(first) + count))
        return True


_GENERIC = BulkInserter()
_BY_PROTOCOL: dict[str, BulkInserter] = {
    "copy": PostgresqlInserter(),
    "multi_row_values": MysqlInserter(),
    "keys_after_first": SqliteInserter(),
    "executemany_returning": _GENERIC,
}


def inserter_for(dialect: Dialect) -> BulkInserter:
    """The inserter of the protocol ``dialect``'s adapter names (``bulk_insert``)."""
    return _BY_PROTOCOL.get(adapter_for(dialect).bulk_insert, _GENERIC)


async def mapped(native: Awaitable[bool], dialect: Dialect, plan: BulkPlan) -> bool:
    """Await a native path; a driver error leaves it mapped like a SQLAlchemy one."""
    with driver_errors(dialect, plan.table):
        return await native


def by_column_name(
    plan: BulkPlan, batch: ColumnBatch, start: int, stop: int
) -> list[dict[str, Any]]:
    """Rows ``start:stop`` as parameter dicts by column name (without a key still to come)."""
    pairs = [
        (column.name, values)
        for column, values in zip(plan.columns, batch.columns, strict=True)
        if not (batch.missing_pk and column is plan.generated_pk)
    ]
    names = [name for name, _ in pairs]
    return [
        dict(zip(names, row, strict=True))
        for row in zip(*(values[start:stop] for _, values in pairs), strict=True)
    ]
