"""PostgreSQL ``COPY`` for ``insert_all``: the fastest way rows get into a table.

``COPY`` runs on the asyncpg connection *of the current transaction* (taken from the
session, never a new one), so it commits or rolls back with the caller's work. It cannot
return generated keys, so missing ones are drawn from the key's sequence first, in one
round trip. Values go through each column type's bind processing first, exactly as they
would for an ``INSERT``; only types whose binary ``COPY`` encoding matches that are allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Time,
    Uuid,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeDecorator, TypeEngine

from viveka_db.repository.rows import BulkPlan, PreparedRows

__all__ = ["apply_memoized", "copy_insert", "copy_supported", "processed_records"]

_COPY_SAFE = (
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Time,
    Uuid,
)
_supported: dict[tuple[BulkPlan, str], bool] = {}


def _base_type(type_: TypeEngine[Any], dialect: Dialect) -> TypeEngine[Any]:
    while isinstance(type_, TypeDecorator):
        type_ = type_.load_dialect_impl(dialect)
    return type_


def copy_supported(plan: BulkPlan, dialect: Dialect) -> bool:
    """Whether every column of ``plan`` can be written with binary ``COPY``."""
    cache_key = (plan, dialect.name)
    known = _supported.get(cache_key)
    if known is None:
        known = dialect.driver == "asyncpg" and all(
            isinstance(_base_type(col.type, dialect), _COPY_SAFE) for col in plan.columns
        )
        _supported[cache_key] = known
    return known


async def copy_insert(conn: AsyncConnection, plan: BulkPlan, prepared: PreparedRows) -> bool:
    """Insert ``prepared`` rows with ``COPY``; generated keys are written into the rows.

    ``False`` (nothing written) when the generated key has no sequence to draw from.
    """
    dialect = conn.dialect
    rows = prepared.rows
    if prepared.missing_pk:
        if not await _assign_keys(conn, plan, rows, prepared.missing_pk):
            return False
    else:
        await conn.exec_driver_sql("SELECT 1")  # make sure the transaction has begun
    records = processed_records(dialect, list(zip(plan.keys, plan.columns, strict=True)), rows)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    table = plan.table
    await driver.copy_records_to_table(
        table.name,
        records=records,
        columns=[col.name for col in plan.columns],
        schema_name=table.schema,
    )
    return True


def processed_records(
    dialect: Dialect, pairs: list[tuple[str, Column[Any]]], rows: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Rows as tuples in ``pairs`` order, each value through its column's bind processing.

    Built column by column so each processor is looked up once and shared values (one
    timestamp for the whole statement) are converted once.
    """
    columns: list[list[Any]] = []
    for key, column in pairs:
        values = [row[key] for row in rows]
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        columns.append(values if processor is None else apply_memoized(processor, values))
    return list(zip(*columns, strict=True))


def apply_memoized(processor: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """``processor`` over a column, computed once per run of the same object.

    Bulk rows share values (one timestamp per statement, repeated constants), so this turns
    100,000 timestamp conversions into one.
    """
    out: list[Any] = []
    last_in: Any = object()
    last_out: Any = None
    for value in values:
        if value is not last_in:
            last_in, last_out = value, processor(value)
        out.append(last_out)
    return out


async def _assign_keys(
    conn: AsyncConnection, plan: BulkPlan, rows: list[dict[str, Any]], count: int
) -> bool:
    column = plan.generated_pk
    assert column is not None
    key = plan.mapper.get_property_by_column(column).key
    table_name = conn.dialect.identifier_preparer.format_table(plan.table)
    result = await conn.execute(
        text(
            # the scalar subquery runs once (an InitPlan), not once per key
            "SELECT array_agg(nextval((SELECT pg_get_serial_sequence(:table, :column)"
            "::regclass))) FROM generate_series(1, :count)"
        ),
        {"table": table_name, "column": column.name, "count": count},
    )
    drawn = result.scalar_one()
    if not drawn or drawn[0] is None:
        return False
    ids = iter(drawn)
    for row in rows:
        if key not in row:
            row[key] = next(ids)
    return True
