"""What a row of one entity class needs on the bulk paths, worked out once per class.

The bulk paths (``insert_all``, ``upsert_all``) skip the unit of work, so nothing else
applies the Python-side column defaults, the version counter's first value or the tenant:
a :class:`BulkPlan` lists them with the columns, the generated primary key, what only the
database can compute, and whether the entity is *plain* enough for a fast path (one table,
no inheritance, no insert events). :mod:`~viveka_db.repository.bulk_defaults` fills rows
from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from operator import is_
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.orm import Mapper

from viveka_db.tenancy.filters import is_tenant_scoped

__all__ = [
    "BulkPlan",
    "DefaultContext",
    "all_same",
    "ignores_context",
    "per_row",
    "plan_for",
]


def all_same(values: list[Any]) -> bool:
    """Whether every item of non-empty ``values`` is the very same object (C speed; the
    last item is looked at first, which settles most columns that are not)."""
    first = values[0]
    return values[-1] is first and all(map(is_, values, repeat(first)))


class DefaultContext:
    """What a column-default callable receives in place of SQLAlchemy's execution context.

    Shared by all rows of one call, so statement-level defaults (``statement_utc_now``)
    give every row the same instant, as one executemany would.
    """

    def __init__(self) -> None:
        self.current_parameters: dict[str, Any] = {}

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        return self.current_parameters


@dataclass(eq=False)
class BulkPlan:
    """How rows of one entity are built; ``unfit`` says why the fast paths cannot be used."""

    mapper: Mapper[Any]
    table: Table
    columns: list[Column[Any]]
    keys: list[str]
    """Attribute key of each column, same order."""
    defaults: dict[str, Any] = field(default_factory=dict[str, Any])
    """Attribute key -> scalar default or callable(context)."""
    generated_pk: Column[Any] | None = None
    """The single auto-increment primary key column the database generates, if any."""
    server_side: set[str] = field(default_factory=set[str])
    """Attribute keys whose value the database computes when none is given."""
    relationships: tuple[str, ...] = ()
    unfit: str | None = None
    pk_key: str | None = None
    """Attribute key of ``generated_pk``."""
    context_free: bool = True
    """Whether no per-row default callable reads its context (the row built so far), so
    entities can be prepared column by column (:func:`prepare_batch`)."""
    tenant_key: str | None = None
    """``tenant_id`` of a tenant-scoped entity: its values are checked against the
    current tenant (:func:`~viveka_db.tenancy.writes.check_tenant_values`)."""


_plans: dict[Mapper[Any], BulkPlan] = {}


def plan_for(mapper: Mapper[Any]) -> BulkPlan:
    plan = _plans.get(mapper)
    if plan is None:
        plan = _plans[mapper] = _build_plan(mapper)
    return plan


def _first_version(generator: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A column default giving a new row the version the ORM would (``generator(None)``)."""

    def first(context: Any) -> Any:
        return generator(None)

    first.viveka_context_free = True  # type: ignore[attr-defined]
    return first


def ignores_context(default: Callable[[Any], Any]) -> bool:
    """Whether a column-default callable ignores its context argument.

    True for SQLAlchemy's wrapper of a zero-argument callable (``default=uuid.uuid4``),
    which keeps the original as ``__wrapped__``, and for the version default above.
    """
    if getattr(default, "viveka_context_free", False):
        return True
    wrapped = getattr(default, "__wrapped__", None)
    if wrapped is None:
        return False
    try:
        parameters = inspect.signature(wrapped).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(
        p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in parameters
    )


def per_row(default: Any) -> bool:
    """Whether a column default is called for every row (``uuid4``), not once per statement
    (``statement_utc_now``, one instant for all rows, as one executemany gives) or a constant."""
    return callable(default) and not getattr(default, "viveka_per_statement", False)


