"""``get_or_create_all``: the entity for each key, inserting the missing ones, race-free.

The pattern every application writes for tags (look up, insert the missing, look up
again) loses rows under concurrency unless each step is right on each database:

1. one ``SELECT ... WHERE key IN (...)`` finds the existing rows (usually all of them);
2. the missing rows are inserted with ``upsert_all(on_conflict="nothing")``, in key order
   so concurrent callers take the unique-index locks in the same order; a caller whose row
   is being inserted by another transaction waits for it to finish;
3. the rows the insert returned are used as they are: PostgreSQL and SQLite return the
   rows they inserted, MariaDB also the existing rows it kept (``RETURNING`` of
   ``ON DUPLICATE KEY UPDATE``, which locks each row it touches, in key order); only the
   rest, rows another transaction inserted meanwhile, are read again, with a *locking*
   read (``FOR SHARE`` / ``LOCK IN SHARE MODE``), which sees the latest committed row
   even under MySQL's ``REPEATABLE READ``, where a plain ``SELECT`` still shows the
   snapshot of step 1. SQLite has one writer: step 2 waits for it.

On MariaDB the locking read of step 3 was the cause of deadlocks between concurrent
callers: for a short ``IN`` list InnoDB may scan the unique index and lock every record it
passes, including rows other callers have just inserted, while those callers wait for the
rows this one inserted. With the rows taken from ``RETURNING`` it is not needed there. Lock
waits remain possible where key orders differ (Python's order against the column's
collation), so a call that owns its transaction also retries a deadlock itself (a fresh
attempt, up to five times); a joined call leaves that to the boundary that owns the
transaction (``@transactional(retry=N)``). See ``docs/contributing/decisions.md``.

Key lookups ignore soft-delete visibility: the key is unique across all rows.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.decorator.transactional import transactional
from viveka_db.repository.base import T
from viveka_db.repository.rows import plan_for
from viveka_db.repository.upsert import UpsertRepository

__all__ = ["GetOrCreateRepository"]

_IN_CHUNK = 500
"""Keys per ``IN`` list: far below every database's bound-parameter limit."""

Key = tuple[Any, ...]

_RETRIES = 5
"""Attempts after a deadlock, where the call owns its transaction (see the module notes)."""


class GetOrCreateRepository(UpsertRepository[T]):
    """``get_or_create_all``."""

    async def get_or_create_all(
        self,
        rows: Iterable[T | Mapping[str, Any]],
        key: Sequence[str] | str = ("name",),
    ) -> list[T]:
        """One entity per row of ``rows`` (dicts or entities), in input order: the existing
        row with the same ``key`` values, or the row inserted from it.

        ``key`` names the primary key or a unique constraint (checked before any SQL).
        Rows with equal keys get the same entity. Concurrent callers with overlapping
        keys all get the same entities, and no row is lost or duplicated.
        """
        return await self._get_or_create_rows(list(rows), key)  # a retry needs the rows again

    @transactional(retry=_RETRIES)
    async def _get_or_create_rows(
        self, items: list[T | Mapping[str, Any]], key: Sequence[str] | str
    ) -> list[T]:
        names = (key,) if isinstance(key, str) else tuple(key)
        self._conflict_columns(plan_for(self._mapper), names)  # refuses a non-unique key
        columns = [self._column_for(name) for name in names]
        attrs = [
            str(getattr(column, "key", name)) for column, name in zip(columns, names, strict=True)
        ]
        wanted = [_key_of(item, attrs) for item in items]
        first_row: dict[Key, T | Mapping[str, Any]] = {}
        for k, item in zip(wanted, items, strict=True):
            first_row.setdefault(k, item)
        found = await self._by_keys(columns, attrs, list(first_row), lock=False)
        missing = [k for k in first_row if k not in found]
        if missing:
            with contextlib.suppress(TypeError):  # keys of mixed types: keep input order
                missing.sort()
            written = await self.upsert_all(
                [first_row[k] for k in missing], conflict=names, on_conflict="nothing"
            )
            for entity in written:  # MariaDB returns the kept rows too: nothing left to read
                found[_key_of(entity, attrs)] = entity
            others = [k for k in missing if k not in found]  # inserted concurrently
            if others:
                found.update(await self._by_keys(columns, attrs, others, lock=True))
        lost = [k for k in first_row if k not in found]
        if lost:
            raise RuntimeError(f"get_or_create_all could not find {len(lost)} row(s) it inserted")
        return [found[k] for k in wanted]

    async def _by_keys(
        self, columns: list[ColumnElement[Any]], attrs: list[str], keys: list[Key], *, lock: bool
    ) -> dict[Key, T]:
        found: dict[Key, T] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            if len(columns) == 1:
                criterion = columns[0].in_([k[0] for k in chunk])
            else:
                criterion = tuple_(*columns).in_(chunk)
            stmt = select(self.model).where(criterion)
            if lock:
                stmt = stmt.with_for_update(read=True)
            for entity in (await self.db.scalars(stmt)).all():
                found[_key_of(entity, attrs)] = entity
        return found


def _key_of(item: object, attrs: list[str]) -> Key:
    if isinstance(item, Mapping):
        row = typing.cast("Mapping[str, Any]", item)
        return tuple(row[attr] for attr in attrs)
    return tuple(getattr(item, attr) for attr in attrs)
