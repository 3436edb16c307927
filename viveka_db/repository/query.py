"""Fluent queries: ``select()`` / ``where()`` build statements, ``all`` / ``first`` run them.

Statements start from :meth:`QueryRepository.select`, which already carries the view's
soft-delete criteria; a statement passed back to ``all``/``first``/``count`` runs as
given, so ``repo.with_deleted().where(...)`` keeps seeing deleted rows.

Every read takes ``load=`` (see :mod:`~viveka_db.repository.loading`); without it the
repository's ``default_load`` applies. Every read that returns rows takes ``lock=`` (see
:mod:`~viveka_db.repository.row_locks`). A statement that selects columns rather than the
entity (``select(Post.id, Post.title)``) returns rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, overload

from sqlalchemy import ColumnExpressionArgument, Select, func, select
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.elements import ColumnElement, True_

from viveka_db.decorator.transactional import transactional
from viveka_db.errors import PaginationError
from viveka_db.repository.base import T
from viveka_db.repository.column_types import equal_to
from viveka_db.repository.limits import MAX_PAGE_SIZE
from viveka_db.repository.loading import LoadSpec, load_options
from viveka_db.repository.row_locks import LockMode, lock_rows, lockable
from viveka_db.repository.soft_delete import SoftDeleteRepository
from viveka_db.repository.spec import Spec

if TYPE_CHECKING:
    from sqlalchemy.engine import Result

__all__ = ["Query", "QueryRepository", "Shape", "result_shape"]

Shape = Literal["entities", "scalars", "rows"]

Query: TypeAlias = "Select[Any] | Spec[Any]"
"""What ``query=`` accepts: a statement (from :meth:`QueryRepository.where`) or a :class:`Spec`."""


def check_limit(limit: object) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise PaginationError(f"limit must be an int >= 0 or None, got {limit!r}")


def result_shape(stmt: Select[Any]) -> Shape:
    """What a statement returns: entities (one mapped entity), scalars (one column), rows."""
    described = stmt.column_descriptions
    if len(described) != 1:
        return "rows"
    only = described[0]
    entity = only.get("entity")
    return "entities" if entity is not None and only.get("expr") is entity else "scalars"


class QueryRepository(SoftDeleteRepository[T]):
    """``select``, ``where``, ``all``, ``first``, ``count``, ``find_by``, ``find_all_by``."""

    default_load: ClassVar[LoadSpec] = ()
    """Relationships every read loads when it is given no ``load=`` (see ``loading``)."""

    max_page_size: ClassVar[int] = MAX_PAGE_SIZE
    """The largest ``limit``/``size``/``chunk_size`` accepted (they often come from a URL)."""

    def select(self) -> Select[T]:
        """``SELECT`` of the entity as this view sees it (the session's row filter hides
        other tenants' and soft-deleted rows when it runs)."""
        stmt = select(self.model)
        criteria = self._visibility_criteria()
        if criteria:
            stmt = stmt.where(*criteria)
        options = self._view_options()
        return stmt.execution_options(**options) if options else stmt

    def where(self, *criteria: ColumnExpressionArgument[bool] | Spec[Any]) -> Select[T]:
        """``repo.select().where(*criteria)``; chain ``.order_by(...)`` and pass to ``all``.

        A criterion may be a :class:`Spec` (its paths start from this repository's entity).
        """
        clauses = [c.criterion(self.model) if isinstance(c, Spec) else c for c in criteria]
        return self.select().where(*(c for c in clauses if not isinstance(c, True_)))

    def _statement_for(self, query: Query | None, *, ordered: bool = False) -> Select[Any]:
        """The statement ``query`` stands for (``ordered``: key order unless it is a statement).

        ``None`` is every visible entity; a :class:`Spec` becomes ``WHERE`` criteria on
        :meth:`select`; a statement runs as given.
        """
        if query is None:
            stmt = self.select()
        elif isinstance(query, Spec):
            criterion = query.criterion(self.model)
            stmt = self.select()
            if not isinstance(criterion, True_):  # an empty filter: no WHERE at all
                stmt = stmt.where(criterion)
        else:
            return query
        return self._in_key_order(stmt) if ordered else stmt

    def _equals_criteria(self, equals: dict[str, Any]) -> list[ColumnElement[bool]]:
        """``field == value`` for each item (``None`` means ``IS NULL``); names are checked, and
        a value the column cannot hold matches no row (see ``column_types``)."""
        dialect = self._dialect()
        return [equal_to(self._column_for(name), value, dialect) for name, value in equals.items()]

    def _loader_options(self, load: LoadSpec) -> list[ORMOption]:
        """The options ``load`` asks for (``None``: this repository's ``default_load``)."""
        return load_options(self.model, self.default_load if load is None else load)

    def _with_load(self, stmt: Select[Any], load: LoadSpec) -> Select[Any]:
        """``stmt`` with the loader options of ``load`` (entity statements only)."""
        options = self._loader_options(load)
        if not options:
            return stmt
        if result_shape(stmt) != "entities":
            if load is None:
                return stmt  # default_load is about entities; a projection ignores it
            raise TypeError("load= applies to statements that select the entity, not columns")
        return stmt.options(*options)

    async def _fetch_entities(
        self, stmt: Select[Any], load: LoadSpec, lock: LockMode | None = None
    ) -> list[T]:
        """Run ``stmt`` with ``load`` and row lock ``lock`` applied; its entities, each once."""
        loaded = self._with_load(stmt, load)
        result = await self.db.scalars(lock_rows(loaded, lock, self.model))
        if loaded is not stmt:  # (unique() only when options were added)
            result = result.unique()  # a joined collection load repeats the parent row
        return list(result.all())

    def _in_key_order(self, stmt: Select[T]) -> Select[T]:
        return stmt.order_by(*self._mapper.primary_key)

    @overload
    async def all(
        self,
        query: None = None,
        limit: int | None = None,
        *,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> list[T]: ...
    @overload
    async def all(
        self,
        query: Select[T] | Spec[T],
        limit: int | None = None,
        *,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> list[T]: ...
    @overload
    async def all(
        self,
        query: Select[Any],
        limit: int | None = None,
        *,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> list[Any]: ...
    @lockable
    @transactional
    async def all(
        self,
        query: Query | None = None,
        limit: int | None = None,
        *,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> list[Any]:
        """What ``query`` selects (default: every visible entity, in key order).

        Entities for a statement of the entity, values for one column, ``Row`` s for
        several columns (``select(Post.id, Post.title)``).
        """
        check_limit(limit)
        stmt = self._statement_for(query, ordered=True)
        if limit is not None:
            stmt = stmt.limit(limit)
        shape = "entities" if not isinstance(query, Select) else result_shape(stmt)
        if shape == "entities":
            return await self._fetch_entities(stmt, load, lock)
        self._with_load(stmt, load)  # refuses an explicit load= on columns
        result: Result[Any] = await self.db.execute(lock_rows(stmt, lock, self.model))
        if shape == "scalars":
            return list(result.scalars().all())
        return list(result.all())

    @overload
    async def first(
        self, query: None = None, *, load: LoadSpec = None, lock: LockMode | None = None
    ) -> T | None: ...
    @overload
    async def first(
        self, query: Select[T] | Spec[T], *, load: LoadSpec = None, lock: LockMode | None = None
    ) -> T | None: ...
    @overload
    async def first(
        self, query: Select[Any], *, load: LoadSpec = None, lock: LockMode | None = None
    ) -> Any: ...
    @lockable
    @transactional
    async def first(
        self,
        query: Query | None = None,
        *,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> Any:
        """The first entity (or value, or ``Row``) ``query`` selects, or ``None``."""
        stmt = self._statement_for(query, ordered=True)
        found = await self.all(stmt.limit(1), load=load, lock=lock)
        return found[0] if found else None

    @transactional
    async def count(self, query: Query | None = None) -> int:
        """The number of rows ``query`` selects (default: the rows this view sees)."""
        if query is None:
            stmt = select(func.count()).select_from(self.model).where(*self._visibility_criteria())
            options = self._view_options()
        else:
            counted = self._statement_for(query).order_by(None)
            stmt = select(func.count()).select_from(counted.subquery())
            options = counted.get_execution_options()  # a view's statement keeps its view
        return int(await self.db.scalar(stmt, execution_options=options) or 0)

    @transactional
    async def count_grouped_by(self, column: Any, query: Query | None = None) -> dict[Any, int]:
        """``{value: number of rows}`` for each value of ``column`` among the rows ``query``
        selects (default: the rows this view sees); one ``GROUP BY`` query.

        ``column`` is a field name or mapped attribute (``Favorite.article_id``); values
        with no rows are absent from the result.
        """
        grouped = self._column_for(column)
        base = self._statement_for(query)
        stmt = base.order_by(None).with_only_columns(grouped, func.count()).group_by(grouped)
        rows = await self.db.execute(stmt)
        return {value: int(counted) for value, counted in rows}

    @lockable
    @transactional
    async def find_by(
        self, *, load: LoadSpec = None, lock: LockMode | None = None, **equals: Any
    ) -> T | None:
        """The first entity (in key order) whose fields equal ``equals``, or ``None``."""
        stmt = self._equals_statement("find_by", equals)
        found = await self._fetch_entities(stmt.limit(1), load, lock)
        return found[0] if found else None

    @lockable
    @transactional
    async def find_all_by(
        self, *, load: LoadSpec = None, lock: LockMode | None = None, **equals: Any
    ) -> list[T]:
        """Every entity whose fields equal ``equals``, in key order."""
        stmt = self._equals_statement("find_all_by", equals)
        return await self._fetch_entities(stmt, load, lock)

    def _equals_statement(self, name: str, equals: dict[str, Any]) -> Select[T]:
        if not equals:
            raise TypeError(f"{name}() needs at least one field=value argument")
        return self._in_key_order(self.where(*self._equals_criteria(equals)))
