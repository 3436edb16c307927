"""``upsert_all``: insert rows, and decide per conflict policy what happens to duplicates.

One statement per batch on every backend: ``INSERT ... ON CONFLICT`` on PostgreSQL and
SQLite, ``INSERT ... ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB. The conflict columns
must be the primary key or a unique constraint/index, checked before any SQL, because
MySQL always resolves against *every* unique key and the other two need a unique index to
name; that makes the outcome the same on all three.

An updating upsert writes the given columns (default: every column the rows carry except
the conflict columns, the primary key, ``created_at``, ``created_by``, ``tenant_id`` and
the version), moves ``updated_at`` and ``updated_by`` and bumps ``version``;
``created_at`` and ``created_by`` keep their original values. Python-side defaults apply
to the inserted rows as in ``insert_all`` (the current tenant and actor included).

A tenant-scoped upsert never changes or returns another tenant's row: the update applies
only where the existing row's ``tenant_id`` is the inserted one, and rows the database
returns for another tenant are dropped from the result.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import Column, UniqueConstraint, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

from viveka_db.base.mixins import TimestampMixin
from viveka_db.decorator.transactional import transactional
from viveka_db.dialects import adapter_for
from viveka_db.repository.base import T
from viveka_db.repository.bulk import BulkRepository
from viveka_db.repository.rows import BulkPlan, plan_for, prepare_rows
from viveka_db.tenancy.mixins import AuditMixin
from viveka_db.tenancy.writes import visible_to_tenant

__all__ = ["OnConflict", "UpsertRepository"]

OnConflict = Literal["update", "nothing", "fail"]
_POLICIES = ("update", "nothing", "fail")


class UpsertRepository(BulkRepository[T]):
    """``upsert_all``."""

    @transactional
    async def upsert_all(
        self,
        rows: Iterable[T | Mapping[str, Any]],
        conflict: Sequence[str] | str | None = None,
        on_conflict: OnConflict = "update",
        update: Sequence[str] | None = None,
    ) -> list[T]:
        """Insert ``rows`` (entities or dicts); rows that collide on ``conflict`` are
        updated (``"update"``), skipped (``"nothing"``) or raise ``IntegrityError`` (``"fail"``).

        ``conflict`` names the unique columns that identify a row (default: the primary
        key); ``update`` limits which columns an update writes. Returns the entities as
        written, where the database can say so (``RETURNING``: PostgreSQL, SQLite,
        MariaDB; plain MySQL returns ``[]``). With ``"nothing"``, PostgreSQL and SQLite
        return only inserted rows, MariaDB also the existing rows that were kept.
        """
        if on_conflict not in _POLICIES:
            raise ValueError(f"on_conflict must be one of {_POLICIES}, got {on_conflict!r}")
        plan = plan_for(self._mapper)
        target = self._conflict_columns(plan, conflict)
        prepared = prepare_rows(plan, rows)
        if not prepared.rows:
            return []
        session = self.db
        dialect = (await session.connection()).dialect
        returning = dialect.insert_executemany_returning
        written: list[T] = []
        for keys, group in _group_by_keys(prepared.rows).items():
            stmt = self._statement(plan, dialect, target, on_conflict, update, keys)
            if returning:
                stmt = stmt.returning(self.model)
                result = await session.scalars(
                    stmt.execution_options(populate_existing=True), group
                )
                written.extend(result.all())
            else:
                await session.execute(stmt, group)
        if plan.tenant_key is not None:
            foreign = [entity for entity in written if not visible_to_tenant(entity)]
            for entity in foreign:  # a kept row of another tenant (MariaDB returns those)
                session.expunge(entity)
            written = [entity for entity in written if visible_to_tenant(entity)]
        return written

    def _conflict_columns(
        self, plan: BulkPlan, conflict: Sequence[str] | str | None
    ) -> list[Column[Any]]:
        if conflict is None:
            return [col for col in self._mapper.primary_key if isinstance(col, Column)]
        names = (conflict,) if isinstance(conflict, str) else tuple(conflict)
        if not names:
            raise ValueError("conflict needs at least one column name")
        columns: list[Column[Any]] = []
        for name in names:
            key = getattr(self._column_for(name), "key", name)  # unknown: UnknownFieldError
            columns.append(typing.cast("Column[Any]", self._mapper.column_attrs[key].columns[0]))
        wanted = {col.name for col in columns}
        if wanted not in _unique_sets(plan):
            raise ValueError(
                f"conflict={names!r} is not the primary key or a unique constraint of "
                f"{plan.table.name}; unique column sets are: "
                + ", ".join(str(sorted(s)) for s in _unique_sets(plan))
            )
        return columns

    def _statement(
        self,
        plan: BulkPlan,
        dialect: Dialect,
        target: list[Column[Any]],
        policy: str,
        update: Sequence[str] | None,
        keys: frozenset[str],
    ) -> Insert:
        if policy == "fail":
            return insert(self.model)
        assignments = self._assignments(plan, target, policy, update, keys)
        same = None if plan.tenant_key is None else plan.table.c[plan.tenant_key]
        return adapter_for(dialect).upsert(
            self.model, plan.table, target, assignments, only_where_equal=same
        )

    def _assignments(
        self,
        plan: BulkPlan,
        target: list[Column[Any]],
        policy: str,
        update: Sequence[str] | None,
        keys: frozenset[str],
    ) -> list[tuple[Any, bool]]:
        """The columns an update writes; ``True`` marks the version (incremented, not copied)."""
        if policy == "nothing":
            return []
        by_key = dict(zip(plan.keys, plan.columns, strict=True))
        version = self._mapper.version_id_col
        timestamps = issubclass(self.model, TimestampMixin)
        audited = issubclass(self.model, AuditMixin)
        never = {plan.tenant_key}  # a row never moves to another tenant
        if update is not None:
            chosen: list[str] = []
            for name in update:
                chosen.append(getattr(self._column_for(name), "key", name))
        else:
            skip = {col.name for col in target} | {col.name for col in self._mapper.primary_key}
            if timestamps:
                skip.add("created_at")
            if audited:
                skip.add("created_by")
            chosen = [k for k in plan.keys if k in keys and by_key[k].name not in skip]
        out: list[tuple[Any, bool]] = []
        for name in chosen:
            column = by_key[name]
            if (version is not None and column is version) or name in never:
                continue
            out.append((column, False))
        if not out:
            return []
        for moved, applies in (("updated_at", timestamps), ("updated_by", audited)):
            if applies and moved not in chosen:
                out.append((by_key[moved], False))
        if version is not None:
            out.append((version, True))
        return out


def _unique_sets(plan: BulkPlan) -> list[set[str]]:
    table = plan.table
    sets = [{col.name for col in table.primary_key.columns}]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            sets.append({col.name for col in constraint.columns})
    for index in table.indexes:
        if index.unique:
            sets.append({col.name for col in index.columns})
    sets.extend({col.name} for col in table.columns if col.unique)
    return sets


def _group_by_keys(rows: list[dict[str, Any]]) -> dict[frozenset[str], list[dict[str, Any]]]:
    """executemany needs the same keys in every row; rows that differ go in their own batch."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return groups
