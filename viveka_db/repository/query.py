"""Fluent queries: ``select()`` / ``where()`` build statements, ``all`` / ``first`` run them.

Statements start from :meth:`QueryRepository.select`, which already carries the view's
soft-delete criteria; a statement passed back to ``all``/``first``/``count`` runs as
given, so ``repo.with_deleted().where(...)`` keeps seeing deleted rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnExpressionArgument, Select, func, select
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.decorator.transactional import transactional
from viveka_db.repository.base import T
from viveka_db.repository.soft_delete import SoftDeleteRepository

__all__ = ["QueryRepository"]


def check_limit(limit: object) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")


class QueryRepository(SoftDeleteRepository[T]):
    """``select``, ``where``, ``all``, ``first``, ``count``, ``find_by``, ``find_all_by``."""

    def select(self) -> Select[T]:
        """``SELECT`` of the entity with this view's soft-delete criteria applied."""
        stmt = select(self.model)
        criteria = self.visibility_criteria()
        return stmt.where(*criteria) if criteria else stmt

    def where(self, *criteria: ColumnExpressionArgument[bool]) -> Select[T]:
        """``repo.select().where(*criteria)``; chain ``.order_by(...)`` and pass to ``all``."""
        return self.select().where(*criteria)

    def equals_criteria(self, equals: dict[str, Any]) -> list[ColumnElement[bool]]:
        """``field == value`` for each item (``None`` means ``IS NULL``); names are checked."""
        return [self.column_for(name) == value for name, value in equals.items()]

    def _in_key_order(self, stmt: Select[T]) -> Select[T]:
        return stmt.order_by(*self.mapper.primary_key)

    @transactional
    async def all(self, query: Select[Any] | None = None, limit: int | None = None) -> list[T]:
        """The entities ``query`` selects (default: every visible row, in key order)."""
        check_limit(limit)
        stmt = self._in_key_order(self.select()) if query is None else query
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.db.scalars(stmt)).all())

    @transactional
    async def first(self, query: Select[Any] | None = None) -> T | None:
        """The first entity ``query`` selects, or ``None`` (fetches one row only)."""
        stmt = self._in_key_order(self.select()) if query is None else query
        return (await self.db.scalars(stmt.limit(1))).first()

    @transactional
    async def count(self, query: Select[Any] | None = None) -> int:
        """The number of rows ``query`` selects (default: the rows this view sees)."""
        if query is None:
            stmt = select(func.count()).select_from(self.model).where(*self.visibility_criteria())
        else:
            stmt = select(func.count()).select_from(query.order_by(None).subquery())
        return int(await self.db.scalar(stmt) or 0)

    @transactional
    async def find_by(self, **equals: Any) -> T | None:
        """The first entity (in key order) whose fields equal ``equals``, or ``None``."""
        stmt = self._equals_statement("find_by", equals)
        return (await self.db.scalars(stmt.limit(1))).first()

    @transactional
    async def find_all_by(self, **equals: Any) -> list[T]:
        """Every entity whose fields equal ``equals``, in key order."""
        stmt = self._equals_statement("find_all_by", equals)
        return list((await self.db.scalars(stmt)).all())

    def _equals_statement(self, name: str, equals: dict[str, Any]) -> Select[T]:
        if not equals:
            raise TypeError(f"{name}() needs at least one field=value argument")
        return self._in_key_order(self.where(*self.equals_criteria(equals)))
