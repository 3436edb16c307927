"""``insert_all``: many rows in few round trips, inside the caller's transaction.

The path is chosen per call:

1. PostgreSQL + asyncpg, plain rows (see :mod:`~viveka_db.repository.rows`) of
   ``COPY``-able types: ``COPY`` (:mod:`~viveka_db.repository.pg_copy`); MySQL/MariaDB:
   driver-escaped multi-row ``INSERT`` with ``RETURNING`` on MariaDB
   (:mod:`~viveka_db.repository.mysql_bulk`).
2. Plain rows elsewhere: one Core ``INSERT`` executemany, which SQLAlchemy sends as
   multi-row ``INSERT ... VALUES`` batches ("insertmanyvalues"), with ``RETURNING`` of
   generated keys where the database supports it in parameter order.
3. Anything else (relationships, inheritance, SQL-side defaults, already persistent
   entities): the unit of work (``add_all`` + ``flush``), which still batches.

Every path returns the entities, with keys and defaults filled in and persistent in the
session, as a flush leaves them. Insert events of the mapper do not fire on paths 1 and 2;
a mapper with ``before_insert``/``after_insert`` listeners always takes path 3.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert

from viveka_db.decorator.transactional import transactional
from viveka_db.repository.base import T
from viveka_db.repository.crud import CrudRepository
from viveka_db.repository.mysql_bulk import mysql_insert
from viveka_db.repository.pg_copy import copy_insert, copy_supported
from viveka_db.repository.rows import (
    BulkPlan,
    PreparedRows,
    attach_persistent,
    materialize,
    plan_for,
    prepare_rows,
)
from viveka_db.session.engine import READ_ONLY_KEY

__all__ = ["BulkRepository"]

COPY_THRESHOLD = 500
"""Below this many rows a multi-row ``INSERT`` is as fast as ``COPY`` and simpler."""


class BulkRepository(CrudRepository[T]):
    """``insert_all`` fast paths (``upsert_all`` lives in :mod:`~viveka_db.repository.upsert`)."""

    @transactional
    async def insert_all(self, entities: Iterable[T | Mapping[str, Any]]) -> list[T]:
        """Insert ``entities`` (instances or dicts of fields); returns them as entities.

        Generated keys and defaults are filled in and the entities are persistent in the
        current session, exactly as after ``add_all`` + ``flush``.
        """
        plan = plan_for(self.mapper)
        prepared = prepare_rows(plan, entities)
        if not prepared.rows:
            return []
        if prepared.fast and await self._insert_fast(plan, prepared):
            instances = materialize(plan, prepared)
            attach_persistent(self.db, self.mapper, instances)
            return instances
        return await self._insert_unit_of_work(prepared)

    async def _insert_fast(self, plan: BulkPlan, prepared: PreparedRows) -> bool:
        if self.db.info.get(READ_ONLY_KEY):
            return False  # the unit of work raises the read-only error
        conn = await self.db.connection()
        dialect = conn.dialect
        rows = prepared.rows
        if (
            dialect.name == "postgresql"
            and len(rows) >= COPY_THRESHOLD
            and copy_supported(plan, dialect)
            and await copy_insert(conn, plan, prepared)
        ):
            return True
        if dialect.name in ("mysql", "mariadb") and await mysql_insert(conn, plan, prepared):
            return True
        stmt = insert(plan.table)
        if not prepared.missing_pk:
            await conn.execute(stmt, self._by_column_name(plan, rows))
            return True
        if prepared.missing_pk != len(rows):
            return False  # mixed given and generated keys: let the unit of work sort it out
        pk = plan.generated_pk
        assert pk is not None
        key = self.mapper.get_property_by_column(pk).key
        if dialect.name == "sqlite" and not plan.table.kwargs.get("sqlite_autoincrement"):
            # SQLite cannot return keys in parameter order, so SQLAlchemy would insert row by
            # row. Insert the first row alone: from then on this transaction holds SQLite's
            # only write lock, and SQLite gives each new row max(key) + 1, so the others'
            # keys follow the first one's.
            params = self._by_column_name(plan, rows)
            first: Any = await conn.scalar(stmt.returning(pk), params[0])
            rows[0][key] = first
            for offset, row in enumerate(rows[1:], start=int(first) + 1):
                row[key] = offset
            if len(rows) > 1:
                await conn.execute(stmt, self._by_column_name(plan, rows[1:]))
            return True
        if not dialect.insert_executemany_returning_sort_by_parameter_order:
            return False
        result = await conn.execute(
            stmt.returning(pk, sort_by_parameter_order=True), self._by_column_name(plan, rows)
        )
        for row, (ident,) in zip(rows, result.all(), strict=True):
            row[key] = ident
        return True

    @staticmethod
    def _by_column_name(plan: BulkPlan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        renames = [(k, c.name) for k, c in zip(plan.keys, plan.columns, strict=True) if k != c.name]
        if not renames:
            return rows
        out: list[dict[str, Any]] = []
        for row in rows:
            copy = dict(row)
            for key, name in renames:
                if key in copy:
                    copy[name] = copy.pop(key)
            out.append(copy)
        return out

    async def _insert_unit_of_work(self, prepared: PreparedRows) -> list[T]:
        model = self.model
        items: list[T] = [
            model(**row) if instance is None else instance
            for row, instance in zip(prepared.rows, prepared.instances, strict=True)
        ]
        self.db.add_all(items)
        await self.db.flush()
        return items
