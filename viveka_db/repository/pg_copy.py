"""PostgreSQL ``COPY`` for ``insert_all``: the fastest way rows get into a table.

``COPY`` runs on the asyncpg connection *of the current transaction* (taken from the
session, never a new one), so it commits or rolls back with the caller's work. It cannot
return generated keys, so missing ones are drawn from the key's sequence first, in one
round trip. Values go through each column type's bind processing first, exactly as they
would for an ``INSERT``; only types whose binary ``COPY`` encoding matches that are allowed.
Types without a bind processor on asyncpg (strings, numbers, ``DateTime``) cost nothing
here: asyncpg's binary codecs encode them while streaming the records, except a timestamp
every row shares, which is encoded once (:mod:`~viveka_db.repository.pg_copy_codecs`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
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

from viveka_db.compat import copy_with_codecs
from viveka_db.repository.bulk_plan import BulkPlan, all_same
from viveka_db.repository.column_types import base_type
from viveka_db.repository.pg_copy_codecs import codec_statement, shared_timestamp_columns
from viveka_db.repository.rows import ColumnBatch
from viveka_db.telemetry.statements import driver_statement

__all__ = [
    "apply_column",
    "copy_insert",
    "copy_supported",
    "processed_columns",
    "start_key_draw",
]


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
_supported: dict[tuple[BulkPlan, str, str], bool] = {}
_COPY_DRIVERS = ("asyncpg", "psycopg")
"""asyncpg copies binary records (its codecs); psycopg copies rows in text format (its
dumpers), cursor by cursor, in the transaction's connection like asyncpg."""
_DRAW_SQL = (
    # the scalar subquery runs once (an InitPlan), not once per key; the keys themselves
    # come back only when they are not one unbroken run (another session drew in between)
    "SELECT min(key), max(key), count(*), CASE WHEN max(key) - min(key) + 1 = count(*) "
    "THEN NULL ELSE array_agg(key) END FROM (SELECT nextval((SELECT "
    "pg_get_serial_sequence(:table, :column)::regclass)) AS key "
    "FROM generate_series(1, :count)) AS drawn"
)
_DRAW_SQL_NUMBERED = (
    _DRAW_SQL.replace(":table", "$1").replace(":column", "$2").replace(":count", "$3::int")
)
"""The same for asyncpg directly (numbered parameters)."""


def copy_supported(plan: BulkPlan, dialect: Dialect) -> bool:
    """Whether every column of ``plan`` can be written with binary ``COPY``."""
    cache_key = (plan, dialect.name, dialect.driver)  # two data sources may differ in driver
    known = _supported.get(cache_key)
    if known is None:
        known = dialect.driver in _COPY_DRIVERS and all(
            isinstance(base_type(col.type, dialect), _COPY_SAFE) for col in plan.columns
        )
        _supported[cache_key] = known
    return known


async def start_key_draw(
    conn: AsyncConnection, plan: BulkPlan, items: list[Any]
) -> asyncio.Future[Any] | None:
    """Start drawing a key for each of ``items`` from the sequence, if they will need them.

    The query runs on the server while the caller prepares the rows (about as long, at
    100,000 rows); :func:`copy_insert` takes the result. Only for entities of the plan's
    class or plain dicts none of which has its key set (the usual bulk insert), judged by
    the first item only: the draw is a guess that :func:`copy_insert` uses only if it has
    exactly one key per row that needs one (checking all 100,000 rows here would cost as much as two
    passes of the preparation it overlaps). ``None`` otherwise. Unused keys are a gap in
    the sequence, as a rolled-back insert leaves.
    """
    dialect = conn.dialect
    column = plan.generated_pk
    key = plan.pk_key
    first: Any = items[0] if items else None
    source: Any = getattr(first, "__dict__", first)  # an entity's values, or the dict
    if (
        column is None
        or key is None
        or plan.unfit is not None
        or not copy_supported(plan, dialect)
        or type(first) not in (dict, plan.mapper.class_)
        or key in source
        or dialect.driver != "asyncpg"  # the overlap needs asyncpg's own fetchrow
    ):
        return None
    await conn.exec_driver_sql("SELECT 1")  # begin the transaction: COPY must run in it
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    table_name = dialect.identifier_preparer.format_table(plan.table)
    draw: asyncio.Future[Any] = asyncio.ensure_future(
        _drawn_keys(driver.fetchrow(_DRAW_SQL_NUMBERED, table_name, column.name, len(items)))
    )
    await asyncio.sleep(0)  # let it send the query
    return draw


