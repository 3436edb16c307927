"""Offset pages (``get_page``) and keyset slices (``get_slice``).

Pages answer "page 3 of 12" and cost a ``COUNT`` plus an ``OFFSET`` that grows with the
page number. Slices answer "the next 20 after this one" with a ``WHERE`` on the sort
values of the last row, so page 10,000 costs what page 1 does; use them for feeds,
exports and large tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic

from sqlalchemy import Select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute, Mapper

from viveka_db.decorator.transactional import transactional
from viveka_db.errors import EntityDefinitionError, PaginationError
from viveka_db.repository.base import T, model_from_generic
from viveka_db.repository.cursor import decode_cursor, encode_cursor, sort_fingerprint
from viveka_db.repository.limits import MAX_OFFSET, check_int
from viveka_db.repository.loading import LoadSpec
from viveka_db.repository.query import Query, QueryRepository
from viveka_db.repository.row_locks import LockMode, lock_rows, lockable
from viveka_db.repository.sort_paths import apply_joins
from viveka_db.repository.sorting import (
    SortKey,
    keyset_after,
    order_clauses,
    resolve_sort,
    sort_joins,
    sortable_keys,
)

__all__ = ["Page", "PagingRepository", "Slice"]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and where it sits in the whole (``page`` counts from 1)."""

    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        """How many pages ``total`` rows make (0 when there are none)."""
        return math.ceil(self.total / self.size)

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class Slice(Generic[T]):
    """One keyset slice; pass ``next_cursor`` as ``after=`` for the next (``None``: the end)."""

    items: list[T]
    next_cursor: str | None
    size: int = field(default=0)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


class PagingRepository(QueryRepository[T]):
    """``get_page`` and ``get_slice``."""

    sortable: ClassVar[Sequence[str | InstrumentedAttribute[Any]] | None] = None
    """The attributes ``sort=`` may name (``None``: every column whose type can be ordered).

    ``sort`` often comes from a query string: ``sortable = ("name", "created_at")`` keeps
    every other column (``password_hash``) out of clients' reach and out of the error that
    lists what can be sorted. Checked when the class is created."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = model_from_generic(cls)
        found: object = None if model is None else sa_inspect(model, raiseerr=False)
        mapper: Mapper[Any] | None = found if isinstance(found, Mapper) else None  # pyright: ignore[reportUnknownVariableType]
        if "sortable" in vars(cls) and model is not None and mapper is not None:
            try:
                sortable_keys(model, mapper, cls.sortable)
            except EntityDefinitionError as exc:
                raise EntityDefinitionError(f"{cls.__name__}.{exc}") from None

    def _sort_keys(self, sort: object) -> list[SortKey]:
        return resolve_sort(self.model, self._mapper, sort, self.sortable)

    @lockable
    @transactional
    async def get_page(
        self,
        page: int = 1,
        size: int = 20,
        sort: object = None,
        *,
        query: Query | None = None,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> Page[T]:
        """Page ``page`` of ``size`` entities ordered by ``sort`` (then the primary key).

        ``query`` (from :meth:`where`) narrows the rows; a page past the end is empty.
        """
        check_int("page", page, 1, MAX_OFFSET)
        check_int("size", size, 1, self.max_page_size)
        if (page - 1) * size > MAX_OFFSET:
            raise PaginationError(f"page {page} of size {size} is past the largest offset")
        base = self._statement_for(query)
        keys = self._sort_keys(sort)
        stmt = apply_joins(base.order_by(None), sort_joins(keys)).order_by(*order_clauses(keys))
        offset = (page - 1) * size
        items = await self._fetch_entities(stmt.offset(offset).limit(size), load, lock)
        if 0 < len(items) < size or (offset == 0 and not items):
            total = offset + len(items)  # the last page: no COUNT needed
        else:
            total = await self.count(base)
        return Page(items=items, total=total, page=page, size=size)

    @lockable
    @transactional
    async def get_slice(
        self,
        after: str | None = None,
        size: int = 20,
        sort: object = None,
        *,
        query: Query | None = None,
        load: LoadSpec = None,
        lock: LockMode | None = None,
    ) -> Slice[T]:
        """Up to ``size`` entities following cursor ``after`` in ``sort`` order.

        Give the same ``sort`` (and ``query``) for every slice of one walk; a cursor from
        another sort or entity is refused with :class:`~viveka_db.InvalidCursorError`.
        """
        check_int("size", size, 1, self.max_page_size)
        keys = self._sort_keys(sort)
        fingerprint = sort_fingerprint(
            f"{self.model.__module__}.{self.model.__qualname__}",
            [(k.key, k.descending) for k in keys],
        )
        base = self._statement_for(query)
        stmt = apply_joins(base.order_by(None), sort_joins(keys))
        if after is not None:
            values = decode_cursor(after, fingerprint, len(keys))
            stmt = stmt.where(keyset_after(keys, values))
        stmt = stmt.order_by(*order_clauses(keys)).limit(size + 1)
        items, last_values = await self._fetch_sorted(stmt, keys, load, size, lock)
        if len(items) <= size:
            return Slice(items=items, next_cursor=None, size=size)
        cursor = encode_cursor(fingerprint, last_values)
        return Slice(items=items[:size], next_cursor=cursor, size=size)

    async def _fetch_sorted(
        self,
        stmt: Select[Any],
        keys: list[SortKey],
        load: LoadSpec,
        size: int,
        lock: LockMode | None = None,
    ) -> tuple[list[T], list[Any]]:
        """The entities of ``stmt`` and the sort values of the ``size``-th one (for a cursor).

        Values of keys through relationships are selected alongside the entity (the
        related entity need not be loaded); the others are read from the entity.
        """
        joined = [k.column for k in keys if k.joins]
        if not joined:
            items = await self._fetch_entities(stmt, load, lock)
            if len(items) <= size:
                return items, []
            return items, [getattr(items[size - 1], k.key) for k in keys]
        loaded = self._with_load(stmt, load)
        result = await self.db.execute(lock_rows(loaded.add_columns(*joined), lock, self.model))
        rows = list((result.unique() if loaded is not stmt else result).all())
        items = [row[0] for row in rows]
        if len(rows) <= size:
            return items, []
        extra = iter(rows[size - 1][1:])
        last = items[size - 1]
        return items, [next(extra) if k.joins else getattr(last, k.key) for k in keys]
