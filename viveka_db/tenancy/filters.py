"""The one place rows are filtered: tenant and soft-delete criteria on every ORM statement.

:func:`apply_row_filters` is a ``do_orm_execute`` hook of every session the library makes.
Every ORM ``SELECT`` (repository reads, derived queries, counts, pages, slices, streams,
projections, ``Session.get``, relationship loads of any strategy) and every ORM
``UPDATE``/``DELETE`` (``delete_by_*``, set-based updates) passes through it. It adds
:func:`~sqlalchemy.orm.with_loader_criteria` for :class:`TenantMixin` and
:class:`SoftDeleteMixin` entities, which SQLAlchemy applies wherever such an entity
appears: the ``FROM`` list, joins with explicit ``ON`` clauses, aliases, subqueries, the
target of a many-to-many ``secondary`` join, and the statements of relationship loads.

The values are bound when the statement *runs*, from the context of that moment (see
:mod:`viveka_db.tenancy.context`), so a lazy or deferred load after the context changed
is filtered by the new tenant, never by one captured earlier.

One known gap is closed elsewhere: SQLAlchemy 2.0 leaves the criteria out of the
``EXISTS`` that ``has()``/``any()`` build; :func:`related_criteria` gives the criteria to
add there explicitly (the repository's derived queries do).

Not filtered: SQL text (``text()``, ``exec_driver_sql``) and Core statements on
``Table`` objects, which never pass through the ORM. Row-level security
(:mod:`viveka_db.tenancy.rls`) covers those on PostgreSQL.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import Mapper, ORMExecuteState, with_loader_criteria
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from viveka_db.base.mixins import SoftDeleteMixin
from viveka_db.tenancy.context import deleted_rows_visible, require_tenant, tenant_filter
from viveka_db.tenancy.mixins import TenantMixin

__all__ = [
    "DELETED_ROWS_OPTION",
    "apply_row_filters",
    "is_tenant_scoped",
    "related_criteria",
    "soft_deletes",
]

DELETED_ROWS_OPTION = "viveka_deleted_rows"
"""Execution option: ``"include"`` shows soft-deleted rows in that one statement (a
repository view made by ``with_deleted()``/``only_deleted()`` sets it on its statements)."""

_tenant_tables: set[Any] = set()
"""The tables of the tenant-scoped entities mapped so far."""
_soft_tables: set[Any] = set()
"""The tables of the soft-deleting entities mapped so far."""


@event.listens_for(Mapper, "mapper_configured")
def _note_scoped_entity(mapper: Mapper[Any], cls: type[Any]) -> None:
    table: Any = mapper.local_table
    if isinstance(table, Table):
        if issubclass(cls, TenantMixin):
            _tenant_tables.add(table)
        if issubclass(cls, SoftDeleteMixin):
            _soft_tables.add(table)


def is_tenant_scoped(entity: object) -> bool:
    """Whether ``entity`` (a class or an instance) is tenant-scoped (``TenantMixin``)."""
    cls = entity if isinstance(entity, type) else type(entity)
    return issubclass(cls, TenantMixin)


def soft_deletes(entity: object) -> bool:
    """Whether ``entity`` (a class or an instance) has ``SoftDeleteMixin``."""
    cls = entity if isinstance(entity, type) else type(entity)
    return issubclass(cls, SoftDeleteMixin)


def _not_deleted(cls: Any) -> Any:
    return cls.deleted_at.is_(None)


def _no_tenant(cls: Any) -> Any:
    return cls.tenant_id.is_(None)  # NOT NULL: matches nothing


_HIDE_DELETED = with_loader_criteria(SoftDeleteMixin, _not_deleted, include_aliases=True)
_NO_TENANT_ROWS = with_loader_criteria(TenantMixin, _no_tenant, include_aliases=True)


@functools.lru_cache(maxsize=4096)
def _tenant_rows(tid: Any) -> ORMOption:
    # ``tid`` is a closure variable of the lambda: SQLAlchemy binds it as a parameter of
    # each execution (the cached SQL is shared by every tenant). One option per tenant id
    # is kept (it is immutable), so a statement does not pay for building it.
    return with_loader_criteria(TenantMixin, lambda cls: cls.tenant_id == tid, include_aliases=True)


def _touches_tenant_table(statement: Any) -> bool:
    return any(
        isinstance(element, Table) and element in _tenant_tables
        for element in visitors.iterate(statement)
    )


def apply_row_filters(state: ORMExecuteState) -> None:
    """``do_orm_execute``: add the tenant and soft-delete criteria to ``state``'s statement.

    Raises :class:`NoTenantError` when the statement reads or changes a tenant-scoped table
    and no tenant is current (outside ``with all_tenants():``).
    """
    if state.is_column_load or not (state.is_select or state.is_update or state.is_delete):
        return  # refreshing an object already loaded; INSERTs carry their own values
    options: list[ORMOption] = []
    if _tenant_tables:
        filtered, tid = tenant_filter()
        if filtered:
            if tid is not None:
                options.append(_tenant_rows(tid))
            else:
                if _touches_tenant_table(state.statement):
                    require_tenant("this statement")
                options.append(_NO_TENANT_ROWS)
    if (
        _soft_tables
        and not deleted_rows_visible()
        and state.execution_options.get(DELETED_ROWS_OPTION) != "include"
    ):
        options.append(_HIDE_DELETED)
    if options:
        state.statement = state.statement.options(*options)


def related_criteria(cls: Any, *, include_deleted: bool = False) -> list[ColumnElement[bool]]:
    """The criteria of :func:`apply_row_filters` for ``cls``, as plain ``WHERE`` terms.

    For the places SQLAlchemy 2.0 does not reach with loader criteria (the ``EXISTS`` of
    ``has()``/``any()``); built when the statement is, so build and run it in one go.
    """
    out: list[ColumnElement[bool]] = []
    if issubclass(cls, TenantMixin):
        filtered, _ = tenant_filter()
        if filtered:
            tid = require_tenant(f"a condition on {cls.__name__}")
            out.append(cls.tenant_id == tid)
    if issubclass(cls, SoftDeleteMixin) and not include_deleted and not deleted_rows_visible():
        out.append(cls.deleted_at.is_(None))
    return out
