"""``insert_all``: many rows in few round trips, inside the caller's transaction.

The path is chosen per call:

1. PostgreSQL + asyncpg, plain rows (see :mod:`~viveka_db.repository.bulk_plan`) of
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

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert

from viveka_db.decorator.transactional import transactional
from viveka_db.repository.base import T
from viveka_db.repository.bulk_attach import (
    attach_persistent,
    build_entities,
    collector_paused,
    materialize,
)
from viveka_db.repository.bulk_paths import COPY_THRESHOLD, by_column_name, inserter_for
from viveka_db.repository.bulk_plan import BulkPlan, plan_for
from viveka_db.repository.crud import CrudRepository
from viveka_db.repository.rows import ColumnBatch, prepare_batch
from viveka_db.session.engine import READ_ONLY_KEY
from viveka_db.transaction.implicit import note_write

__all__ = ["COPY_THRESHOLD", "BulkRepository"]


class BulkRepository(CrudRepository[T]):
    """``insert_all`` fast paths (``upsert_all`` lives in :mod:`~viveka_db.repository.upsert`)."""

    @transactional
    async def insert_all(self, entities: Iterable[T | Mapping[str, Any]]) -> list[T]:
        """Insert ``entities`` (instances or dicts of fields); returns them as entities.

        Generated keys and defaults are filled in and the entities are persistent in the
        current session, exactly as after ``add_all`` + ``flush``.
        """
        plan = plan_for(self._mapper)
        items = list(entities)
        if items:
            note_write()  # the fast paths write through the connection, past session events
        draw = await self._start_key_draw(plan, items)
        try:
            batch = prepare_batch(plan, items)
        except BaseException:
            if draw is not None:
                with contextlib.suppress(Exception):
                    await draw
            raise
        if draw is not None and batch.fast:
            await build_entities(plan, batch, draw)  # while the server draws the keys
        drawn: Sequence[int] | None = None if draw is None else await draw
        if not batch.instances:
            return []
        if batch.fast and await self._insert_fast(plan, batch, drawn):
            if batch.attached == len(batch):  # done while the COPY ran
                return batch.instances
            with collector_paused(len(batch)):
                instances = materialize(plan, batch)
                attach_persistent(
                    self.db,
                    self._mapper,
                    instances,
                    states=batch.states,
                    key_columns=batch.key_columns(plan),
                )
            return instances
        return await self._insert_unit_of_work(plan, batch)

    async def _start_key_draw(self, plan: BulkPlan, items: list[Any]) -> asyncio.Future[Any] | None:
        """On PostgreSQL, have the server draw the keys for ``COPY`` while the rows are
        prepared (:func:`~viveka_db.repository.pg_copy.start_key_draw`)."""
        if len(items) < COPY_THRESHOLD or self.db.info.get(READ_ONLY_KEY):
            return None
        conn = await self.db.connection()
        return await inserter_for(conn.dialect).start_key_draw(conn, plan, items)

    async def _insert_fast(
        self, plan: BulkPlan, batch: ColumnBatch, drawn: Sequence[int] | None = None
    ) -> bool:
        if self.db.info.get(READ_ONLY_KEY):
            return False  # the unit of work raises the read-only error
        if batch.missing_pk and all(column is plan.generated_pk for column in plan.columns):
            return False  # only a generated key: nothing to send but DEFAULT VALUES per row
        conn = await self.db.connection()
        inserter = inserter_for(conn.dialect)
        if await inserter.insert_native(conn, plan, batch, drawn, session=self.db):
            return True
        count = len(batch)
        if not batch.missing_pk:
            await conn.execute(insert(plan.table), by_column_name(plan, batch, 0, count))
            return True
        if batch.missing_pk != count:
            return False  # mixed given and generated keys: let the unit of work sort it out
        return await inserter.insert_generated(conn, plan, batch)

    async def _insert_unit_of_work(self, plan: BulkPlan, batch: ColumnBatch) -> list[T]:
        model = self.model
        rows = batch.unit_of_work_rows(plan)
        items: list[T] = (
            batch.instances
            if rows is None
            else [
                model(**row) if instance is None else instance
                for row, instance in zip(rows, batch.instances, strict=True)
            ]
        )
        self.db.add_all(items)
        await self.db.flush()
        return items
