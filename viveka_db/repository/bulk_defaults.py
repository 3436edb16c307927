"""The one place the bulk paths fill in what a row lacks: defaults, tenant, ``None``.

``insert_all`` (entities or dicts, any driver) and ``upsert_all`` skip the unit of work,
so the values a flush would add come from here, for every path alike:
:func:`fill_columns` reads the rows a column at a time (from entity ``__dict__``s or the
caller's dicts, unchanged) and completes each column:

* a constant or once-per-statement default (``statement_utc_now``) is computed once and
  set for every row lacking it, as one executemany would;
* a per-row callable (``uuid4``) runs once per row lacking it, in row order; one that reads
  its context sees the row as one pass would have built it (its own values, the constants,
  the per-row defaults filled before it), as SQLAlchemy's ``get_current_parameters`` does;
* ``tenant_id`` of a tenant-scoped entity comes from the current tenant, and a row of
  another tenant is refused (:func:`~viveka_db.tenancy.writes.check_tenant_values`);
* a column with nothing to fill it reads ``None``; a missing (or ``None``) generated key
  and a value only the database computes stay gaps, counted and marked.

At 100,000 rows each Python-level operation per row costs about as much as ``COPY``
spends on the row, so every step runs at C speed (``map`` over ``dict`` methods) unless
a default must be called per row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from operator import contains, is_
from typing import Any

from viveka_db.repository.bulk_plan import BulkPlan, DefaultContext, ignores_context, per_row
from viveka_db.tenancy.writes import check_tenant_values

__all__ = ["FilledColumns", "fill_columns", "read_column", "row_dicts"]

_Row = dict[str, Any]
_get: Callable[[_Row, str, Any], Any] = _Row.get
_getitem: Callable[[_Row, str], Any] = _Row.__getitem__
_consume = deque[Any](maxlen=0).extend
"""Runs an iterator to its end at C speed."""
Gaps = dict[str, list[bool] | None]
"""Attribute key -> per row whether the value is absent (``None``: absent in every row)."""


@dataclass
class FilledColumns:
    """Rows column by column (in ``plan.keys`` order), completed by :func:`fill_columns`."""

    columns: list[list[Any]]
    """One list of values per column; ``None`` where a gap is."""
    written: list[bool]
    """Per column: whether it holds values the sources did not have (defaults, tenant)."""
    missing_pk: int = 0
    """How many rows still need a database-generated primary key."""
    shared: dict[str, Any] = field(default_factory=dict[str, Any])
    """Columns no source had, filled with one value for all (a constant or the statement's
    timestamp): entities get them with one ``dict.update`` each instead of per column."""
    server_gaps: Gaps = field(default_factory=Gaps)
    """Columns whose value only the database computes, where rows lack it."""


def read_column(sources: list[_Row], key: str) -> tuple[list[Any], int]:
    """The values of ``key`` (``None`` where absent) and how many sources lack it.

    One pass when every source has it (a ``KeyError`` at once when none has).
    """
    try:
        return list(map(_getitem, sources, repeat(key))), 0
    except KeyError:
        pass
    present = sum(map(contains, sources, repeat(key)))
    if not present:
        return [None] * len(sources), len(sources)
    return list(map(_get, sources, repeat(key), repeat(None))), len(sources) - present


def _absent(sources: list[_Row], key: str, missing: int) -> list[bool] | None:
    """Per source whether it lacks ``key``; ``None`` when every one does."""
    if missing == len(sources):
        return None
    return [not here for here in map(contains, sources, repeat(key))]


def fill_columns(plan: BulkPlan, sources: list[_Row]) -> FilledColumns:
    """The columns of ``sources`` (dicts of attribute values, left unchanged), completed.

    One context for the whole call, so once-per-statement defaults agree across columns
    and rows.
    """
    ctx = DefaultContext()
    out = FilledColumns([], [])
    needs_context: list[tuple[int, Any, list[bool] | None]] = []
    for position, key in enumerate(plan.keys):
        column, missing = read_column(sources, key)
        written = False
        if key == plan.pk_key:
            out.missing_pk = missing if missing == len(column) else column.count(None)
        elif missing and key not in plan.defaults and key in plan.server_side:
            out.server_gaps[key] = _absent(sources, key, missing)
        elif missing:
            default: Any = plan.defaults.get(key)
            written = True
            if per_row(default) and not ignores_context(default):
                needs_context.append((position, default, _absent(sources, key, missing)))
            else:
                column, written = _fill(out, ctx, sources, key, column, missing, default)
        if key == plan.tenant_key:
            written = written or None in column  # the sources get the current tenant
            column = check_tenant_values(plan.table.name, column)
        out.columns.append(column)
        out.written.append(written)
    if needs_context:
        _fill_in_context(plan, out, ctx, needs_context)
    return out


def _fill(
    out: FilledColumns,
    ctx: DefaultContext,
    sources: list[_Row],
    key: str,
    column: list[Any],
    missing: int,
    default: Any,
) -> tuple[list[Any], bool]:
    """``column`` with its ``missing`` gaps filled by a default that ignores its context,
    and whether the sources still need values written (not when ``shared`` has it)."""
    count = len(column)
    absent = _absent(sources, key, missing)
    if per_row(default):  # each missing value gets its own call, in row order
        if absent is None:
            return [default(ctx) for _ in range(count)], True
        return [
            default(ctx) if gap else value for value, gap in zip(column, absent, strict=True)
        ], True
    value = default(ctx) if callable(default) else default  # once, like one executemany
    if absent is None:
        out.shared[key] = value
        return [value] * count, False
    return [value if gap else old for old, gap in zip(column, absent, strict=True)], True


def _fill_in_context(
    plan: BulkPlan,
    out: FilledColumns,
    ctx: DefaultContext,
    needs_context: list[tuple[int, Any, list[bool] | None]],
) -> None:
    """Run the per-row defaults that read their context, in column order, each row seeing
    the row built so far (``needs_context``: position, default, absent rows)."""
    keys = plan.keys
    rows = row_dicts(plan, out, {keys[position]: absent for position, _, absent in needs_context})
    for position, default, absent in needs_context:
        key, column = keys[position], out.columns[position]
        for index, row in enumerate(rows):
            if absent is None or absent[index]:
                ctx.current_parameters = row
                column[index] = row[key] = default(ctx)


def row_dicts(plan: BulkPlan, filled: FilledColumns, hidden: Gaps | None = None) -> list[_Row]:
    """The completed rows as dicts (attribute key -> value), without their gaps: a value
    only the database computes, a key still to be generated, and ``hidden`` ones."""
    keys = plan.keys
    rows: list[_Row] = list(map(dict, map(zip, repeat(keys), zip(*filled.columns, strict=True))))
    gaps: Gaps = {**filled.server_gaps, **(hidden or {})}
    if plan.pk_key is not None and filled.missing_pk:
        pk_column = filled.columns[keys.index(plan.pk_key)]
        gaps[plan.pk_key] = list(map(is_, pk_column, repeat(None)))
    for key, absent in gaps.items():
        for row, gap in zip(rows, absent or repeat(True, len(rows)), strict=True):
            if gap:
                del row[key]
    return rows