def _build_plan(mapper: Mapper[Any]) -> BulkPlan:
    """The :class:`BulkPlan` of ``mapper``; the first reason found against the fast paths
    wins as ``unfit``."""
    unfit = _unfit_mapping(mapper)
    table: Any = mapper.local_table if unfit is None else mapper.persist_selectable
    mapped = _MappedColumns(mapper, table)
    unfit = unfit or mapped.unfit
    generated_pk = _generated_pk(mapper, table, mapped)
    version_unfit = _version_default(mapper, mapped.defaults)  # adds to the defaults
    unfit = unfit or version_unfit
    dispatch = mapper.dispatch
    if dispatch.before_insert or dispatch.after_insert:
        unfit = unfit or "before_insert/after_insert listeners"
    return BulkPlan(
        mapper=mapper,
        table=table,
        columns=mapped.columns,
        keys=mapped.keys,
        defaults=mapped.defaults,
        generated_pk=generated_pk,
        server_side=mapped.server_side,
        relationships=tuple(mapper.relationships.keys()),
        unfit=unfit,
        pk_key=None if generated_pk is None else mapper.get_property_by_column(generated_pk).key,
        context_free=_all_context_free(mapped.defaults),
        tenant_key="tenant_id"
        if is_tenant_scoped(mapper.class_) and "tenant_id" in mapped.keys
        else None,
    )


def _unfit_mapping(mapper: Mapper[Any]) -> str | None:
    """Why rows of ``mapper`` cannot go to one table as they are, if they cannot."""
    if (
        not isinstance(mapper.local_table, Table)
        or mapper.inherits is not None
        or mapper.polymorphic_on is not None
    ):
        return "inheritance or a non-table mapping"
    return None


class _MappedColumns:
    """The mapped columns of ``table``, their attribute keys and what fills them when a row
    lacks a value: a Python-side default (``defaults``) or the database (``server_side``)."""

    def __init__(self, mapper: Mapper[Any], table: Any) -> None:
        self.columns: list[Column[Any]] = []
        self.keys: list[str] = []
        self.defaults: dict[str, Any] = {}
        self.server_side: set[str] = set()
        self.unfit: str | None = None
        for column in table.columns:
            try:
                prop = mapper.get_property_by_column(column)
            except Exception:
                self.unfit = self.unfit or f"column {column.name} is not mapped"
                continue
            self.columns.append(column)
            self.keys.append(prop.key)
            self._add_default(prop.key, column)

    def _add_default(self, key: str, column: Column[Any]) -> None:
        """Record what fills ``column`` when a row lacks its value."""
        default: Any = column.default
        if default is not None:
            if getattr(default, "is_scalar", False) or getattr(default, "is_callable", False):
                self.defaults[key] = getattr(default, "arg", None)
            else:
                self.server_side.add(key)  # SQL expression or sequence
        if column.server_default is not None:
            self.server_side.add(key)


def _generated_pk(mapper: Mapper[Any], table: Any, mapped: _MappedColumns) -> Column[Any] | None:
    """The single auto-increment primary key the database generates (no longer counted
    among ``mapped.server_side``: a row without it is still complete)."""
    pk: list[Any] = [*mapper.primary_key]
    if len(pk) != 1 or pk[0] is not getattr(table, "autoincrement_column", None):
        return None
    key = next(k for k, c in zip(mapped.keys, mapped.columns, strict=True) if c is pk[0])
    mapped.server_side.discard(key)
    return pk[0]


def _version_default(mapper: Mapper[Any], defaults: dict[str, Any]) -> str | None:
    """Add the version counter's first value to ``defaults``; why not, if it cannot be."""
    version: Any = mapper.version_id_col
    if version is None:
        return None
    vkey = mapper.get_property_by_column(version).key
    if vkey in defaults:
        return None
    generator: Any = mapper.version_id_generator
    if generator is False:
        return "server-side version counter"
    defaults[vkey] = _first_version(generator)
    return None


def _all_context_free(defaults: dict[str, Any]) -> bool:
    """Whether no per-row default callable reads its context (see ``BulkPlan.context_free``)."""
    return all(ignores_context(default) for default in defaults.values() if per_row(default))