async def copy_insert(
    conn: AsyncConnection,
    plan: BulkPlan,
    batch: ColumnBatch,
    drawn: Sequence[int] | None = None,
    alongside: Callable[[], Awaitable[object]] | None = None,
    undo: Callable[[], object] | None = None,
) -> bool:
    """Insert the ``batch`` with ``COPY``; generated keys are written into the batch.

    ``drawn``: keys from :func:`start_key_draw`, used if there is one per missing key.
    ``False`` (nothing written) when the generated key has no sequence to draw from.
    ``alongside``: work to run while the ``COPY`` waits for the server (the entities'
    bookkeeping, :func:`~viveka_db.repository.bulk_attach.attach_alongside`); ``undo`` reverts
    it if the ``COPY`` fails.
    """
    dialect = conn.dialect
    if batch.missing_pk:
        idents = (
            drawn
            if drawn is not None and len(drawn) == batch.missing_pk
            else await _draw_keys(conn, plan, batch.missing_pk)
        )
        if idents is None:
            return False
        batch.fill_keys(plan, idents)
    else:
        await conn.exec_driver_sql("SELECT 1")  # make sure the transaction has begun
    columns = processed_columns(dialect, plan.columns, batch.columns)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    table = plan.table
    names = [col.name for col in plan.columns]
    shape = f"COPY {table.fullname} ({', '.join(names)}) FROM STDIN"
    preparer = dialect.identifier_preparer
    table_sql = preparer.format_table(table)
    names_sql = [preparer.quote(name) for name in names]
    psycopg = dialect.driver != "asyncpg"
    codecs = (
        None
        if psycopg
        else await codec_statement(  # before the bookkeeping alongside can delay it
            driver,
            table_sql=table_sql,
            names_sql=names_sql,
            columns=columns,
            shared=shared_timestamp_columns(dialect, plan.columns, columns),
        )
    )

    async def copy() -> None:
        records = zip(*columns, strict=True)  # tuples made while streaming, never a list
        with driver_statement(conn.sync_engine, shape):
            if psycopg:
                await _psycopg_copy(
                    driver, f"COPY {table_sql} ({', '.join(names_sql)}) FROM STDIN", records
                )
                return
            if codecs is not None:
                copy_sql = f"COPY {table_sql} ({', '.join(names_sql)}) FROM STDIN (FORMAT binary)"
                await copy_with_codecs(driver, copy_sql=copy_sql, codecs=codecs, records=records)
                return
            await driver.copy_records_to_table(
                table.name, records=records, columns=names, schema_name=table.schema
            )

    if alongside is None:
        await copy()
        return True
    copying: asyncio.Task[Any] = asyncio.ensure_future(copy())
    try:
        await alongside()
    finally:
        try:
            await copying
        except BaseException:
            if undo is not None:
                undo()
            raise
    return True


async def _psycopg_copy(driver: Any, copy_sql: str, records: Iterable[tuple[Any, ...]]) -> None:
    """``COPY ... FROM STDIN`` on a psycopg connection, row by row (psycopg buffers the
    rows and sends them in large chunks; ``write_row`` awaits only when a chunk is full)."""
    async with driver.cursor() as cursor, cursor.copy(copy_sql) as stream:
        for record in records:
            await stream.write_row(record)


def processed_columns(
    dialect: Dialect, columns: list[Column[Any]], values: list[list[Any]]
) -> list[list[Any]]:
    """Each column's values through its type's bind processing (unchanged without one)."""
    out: list[list[Any]] = []
    for column, column_values in zip(columns, values, strict=True):
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        out.append(column_values if processor is None else apply_column(processor, column_values))
    return out


def apply_column(function: Callable[[Any], Any], values: list[Any]) -> list[Any]:
    """``function`` over a column of values, called once when all are the same object.

    Bulk rows often share one value per column (the statement's timestamp filled in as a
    default, a constant): then 100,000 conversions become one.
    """
    if not values:
        return []
    if all_same(values):
        return [function(values[0])] * len(values)
    return list(map(function, values))


async def _draw_keys(conn: AsyncConnection, plan: BulkPlan, count: int) -> Sequence[int] | None:
    """``count`` new keys from the generated key's sequence; ``None`` if it has none."""
    column = plan.generated_pk
    assert column is not None
    table_name = conn.dialect.identifier_preparer.format_table(plan.table)
    result = await conn.execute(
        text(_DRAW_SQL),
        {"table": table_name, "column": column.name, "count": count},
    )
    return _keys_from_row(tuple(result.one()))


async def _drawn_keys(row: Awaitable[Any]) -> Sequence[int] | None:
    return _keys_from_row(tuple(await row))


def _keys_from_row(row: tuple[Any, ...]) -> Sequence[int] | None:
    """The keys of a ``_DRAW_SQL`` result row (lowest, highest, count, the keys if not one
    run); ``None`` when the key has no sequence to draw from."""
    lowest, highest, _count, keys = row
    if lowest is None:
        return None
    return range(lowest, highest + 1) if keys is None else sorted(keys)
